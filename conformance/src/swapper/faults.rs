//! Faults at every hop — device copy, file write, file read, checksum — are
//! typed errors that leave the tensor readable where it was.

use std::os::unix::fs::FileExt;

use tensorswap_core::{Device, DirOptions, Error, FaultStage, IoOp};
use tensorswap_swapper::{SwapError, TensorState};

use super::{rig, Rig, SLAB};
use crate::{check, expect_bytes, pattern, raw_file, CaseError, Ctx, Outcome};

const LEN: usize = 2 * SLAB + 300;

/// The `Swap` error of a ticket or `get`, with its source.
fn swap_error(
    result: Result<(), SwapError>,
    what: &str,
) -> Result<std::sync::Arc<SwapError>, CaseError> {
    match result {
        Err(SwapError::Tensor { id: 1, cause, .. }) => Ok(cause),
        other => Err(CaseError(format!(
            "{what}: expected a Swap error for tensor 1, got {other:?}"
        ))),
    }
}

fn expect_state<D: Device>(rig: &Rig<D>, state: TensorState, what: &str) -> Outcome {
    let status = rig.swapper.status(1)?;
    check!(
        status.state == state,
        "{what}: tensor is {}, expected {state}",
        status.state
    );
    check!(
        status.last_error.is_some(),
        "{what}: status does not report the failure"
    );
    Ok(())
}

/// A failing download (swap-out) keeps the tensor resident with its bytes;
/// a failing upload (swap-in) keeps it stored; both retry cleanly.
pub fn device_faults<D: Device>(ctx: &Ctx<D>) -> Outcome {
    for stage in [FaultStage::Submit, FaultStage::Complete] {
        let rig = rig(ctx, 2, DirOptions::default())?;
        // The second chunk's download, then the third chunk's upload.
        transfer_faults(&rig, stage, (2, 3), LEN)?;
        ctx.checked(2);
        rig.finish()?;
    }
    Ok(())
}

/// Tensor 1 of `len` bytes is put, then swapped out with the `nth.0`-th
/// transfer from then failing at `stage`, and in with the `nth.1`-th
/// failing: each failure is a `Transfer` error that leaves the tensor where
/// it was, readable, and each direction then retries cleanly.
pub(super) fn transfer_faults<D: Device>(
    rig: &Rig<D>,
    stage: FaultStage,
    nth: (u64, u64),
    len: usize,
) -> Outcome {
    let s = &rig.swapper;
    rig.put(1, &pattern(1, len))?;
    s.device().fail_transfer(nth.0, stage);
    let source = swap_error(s.swap_out(&[1])?.wait(), "swap_out with a failing transfer")?;
    check!(
        matches!(source.core(), Some(Error::Transfer { .. })),
        "the failed swap-out surfaced as {source}"
    );
    expect_state(rig, TensorState::Resident, "after the failed swap-out")?;
    expect_bytes(
        "resident bytes after the failed swap-out",
        &rig.bytes(1)?,
        &pattern(1, len),
    )?;
    s.swap_out(&[1])?.wait()?;
    s.device().fail_transfer(nth.1, stage);
    let source = swap_error(s.swap_in(&[1])?.wait(), "swap_in with a failing transfer")?;
    check!(
        matches!(source.core(), Some(Error::Transfer { .. })),
        "the failed swap-in surfaced as {source}"
    );
    expect_state(rig, TensorState::Stored, "after the failed swap-in")?;
    s.swap_in(&[1])?.wait()?;
    expect_bytes(
        "bytes after the retried swap-in",
        &rig.bytes(1)?,
        &pattern(1, len),
    )
}

