//! A store striped over several folders: tensors longer than a stripe unit
//! are split over the folders' files and come back whole; a failing folder
//! (ENOSPC, EIO, bytes changed on its disk) is named in the error and loses
//! nothing; direct storage, which moves a tensor to one file, is refused
//! with a reason.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use tensorswap_core::{Device, DirOptions, Error, FaultStage, IoOp};
use tensorswap_swapper::{DataPath, SwapError, TensorState};

use super::{rig_over, Rig, SLAB};
use crate::{check, expect_bytes, pattern, raw_file, CaseError, Ctx, Outcome};

/// Folders of the case's store.
const FOLDERS: usize = 3;

/// Tensors and their lengths: one spanning every folder several times, one
/// smaller than a stripe, one just over two stripes.
const TENSORS: [(u64, usize); 3] = [(1, (5 << 20) + 777), (2, 300), (3, (2 << 20) + 4097)];

/// The cause under a failed ticket's tensor error.
fn failure(result: Result<(), SwapError>, what: &str) -> Result<Arc<SwapError>, CaseError> {
    match result {
        Err(SwapError::Tensor { cause, .. }) => Ok(cause),
        other => Err(CaseError(format!(
            "{what}: expected a tensor error, got {other:?}"
        ))),
    }
}

fn expect_state<D: Device>(rig: &Rig<D>, id: u64, state: TensorState, what: &str) -> Outcome {
    let now = rig.swapper.status(id)?.state;
    check!(
        now == state,
        "{what}: tensor {id} is {now}, expected {state}"
    );
    Ok(())
}

/// Round trips over three folders, each folder's file used; ENOSPC on the
/// third folder and EIO on the second name that folder's file and keep the
/// tensor where it was; corrupted bytes on the second folder are a
/// `Checksum` error naming it; everything retries cleanly; direct storage
/// over several folders is refused with a reason.
pub fn striped_folders<D: Device>(ctx: &Ctx<D>) -> Outcome {
    // 4 MiB slabs: one chunk spans several 1 MiB stripes.
    let rig = rig_over(ctx, FOLDERS, 2, 4 << 20, DirOptions::default(), false)?;
    let s = &rig.swapper;
    let files = s.store().striped_file().files().to_vec();
    check!(
        files.len() == FOLDERS,
        "a store over {FOLDERS} folders has {} files",
        files.len()
    );
    for (id, len) in TENSORS {
        rig.put(id, &pattern(id, len))?;
    }
    let ids: Vec<u64> = TENSORS.iter().map(|t| t.0).collect();
    s.swap_out(&ids)?.wait()?;
    for file in &files {
        let len = file.len()?;
        check!(
            len > 0,
            "the folder file {} got no bytes",
            file.path().display()
        );
    }
    s.swap_in(&ids)?.wait()?;
    for (id, len) in TENSORS {
        expect_bytes(
            "bytes after a striped round trip",
            &rig.bytes(id)?,
            &pattern(id, len),
        )?;
    }
    ctx.checked(1);

    // ENOSPC on the third folder: a part of tensor 1 lives there.
    let engines = s.store().engines();
    engines[2].fail_next(IoOp::Write, libc::ENOSPC, FaultStage::Complete);
    let failed = failure(
        s.swap_out(&[1])?.wait(),
        "swap_out with the third folder full",
    )?;
    check!(
        matches!(failed.core(), Some(Error::Io { op: IoOp::Write, path, cause, .. })
            if path == files[2].path() && cause.raw_os_error() == Some(libc::ENOSPC)),
        "ENOSPC on the third folder surfaced as {failed}"
    );
    expect_state(&rig, 1, TensorState::Resident, "after ENOSPC")?;
    check!(
        s.stored_range(1)?.is_none(),
        "the failed swap-out kept a home"
    );
    let (id, len) = TENSORS[0];
    expect_bytes(
        "resident bytes after ENOSPC",
        &rig.bytes(id)?,
        &pattern(id, len),
    )?;
    s.swap_out(&[1])?.wait()?;

    // EIO on the second folder's read.
    engines[1].fail_next(IoOp::Read, libc::EIO, FaultStage::Complete);
    let failed = failure(
        s.swap_in(&[1])?.wait(),
        "swap_in with the second folder failing",
    )?;
    check!(
        matches!(failed.core(), Some(Error::Io { op: IoOp::Read, path, .. }) if path == files[1].path()),
        "EIO on the second folder surfaced as {failed}"
    );
    expect_state(&rig, 1, TensorState::Stored, "after EIO")?;
    s.swap_in(&[1])?.wait()?;
    expect_bytes(
        "bytes after the retried swap-in",
        &rig.bytes(id)?,
        &pattern(id, len),
    )?;
    check!(
        engines.iter().all(|e| !e.has_armed()),
        "an armed fault never fired"
    );
    ctx.checked(2);

    // Bytes changed on the second folder's disk.
    s.swap_out(&[1])?.wait()?;
    let range = s
        .stored_range(1)?
        .ok_or_else(|| CaseError("no range for a stored tensor".into()))?;
    let striped = s.store().striped_file();
    let unit = striped.unit();
    let on_second = (range.start.next_multiple_of(unit)..range.end)
        .step_by(unit as usize)
        .map(|o| striped.locate(o))
        .find(|&(lane, _)| lane == 1)
        .ok_or_else(|| CaseError("tensor 1 has no stripe on the second folder".into()))?;
    raw_file(&files[1])?
        .write_at(b"corrupt", on_second.1 + 10)
        .map_err(|e| CaseError(format!("corrupting the second folder's file: {e}")))?;
    let failed = failure(s.swap_in(&[1])?.wait(), "swap_in of corrupted bytes")?;
    check!(
        matches!(failed.core(), Some(Error::Checksum { path, .. }) if path == files[1].path()),
        "corruption on the second folder surfaced as {failed}"
    );
    expect_state(&rig, 1, TensorState::Stored, "after the checksum mismatch")?;
    ctx.checked(1);
    // Our handles on the files keep their folders alive.
    drop(files);
    rig.finish()?;

    // Direct storage needs one file.
    let rig = rig_over(ctx, FOLDERS, 2, SLAB, DirOptions::default(), true)?;
    match rig.swapper.data_path() {
        DataPath::Compat { reason } => check!(
            reason.contains("striped over 3 folders"),
            "direct storage over {FOLDERS} folders was refused for another reason: {reason}"
        ),
        other => {
            return Err(CaseError(format!(
                "use_gds over {FOLDERS} folders took {other}, not the pinned path with a reason"
            )))
        }
    }
    rig.put(2, &pattern(2, SLAB + 5))?;
    rig.swapper.swap_out(&[2])?.wait()?;
    rig.swapper.swap_in(&[2])?.wait()?;
    expect_bytes(
        "bytes through the fallback",
        &rig.bytes(2)?,
        &pattern(2, SLAB + 5),
    )?;
    ctx.checked(1);
    rig.finish()
}
