//! More tensors than slabs, and dropping a swapper with work in flight.

use swap_api::swapper::TensorState;
use swap_api::{Device, DirOptions};

use super::{rig, SLAB};
use crate::{check, expect_bytes, pattern, Ctx, Outcome};

/// Twenty tensors, each larger than a slab, through a two-slab pool: both
/// directions complete by back-pressure, never more than two slabs leased.
pub fn pool_pressure<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let rig = rig(ctx, 2, DirOptions::default())?;
    let s = &rig.swapper;
    let ids: Vec<u64> = (0..20).collect();
    let len = |id: u64| SLAB + 1000 * id as usize;
    for &id in &ids {
        rig.put(id, &pattern(id, len(id)))?;
    }
    s.swap_out(&ids)?.wait()?;
    s.swap_in(&ids)?.wait()?;
    for &id in &ids {
        expect_bytes(
            &format!("tensor {id}"),
            &rig.bytes(id)?,
            &pattern(id, len(id)),
        )?;
    }
    let stats = rig.pool.stats();
    check!(stats.peak <= 2, "{stats:?}");
    ctx.checked(ids.len());
    rig.finish()
}

/// Dropping a swapper with swaps queued and in flight returns every slab,
/// removes every file, and does not hang; tickets report the cancellation.
pub fn drop_in_flight<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let rig = rig(ctx, 2, DirOptions::default())?;
    let s = &rig.swapper;
    let ids: Vec<u64> = (0..12).collect();
    for &id in &ids {
        rig.put(id, &pattern(id, 2 * SLAB + 7))?;
    }
    s.swap_out(&ids[..6])?.wait()?;
    s.prefetch(&ids[..6])?;
    let out = s.swap_out(&ids[6..])?;
    check!(
        s.status(11)?.state != TensorState::Resident,
        "a queued swap-out is reported resident"
    );
    rig.finish()?;
    // The ticket outlives the swapper: every tensor is accounted for.
    let failures = out.wait_all();
    check!(
        failures.len() <= 6,
        "{} failures for 6 tensors",
        failures.len()
    );
    ctx.checked(ids.len());
    Ok(())
}
