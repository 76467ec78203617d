//! More tensors than slabs, a store shared with a gradient swapper, and
//! dropping a swapper with work in flight.

use std::sync::mpsc;
use std::time::Duration;

use tensorswap_core::{Device, DeviceExt, DirOptions, Error, FaultStage, IoOp};
use tensorswap_swapper::{GradientSwapper, SwapError, TensorState};

use super::{rig, Rig, SLAB};
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

/// A swapper and a gradient swapper sharing a one-slab store, the gradient
/// swapper's open slab holding the only slab: the swap-out fails with
/// `PoolStalled` (it used to wait forever), the tensor stays resident and
/// whole, and once the gradients are flushed the swap-out goes through.
/// The gradient swapper's records are intact, and an id it never saw is
/// `UnknownTensor` (it used to sum to `Ok(0)`).
pub fn shared_store<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let rig = rig(ctx, 1, DirOptions::default())?;
    let (tx, rx) = mpsc::channel();
    // On its own thread, so that a wait that never ends fails the case.
    std::thread::spawn(move || {
        let _ = tx.send(shared_store_on(rig));
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            Err(CaseError(
                "swap_out waited forever for the slab the gradient swapper holds".into(),
            ))
        })
}

fn shared_store_on<D: Device>(rig: Rig<D>) -> Outcome {
    let s = &rig.swapper;
    let mut grads = GradientSwapper::new(s.store().clone());
    let gradient: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    grads.append(7, &gradient)?;
    let len = 3 * SLAB + 17;
    rig.put(1, &pattern(1, len))?;
    match s.swap_out(&[1])?.wait() {
        Err(SwapError::Tensor { id: 1, cause, .. })
            if matches!(cause.core(), Some(Error::PoolStalled { slabs: 1, parked: 1 })) => {}
        other => {
            return Err(CaseError(format!(
                "swap_out beside a gradient swapper holding the only slab: expected PoolStalled, got {other:?}"
            )))
        }
    }
    let status = s.status(1)?;
    check!(
        status.state == TensorState::Resident,
        "after the stalled swap-out the tensor is {}",
        status.state
    );
    expect_bytes(
        "bytes after the stalled swap-out",
        &rig.bytes(1)?,
        &pattern(1, len),
    )?;
    grads.flush()?;
    s.swap_out(&[1])?.wait()?;
    s.swap_in(&[1])?.wait()?;
    expect_bytes(
        "bytes after the retried swap-out",
        &rig.bytes(1)?,
        &pattern(1, len),
    )?;
    let mut sum = vec![0f32; gradient.len()];
    check!(
        grads.sum_into(7, &mut sum)? == 1,
        "one record of gradient 7"
    );
    check!(sum == gradient, "gradient 7 came back different");
    check!(
        matches!(
            grads.sum_into(8, &mut sum),
            Err(SwapError::UnknownTensor { id: 8 })
        ),
        "sum_into of a gradient never appended did not say so"
    );
    grads.clear()?;
    drop(grads);
    rig.finish()
}

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

/// `take` hands over a swapped-in tensor's device memory, bytes intact, and
/// leaves the tensor stored (a second swap-in reads it again); it is refused
/// for a tensor never stored, one only stored, and while a handle lives.
pub fn take_hands_over<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let rig = rig(ctx, 2, DirOptions::default())?;
    let s = &rig.swapper;
    let len = 2 * SLAB + 5;
    rig.put(1, &pattern(1, len))?;
    let refused = |what: &str, result: Result<_, SwapError>| match result {
        Err(SwapError::InvalidState { op: "take", .. }) => Ok(()),
        other => Err(CaseError(format!(
            "take of {what}: expected InvalidState, got {other:?}"
        ))),
    };
    refused("a tensor never stored", s.take(1).map(drop))?;
    s.swap_out(&[1])?.wait()?;
    refused("a stored tensor", s.take(1).map(drop))?;
    s.prefetch(&[1])?;
    let handle = s.get(1)?;
    refused("a tensor with a live handle", s.take(1).map(drop))?;
    drop(handle);
    let buf = s.take(1)?;
    let status = s.status(1)?;
    check!(
        status.state == TensorState::Stored,
        "after take the tensor is {}",
        status.state
    );
    check!(
        buf.len() >= len,
        "the taken buffer has {} bytes, not {len}",
        buf.len()
    );
    let back = s.device().download_blocking(buf, 0, vec![0u8; len])?;
    expect_bytes("bytes of the taken buffer", &back.host, &pattern(1, len))?;
    s.swap_in(&[1])?.wait()?;
    expect_bytes("bytes swapped in again", &rig.bytes(1)?, &pattern(1, len))
}

/// `unregister` hands a resident tensor's device memory back and forgets
/// the tensor: one never stored, one whose swap-out failed on a full disk
/// (the bytes it holds are the only copy), one swapped in and changed since;
/// its file extent is freed and its id free again. It is refused for a
/// stored tensor and while a handle lives, which leave the tensor as it was.
pub fn unregister_hands_back<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let rig = rig(ctx, 2, DirOptions::default())?;
    let s = &rig.swapper;
    let len = SLAB + 17;
    let back = |buf, what: &str, want: &[u8]| -> Outcome {
        let done = s.device().download_blocking(buf, 0, vec![0u8; len])?;
        expect_bytes(what, &done.host, want)
    };
    rig.put(1, &pattern(1, len))?;
    back(s.unregister(1)?, "a tensor never stored", &pattern(1, len))?;
    check!(
        matches!(s.status(1), Err(SwapError::UnknownTensor { id: 1 })),
        "an unregistered tensor is still known"
    );

    rig.put(1, &pattern(2, len))?;
    s.store()
        .engine()
        .fail_next(IoOp::Write, libc::ENOSPC, FaultStage::Complete);
    check!(
        s.swap_out(&[1])?.wait().is_err(),
        "a swap-out on a full disk succeeded"
    );
    back(
        s.unregister(1)?,
        "after a failed swap-out",
        &pattern(2, len),
    )?;

    rig.put(1, &pattern(3, len))?;
    s.swap_out(&[1])?.wait()?;
    let stored = s.stored_range(1)?;
    let refused = |what: &str, result: Result<_, SwapError>| match result {
        Err(SwapError::InvalidState {
            op: "unregister", ..
        }) => Ok(()),
        other => Err(CaseError(format!(
            "unregister of {what}: expected InvalidState, got {other:?}"
        ))),
    };
    refused("a stored tensor", s.unregister(1).map(drop))?;
    check!(
        s.status(1)?.state == TensorState::Stored && s.stored_range(1)? == stored,
        "a refused unregister changed the stored tensor"
    );
    s.swap_in(&[1])?.wait()?;
    let handle = s.get(1)?;
    refused("a tensor with a live handle", s.unregister(1).map(drop))?;
    drop(handle);
    let buf = s.unregister(1)?;
    let buf = s.device().upload_blocking(pattern(4, len), buf, 0)?.device;
    back(buf, "a swapped-in tensor, changed", &pattern(4, len))?;
    // Its extent is free: the next tensor of the same size takes it.
    rig.put(2, &pattern(5, len))?;
    s.swap_out(&[2])?.wait()?;
    check!(
        s.stored_range(2)? == stored,
        "the unregistered tensor's extent {stored:?} was not reused (got {:?})",
        s.stored_range(2)?
    );
    ctx.checked(4);
    rig.finish()
}
