//! Bad requests are typed errors that hand everything back and leave the device usable.

use tensorswap_core::{Device, DeviceExt, Error};

use super::io::{filled, get};
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

/// Ranges past the end, or overflowing, are refused up front with
/// `OutOfRange`; both buffers come back unchanged.
pub fn out_of_range<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    let size = 10_000;
    let device_bytes = pattern(1, size);
    let mut buf = filled(&dev, &device_bytes)?;
    // (offset, len) pairs that do not fit in `size` bytes.
    let cases = [
        (0, size + 1),
        (size, 1),
        (size + 1, 0),
        (1, size),
        (usize::MAX, 2),
        (9_999, 2),
    ];
    for (offset, len) in cases {
        let host_bytes = pattern(2, len.min(size + 1));
        let mut host = dev.alloc_host(host_bytes.len())?;
        host.copy_from_slice(&host_bytes);
        // Uploads of host_bytes.len() bytes at `offset`.
        let refused = match dev.upload(host, buf, offset) {
            Ok(ticket) => {
                drop(ticket);
                return Err(CaseError(format!(
                    "upload of {len} bytes at {offset} into {size} was accepted"
                )));
            }
            Err(refused) => refused,
        };
        check!(
            matches!(refused.error, Error::OutOfRange { size: s, .. } if s == size),
            "upload ({offset}, {len}): expected OutOfRange, got {}",
            refused.error
        );
        expect_bytes(
            "refused upload's host buffer",
            &refused.value.host,
            &host_bytes,
        )?;
        buf = refused.value.device;
        // Downloads of `len` bytes at `offset`.
        let refused = match dev.download(buf, offset, vec![7u8; len.min(size + 1)]) {
            Ok(_) => {
                return Err(CaseError(format!(
                    "download of {len} bytes at {offset} from {size} was accepted"
                )))
            }
            Err(refused) => refused,
        };
        check!(
            matches!(refused.error, Error::OutOfRange { .. }),
            "download ({offset}, {len}): expected OutOfRange, got {}",
            refused.error
        );
        check!(
            refused.value.host.iter().all(|&b| b == 7),
            "refused download wrote into the host buffer"
        );
        buf = refused.value.device;
        ctx.checked(2);
    }
    let (_, back) = get(&dev, buf, 0, size)?;
    expect_bytes("device buffer after refused requests", &back, &device_bytes)
}

/// Memory of one device handed to another is refused with `ForeignMemory`,
/// unless the backend says the second device owns it.
pub fn foreign_memory<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let a = ctx.device()?;
    let b = ctx.device()?;
    let mem = filled(&a, &pattern(3, 4096))?;
    if b.owns(mem.memory()) {
        let (_, back) = get(&b, mem, 0, 4096)?;
        return expect_bytes("memory shared between handles", &back, &pattern(3, 4096));
    }
    match b.download(mem, 0, vec![0u8; 4096]) {
        Ok(_) => Err(CaseError("a foreign device buffer was accepted".into())),
        Err(refused) => {
            check!(
                matches!(refused.error, Error::ForeignMemory { .. }),
                "expected ForeignMemory, got {}",
                refused.error
            );
            let (_, back) = get(&a, refused.value.device, 0, 4096)?;
            ctx.checked(1);
            expect_bytes("foreign buffer after refusal", &back, &pattern(3, 4096))
        }
    }
}

/// Allocation beyond the device's capacity is `OutOfMemory` with the sizes
/// (or `TooLarge` naming the limit, above the largest single allocation),
/// and the device keeps working; on small devices, filling it up and freeing
/// one allocation makes room again.
pub fn beyond_capacity<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    let caps = dev.capabilities();
    let capacity = dev.info().memory_capacity.unwrap_or(caps.max_allocation);
    for request in [capacity.saturating_add(1), usize::MAX] {
        match dev.alloc(request) {
            Ok(_) => {
                return Err(CaseError(format!(
                    "allocating {request} bytes of {capacity} succeeded"
                )))
            }
            Err(Error::OutOfMemory { requested, .. }) => {
                check!(
                    requested == request,
                    "OutOfMemory names {requested} bytes, {request} were asked for"
                )
            }
            Err(Error::TooLarge { requested, max, .. }) if request > caps.max_allocation => {
                check!(
                    requested == request && max == caps.max_allocation,
                    "TooLarge names {requested} bytes and a limit of {max}; \
                     {request} were asked for, the limit is {}",
                    caps.max_allocation
                )
            }
            Err(other) => {
                return Err(CaseError(format!(
                    "allocating {request} bytes: expected OutOfMemory (or TooLarge above \
                     the largest allocation), got {other}"
                )))
            }
        }
        ctx.checked(1);
    }
    // Filling the device up needs its total capacity, not the largest
    // single allocation.
    if dev.info().memory_capacity.is_some() && capacity <= 1 << 30 {
        let quarter = capacity / 4;
        let held: Vec<_> = (0..4)
            .map(|_| dev.alloc(quarter))
            .collect::<Result<_, _>>()?;
        match dev.alloc(quarter + 1) {
            Err(Error::OutOfMemory { available, .. }) => {
                check!(
                    available.is_none_or(|bytes| bytes < quarter + 1),
                    "OutOfMemory says {available:?} bytes are available"
                )
            }
            other => {
                return Err(CaseError(format!(
                    "allocating past a full device: {other:?}"
                )))
            }
        }
        drop(held);
        drop(dev.alloc(quarter)?);
        ctx.checked(1);
    }
    let (_, back) = get(&dev, filled(&dev, &pattern(4, 5000))?, 0, 5000)?;
    expect_bytes("round trip after OutOfMemory", &back, &pattern(4, 5000))
}

/// Zero-length allocations and transfers work.
pub fn zero_length<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    let empty = dev.alloc(0)?;
    check!(empty.is_empty(), "alloc(0) is not empty");
    let host = dev.alloc_host(0)?;
    let done = dev.upload_blocking(host, empty, 0)?;
    let done = dev.download_blocking(done.device, 0, Vec::<u8>::new())?;
    check!(done.host.is_empty(), "zero-length download produced bytes");
    let buf = filled(&dev, &pattern(5, 64))?;
    let done = dev.upload_blocking(Vec::<u8>::new(), buf, 64)?;
    let (_, back) = get(&dev, done.device, 0, 64)?;
    ctx.checked(3);
    expect_bytes(
        "buffer after an empty upload at its end",
        &back,
        &pattern(5, 64),
    )
}