/// A swap-out that failed on a full disk, retried after space was freed
/// inside the store's file (another tensor removed), takes that space: the
/// failed attempt's extent, at the end of the file where the disk ran out,
/// is not kept for it.
pub fn enospc_retry_takes_freed_space<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let rig = rig(ctx, 2, DirOptions::default())?;
    let s = &rig.swapper;
    rig.put(2, &pattern(2, LEN))?;
    s.swap_out(&[2])?.wait()?;
    let freed = s
        .stored_range(2)?
        .ok_or_else(|| CaseError("no file range for a stored tensor".into()))?;
    rig.put(1, &pattern(1, LEN))?;
    s.store()
        .engine()
        .fail_next(IoOp::Write, libc::ENOSPC, FaultStage::Complete);
    swap_error(s.swap_out(&[1])?.wait(), "swap_out on a full disk")?;
    s.remove(2)?;
    s.swap_out(&[1])?.wait()?;
    let range = s.stored_range(1)?;
    check!(
        range.as_ref() == Some(&freed),
        "the retry was stored at {range:?}, not in the space freed at {freed:?}"
    );
    s.swap_in(&[1])?.wait()?;
    expect_bytes(
        "bytes after the retried swap-out",
        &rig.bytes(1)?,
        &pattern(1, LEN),
    )?;
    ctx.checked(1);
    rig.finish()
}

/// ENOSPC on a write keeps the tensor resident, names the file and errno,
/// and pins no home; EIO on a read (after a prefetch) makes `get` report it
/// and keeps the tensor stored; both retry cleanly.
pub fn engine_faults<D: Device>(ctx: &Ctx<D>) -> Outcome {
    for stage in [FaultStage::Submit, FaultStage::Complete] {
        let rig = rig(ctx, 2, DirOptions::default())?;
        let s = &rig.swapper;
        let engine = s.store().engine();
        rig.put(1, &pattern(1, LEN))?;
        engine.fail_next(IoOp::Write, libc::ENOSPC, stage);
        let source = swap_error(s.swap_out(&[1])?.wait(), "swap_out on a full disk")?;
        check!(
            matches!(source.core(), Some(Error::Io { op: IoOp::Write, path, cause, .. })
                if path == s.store().path() && cause.raw_os_error() == Some(libc::ENOSPC)),
            "ENOSPC surfaced as {source}"
        );
        expect_state(&rig, TensorState::Resident, "after ENOSPC")?;
        expect_bytes(
            "resident bytes after ENOSPC",
            &rig.bytes(1)?,
            &pattern(1, LEN),
        )?;
        check!(
            s.stored_range(1)?.is_none(),
            "the failed swap-out kept the home it chose (where the disk ran out of space)"
        );
        s.swap_out(&[1])?.wait()?;
        engine.fail_next(IoOp::Read, libc::EIO, stage);
        s.prefetch(&[1])?;
        let source = swap_error(s.get(1).map(drop), "get after a failed prefetch")?;
        check!(
            matches!(source.core(), Some(Error::Io { op: IoOp::Read, cause, .. }) if cause.raw_os_error() == Some(libc::EIO)),
            "EIO surfaced as {source}"
        );
        expect_state(&rig, TensorState::Stored, "after EIO")?;
        s.swap_in(&[1])?.wait()?;
        expect_bytes(
            "bytes after the retried swap-in",
            &rig.bytes(1)?,
            &pattern(1, LEN),
        )?;
        check!(!engine.has_armed(), "an armed fault never fired");
        ctx.checked(2);
        rig.finish()?;
    }
    Ok(())
}

/// Bytes changed on disk behind the swapper's back are a `Checksum` error
/// on swap-in and on `swap_into`; no wrong byte reaches device memory.
pub fn checksum_mismatch<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let rig = rig(ctx, 2, DirOptions::default())?;
    let s = &rig.swapper;
    rig.put(1, &pattern(1, LEN))?;
    s.swap_out(&[1])?.wait()?;
    let range = s
        .stored_range(1)?
        .ok_or_else(|| CaseError("no file range for a stored tensor".into()))?;
    let file = raw_file(s.store().file())?;
    file.write_at(b"corrupt", range.start + SLAB as u64 + 10)
        .map_err(|e| CaseError(format!("corrupting the store file: {e}")))?;
    let source = swap_error(s.swap_in(&[1])?.wait(), "swap_in of corrupted bytes")?;
    check!(
        matches!(source.core(), Some(Error::Checksum { .. })),
        "corruption surfaced as {source}"
    );
    expect_state(&rig, TensorState::Stored, "after the checksum mismatch")?;
    let into = s.swap_into(1, vec![0u8; LEN]);
    check!(
        matches!(into, Err(ref r) if matches!(r.error.core(), Some(Error::Checksum { .. }))),
        "swap_into of corrupted bytes did not fail with Checksum"
    );
    ctx.checked(2);
    rig.finish()
}
