//! `use_gds`: the direct path where the device can take it, the pinned path
//! with a reason where it cannot; the same bytes and the same failure
//! semantics either way.

use swap_api::swapper::{DataPath, TensorState};
use swap_api::{Device, DirOptions, Error, FaultStage};

use super::faults::{expect_state, swap_error};
use super::roundtrip::roundtrip_all;
use super::{rig_with, Rig, SLAB};
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

/// Checks the path a `use_gds` swapper took against what the device claims.
fn check_path<D: Device>(rig: &Rig<D>) -> Result<(), CaseError> {
    let claimed = rig.swapper.device().capabilities().direct_storage;
    match rig.swapper.data_path() {
        DataPath::Direct => check!(
            claimed,
            "the direct path was taken on a device that does not claim direct storage"
        ),
        DataPath::Compat { reason } => {
            check!(!reason.is_empty(), "the pinned fallback gives no reason");
            if claimed {
                eprintln!("note: direct storage is claimed but was refused here: {reason}");
            }
        }
        DataPath::Pinned => {
            return Err(CaseError(
                "use_gds was set but the swapper took the pinned path without a reason".into(),
            ))
        }
    }
    Ok(())
}

/// Every awkward size round-trips with `use_gds` (on the direct path where
/// the device can), including `swap_into` of a tensor written directly,
/// which reads its padded extent through the slabs; with checksums on, the
/// swapper falls back to the pinned path and says why.
pub fn gds_path<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let rig = rig_with(ctx, 2, DirOptions::default(), true)?;
    check_path(&rig)?;
    roundtrip_all(&rig, TensorState::Stored)?;
    rig.finish()?;

    let rig = rig_with(ctx, 2, DirOptions::default().checksums(true), true)?;
    let path = rig.swapper.data_path();
    check!(
        matches!(path, DataPath::Compat { reason } if reason.contains("checksums")),
        "use_gds with checksums on took {path}, expected the pinned fallback naming checksums"
    );
    roundtrip_all(&rig, TensorState::Stored)?;
    ctx.checked(2);
    rig.finish()
}

/// With `use_gds`, a failing transfer (refused at submission or failing at
/// completion) leaves the tensor where it was, readable, and both
/// directions retry cleanly.
pub fn gds_faults<D: Device>(ctx: &Ctx<D>) -> Outcome {
    const LEN: usize = 2 * SLAB + 300;
    for stage in [FaultStage::Submit, FaultStage::Complete] {
        let rig = rig_with(ctx, 2, DirOptions::default(), true)?;
        let s = &rig.swapper;
        rig.put(1, &pattern(1, LEN))?;
        s.device().fail_transfer(1, stage);
        let source = swap_error(s.swap_out(&[1])?.wait(), "swap_out with a failing transfer")?;
        check!(
            matches!(source.core(), Some(Error::Transfer { .. })),
            "the failed swap-out surfaced as {source}"
        );
        expect_state(&rig, TensorState::Resident, "after the failed swap-out")?;
        expect_bytes(
            "bytes after the failed swap-out",
            &rig.bytes(1)?,
            &pattern(1, LEN),
        )?;
        s.swap_out(&[1])?.wait()?;
        s.device().fail_transfer(1, stage);
        swap_error(s.swap_in(&[1])?.wait(), "swap_in with a failing transfer")?;
        expect_state(&rig, TensorState::Stored, "after the failed swap-in")?;
        s.swap_in(&[1])?.wait()?;
        expect_bytes(
            "bytes after the retried swap-in",
            &rig.bytes(1)?,
            &pattern(1, LEN),
        )?;
        ctx.checked(2);
        rig.finish()?;
    }
    Ok(())
}
