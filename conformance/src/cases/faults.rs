//! Injected faults (through `FaultyDevice`) are typed errors that lose nothing.

use tensorswap_core::{
    Device, DeviceExt, Direction, Error, Failed, FaultStage, FaultyDevice, Transfer,
};

use super::io::{filled, get};
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

const LEN: usize = 300_001;

fn expect_transfer_error(error: &Error, direction: Direction) -> Outcome {
    check!(
        matches!(error, Error::Transfer { direction: d, len: LEN, .. } if *d == direction),
        "expected a {direction} Transfer error of {LEN} bytes, got {error}"
    );
    Ok(())
}

/// The failure of a transfer that must fail, refused at submission or at completion.
fn failure<D: Device, H>(
    submitted: Result<Transfer<D, H>, Failed<D, H>>,
    what: &str,
) -> Result<Failed<D, H>, CaseError> {
    match submitted {
        Err(refused) => Ok(refused),
        Ok(ticket) => match ticket.wait() {
            Err(failed) => Ok(failed),
            Ok(_) => Err(CaseError(format!("{what} succeeded"))),
        },
    }
}

/// A failed upload (refused at submission, or failing at completion) hands
/// back its source intact and leaves the device bytes as they were.
pub fn upload_fault<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = FaultyDevice::new(ctx.device()?);
    let old = pattern(10, LEN);
    let new = pattern(11, LEN);
    for stage in [FaultStage::Submit, FaultStage::Complete] {
        let buf = filled(&dev, &old)?;
        let mut host = dev.alloc_host(LEN)?;
        host.copy_from_slice(&new);
        dev.fail_transfer(1, stage);
        let failed = failure(
            dev.upload(host, buf, 0),
            &format!("upload with a {stage:?} fault"),
        )?;
        expect_transfer_error(&failed.error, Direction::Upload)?;
        expect_bytes("source of a failed upload", &failed.value.host, &new)?;
        let (buf, back) = get(&dev, failed.value.device, 0, LEN)?;
        expect_bytes("device bytes after a failed upload", &back, &old)?;
        // The device is still usable, and the retry lands.
        let done = dev.upload_blocking(failed.value.host, buf, 0)?;
        let (_, back) = get(&dev, done.device, 0, LEN)?;
        expect_bytes("retried upload", &back, &new)?;
        ctx.checked(1);
    }
    Ok(())
}

/// A failed download leaves the device bytes (its source) intact.
pub fn download_fault<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = FaultyDevice::new(ctx.device()?);
    let data = pattern(12, LEN);
    for stage in [FaultStage::Submit, FaultStage::Complete] {
        let buf = filled(&dev, &data)?;
        dev.fail_transfer(1, stage);
        let failed = failure(
            dev.download(buf, 0, vec![0u8; LEN]),
            &format!("download with a {stage:?} fault"),
        )?;
        expect_transfer_error(&failed.error, Direction::Download)?;
        let done = dev.download_blocking(failed.value.device, 0, failed.value.host)?;
        expect_bytes("device bytes after a failed download", &done.host, &data)?;
        ctx.checked(1);
    }
    Ok(())
}

/// A failed allocation is a typed error; the next one succeeds.
pub fn allocation_fault<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = FaultyDevice::new(ctx.device()?);
    let keep = filled(&dev, &pattern(13, 4096))?;
    dev.fail_allocation(1);
    match dev.alloc(4096) {
        Err(Error::Device { op: "allocate", .. }) => {}
        other => {
            return Err(CaseError(format!(
                "expected an allocate Device error, got {other:?}"
            )))
        }
    }
    let (_, back) = get(&dev, filled(&dev, &pattern(14, 4096))?, 0, 4096)?;
    expect_bytes("allocation after a failed one", &back, &pattern(14, 4096))?;
    let (_, back) = get(&dev, keep, 0, 4096)?;
    ctx.checked(1);
    expect_bytes(
        "earlier buffer after a failed allocation",
        &back,
        &pattern(13, 4096),
    )
}

/// Only the armed transfer fails: the one before and the one after succeed.
pub fn fault_hits_only_its_target<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = FaultyDevice::new(ctx.device()?);
    let bufs: Vec<_> = (0..3)
        .map(|i| filled(&dev, &pattern(20 + i, 4096)))
        .collect::<Result<_, _>>()?;
    dev.fail_transfer(2, FaultStage::Complete);
    let tickets = bufs
        .into_iter()
        .map(|b| dev.download(b, 0, vec![0u8; 4096]))
        .collect::<Result<Vec<_>, _>>()?;
    let outcomes: Vec<bool> = tensorswap_core::wait_all(tickets)
        .iter()
        .map(Result::is_ok)
        .collect();
    check!(
        outcomes == [true, false, true],
        "outcomes {outcomes:?}, want [true, false, true]"
    );
    ctx.checked(1);
    Ok(())
}
