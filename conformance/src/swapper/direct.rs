//! `use_gds`: the direct path where the device can take it, the pinned path
//! with a reason where it cannot; the same bytes and the same failure
//! semantics either way.

use tensorswap_core::{Device, DirOptions, FaultStage};
use tensorswap_swapper::{DataPath, TensorState};

use super::faults::transfer_faults;
use super::roundtrip::roundtrip_all;
use super::{rig_with, Rig, SLAB};
use crate::{check, CaseError, Ctx, Outcome};

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
/// which reads its padded extent through the slabs (and must not trip over
/// checksums the direct write made stale); with checksums on (the default)
/// and off alike.
pub fn gds_path<D: Device>(ctx: &Ctx<D>) -> Outcome {
    for options in [
        DirOptions::default(),
        DirOptions::default().checksums(false),
    ] {
        let rig = rig_with(ctx, 2, options, true)?;
        check_path(&rig)?;
        roundtrip_all(&rig, TensorState::Stored)?;
        rig.finish()?;
        ctx.checked(1);
    }
    Ok(())
}

/// With `use_gds`, a failing transfer (refused at submission or failing at
/// completion) leaves the tensor where it was, readable, and both
/// directions retry cleanly.
pub fn gds_faults<D: Device>(ctx: &Ctx<D>) -> Outcome {
    for stage in [FaultStage::Submit, FaultStage::Complete] {
        let rig = rig_with(ctx, 2, DirOptions::default(), true)?;
        // One direct operation per tensor: the first from then fails.
        transfer_faults(&rig, stage, (1, 1), 2 * SLAB + 300)?;
        ctx.checked(2);
        rig.finish()?;
    }
    Ok(())
}
