//! Tickets and devices dropped (or leaked) while transfers are in flight.

use tensorswap_core::{Device, DeviceExt};

use crate::{expect_bytes, pattern, Ctx, Outcome};

const LEN: usize = 4 << 20;

/// Dropping the device handle with transfers in flight: every ticket still
/// completes, and successful ones carry the right bytes.
pub fn drop_device_in_flight<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    let mut uploads = Vec::new();
    for i in 0..8u64 {
        let mut host = dev.alloc_host(LEN)?;
        host.copy_from_slice(&pattern(30 + i, LEN));
        uploads.push(dev.upload(host, dev.alloc(LEN)?, 0)?);
    }
    drop(dev);
    for (i, ticket) in uploads.into_iter().enumerate() {
        // Ok or a typed error are both acceptable; a hang or a crash is not.
        if let Ok(done) = ticket.wait() {
            expect_bytes(
                "source after device drop",
                &done.host,
                &pattern(30 + i as u64, LEN),
            )?;
        }
        ctx.checked(1);
    }
    Ok(())
}

/// Dropping a ticket waits; leaking one (`mem::forget`) leaks its buffers
/// instead of freeing memory under the copy. Both leave the device usable.
pub fn drop_and_forget_tickets<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    for _ in 0..4 {
        let ticket = dev.download(dev.alloc(LEN)?, 0, vec![0u8; LEN])?;
        drop(ticket);
    }
    let ticket = dev.upload(vec![1u8; LEN], dev.alloc(LEN)?, 0)?;
    std::mem::forget(ticket);
    let ticket = dev.download(dev.alloc(LEN)?, 0, vec![0u8; LEN])?;
    std::mem::forget(ticket);
    let data = pattern(40, LEN);
    let done = dev.upload_blocking(data.clone(), dev.alloc(LEN)?, 0)?;
    let back = dev.download_blocking(done.device, 0, vec![0u8; LEN])?;
    drop(dev);
    ctx.checked(1);
    expect_bytes(
        "round trip after dropped and leaked tickets",
        &back.host,
        &data,
    )
}
