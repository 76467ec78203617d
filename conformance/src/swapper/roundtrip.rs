//! Tensors of every awkward size go out and come back byte for byte, through
//! the file and through the host tier; bad calls are typed errors.

use tensorswap_core::{Device, DeviceExt, DirOptions, DirectIo, Error, IoOp};
use tensorswap_swapper::{SwapError, TensorMeta, TensorState};

use super::{rig, Rig, SLAB};
use crate::{check, expect_bytes, pattern, Ctx, Outcome};

/// Sizes around the alignment and the slab, and one streaming through
/// several slabs.
const SIZES: [usize; 10] = [
    0,
    1,
    511,
    4095,
    4096,
    4097,
    SLAB - 1,
    SLAB,
    SLAB + 1,
    3 * SLAB + 17,
];

pub(super) fn roundtrip_all<D: Device>(rig: &Rig<D>, expect_stored: TensorState) -> Outcome {
    let s = &rig.swapper;
    let ids: Vec<u64> = (0..SIZES.len() as u64).collect();
    for (&id, &len) in ids.iter().zip(&SIZES) {
        rig.put(id, &pattern(id, len))?;
    }
    s.swap_out(&ids)?.wait()?;
    for (&id, &len) in ids.iter().zip(&SIZES) {
        let status = s.status(id)?;
        check!(
            status.state == expect_stored,
            "tensor {id} ({len} bytes) is {} after swap_out",
            status.state
        );
        check!(
            status.padded_bytes >= len,
            "padded length {} < {len}",
            status.padded_bytes
        );
        expect_bytes(
            &format!("stored tensor {id} via swap_into"),
            &rig.bytes(id)?,
            &pattern(id, len),
        )?;
    }
    // Half swap in explicitly, half by prefetch + get.
    let (first, second) = ids.split_at(ids.len() / 2);
    s.swap_in(first)?.wait()?;
    s.prefetch(second)?;
    for (&id, &len) in ids.iter().zip(&SIZES) {
        let handle = s.get(id)?;
        check!(
            handle.len() >= len,
            "device buffer of {} bytes for a {len}-byte tensor",
            handle.len()
        );
        let got = s
            .device()
            .download_shared(handle.buffer(), 0, vec![0u8; len])?;
        expect_bytes(
            &format!("tensor {id} ({len} bytes) after swap_in"),
            &got,
            &pattern(id, len),
        )?;
        check!(s.status(id)?.clean, "tensor {id} not clean after swap_in");
    }
    Ok(())
}

/// Sizes 0, 1, odd, aligned, slab +- 1 and several slabs round-trip, under
/// direct and buffered I/O, with small tensors sharing slabs.
pub fn mixed_sizes<D: Device>(ctx: &Ctx<D>) -> Outcome {
    for options in [
        DirOptions::default(),
        DirOptions::default().direct_io(DirectIo::Off),
    ] {
        let rig = rig(ctx, 3, options)?;
        roundtrip_all(&rig, TensorState::Stored)?;
        // A second round: extents are reused, bytes replaced.
        let s = &rig.swapper;
        s.remove(9)?;
        rig.put(9, &pattern(99, 2 * SLAB + 5))?;
        s.swap_out(&[9])?.wait()?;
        expect_bytes(
            "re-registered tensor",
            &rig.bytes(9)?,
            &pattern(99, 2 * SLAB + 5),
        )?;
        ctx.checked(SIZES.len() + 1);
        rig.finish()?;
    }
    Ok(())
}

/// The engine-only baseline of a swap (`file_io_only`): runs for tensors
/// placed in the file (tensor 2), refuses a host-tier one (tensor 1), and
/// reports a read past the end of its file.
fn file_io_only<D: Device>(rig: &Rig<D>) -> Outcome {
    let s = &rig.swapper;
    let file = s.store().create_file()?;
    let refused = s.file_io_only(&[2, 1], IoOp::Write, &file);
    check!(
        matches!(refused, Err(SwapError::InvalidState { id: 1, .. })),
        "file_io_only of a host-tier tensor: {refused:?}"
    );
    let short = s.file_io_only(&[2], IoOp::Read, &file);
    check!(
        matches!(short, Err(SwapError::Core(Error::ShortIo { .. }))),
        "file_io_only reading an empty file: {short:?}"
    );
    s.file_io_only(&[2], IoOp::Write, &file)?;
    s.file_io_only(&[2], IoOp::Read, &file)?;
    check!(
        s.status(2)?.state == TensorState::Stored,
        "file_io_only changed the tensor's state"
    );
    Ok(())
}

/// With `max_in_cpu`, the first tensors that fit stay in host memory
/// (`Host`), the rest go to the file; both come back intact.
pub fn host_tier<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let mut rig = rig(ctx, 3, DirOptions::default())?;
    let budget = 5000;
    rig.swapper = rig.swapper.with_max_in_cpu(budget);
    let s = &rig.swapper;
    rig.put(1, &pattern(1, 4000))?;
    rig.put(2, &pattern(2, 4000))?; // does not fit beside tensor 1
    rig.put(3, &pattern(3, 1000))?;
    s.swap_out(&[1, 2, 3])?.wait()?;
    let states: Vec<TensorState> = [1, 2, 3]
        .iter()
        .map(|&id| s.status(id).map(|st| st.state))
        .collect::<Result<_, _>>()?;
    check!(
        states == [TensorState::Host, TensorState::Stored, TensorState::Host],
        "homes chosen {states:?}, expected host, file, host within {budget} bytes"
    );
    check!(
        s.host_bytes() == 5000,
        "host tier holds {} bytes",
        s.host_bytes()
    );
    check!(
        s.stored_range(1)?.is_none() && s.stored_range(2)?.is_some(),
        "stored_range disagrees with the homes"
    );
    file_io_only(&rig)?;
    s.swap_in(&[1, 2, 3])?.wait()?;
    for (id, len) in [(1, 4000), (2, 4000), (3, 1000)] {
        expect_bytes(&format!("tensor {id}"), &rig.bytes(id)?, &pattern(id, len))?;
    }
    // A released host-tier tensor goes back to Host without a copy.
    s.release(&[1])?;
    check!(
        s.status(1)?.state == TensorState::Host,
        "released host tensor is {}",
        s.status(1)?.state
    );
    s.remove(1)?;
    check!(
        s.host_bytes() == 1000,
        "removing a host tensor left {} bytes counted",
        s.host_bytes()
    );
    ctx.checked(3);
    rig.finish()
}

/// Unknown ids, duplicates, illegal transitions, short and foreign buffers
/// are typed errors that change nothing.
pub fn errors<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let rig = rig(ctx, 2, DirOptions::default())?;
    let s = &rig.swapper;
    rig.put(1, &pattern(1, 5000))?;
    rig.put(2, &pattern(2, 5000))?;
    let invalid = |r: Result<(), SwapError>, op: &str, state: TensorState| -> Outcome {
        match r {
            Err(SwapError::InvalidState { state: got, .. }) if got == state => Ok(()),
            other => Err(crate::CaseError(format!(
                "{op}: expected InvalidState({state}), got {other:?}"
            ))),
        }
    };
    check!(
        matches!(s.swap_out(&[7]), Err(SwapError::UnknownTensor { id: 7 })),
        "swap_out of an unknown id"
    );
    check!(
        matches!(
            s.swap_out(&[1, 1]),
            Err(SwapError::Core(Error::Config { .. }))
        ),
        "an id listed twice"
    );
    check!(
        s.status(1)?.state == TensorState::Resident,
        "a refused call changed the state"
    );
    invalid(
        s.swap_in(&[1]).map(drop),
        "swap_in of a resident tensor",
        TensorState::Resident,
    )?;
    invalid(
        s.release(&[1]),
        "release of a never-stored tensor",
        TensorState::Resident,
    )?;
    let handle = s.get(1)?;
    invalid(
        s.swap_out(&[2, 1]).map(drop),
        "swap_out with a live handle",
        TensorState::Resident,
    )?;
    check!(
        s.status(2)?.state == TensorState::Resident,
        "a refused list moved its first tensor"
    );
    drop(handle);
    s.swap_out(&[1])?.wait()?;
    invalid(
        s.swap_out(&[1]).map(drop),
        "swap_out twice",
        TensorState::Stored,
    )?;
    invalid(
        s.get(1).map(drop),
        "get of a stored tensor",
        TensorState::Stored,
    )?;
    let dev = s.device();
    let refused = s.register(2, TensorMeta::bytes_of(10), dev.alloc(10)?);
    check!(
        matches!(refused, Err(ref r) if matches!(r.error, SwapError::InvalidState { .. })),
        "registering an id twice"
    );
    let short = s.register(3, TensorMeta::bytes_of(100), dev.alloc(99)?);
    check!(
        matches!(short, Err(ref r) if matches!(r.error.core(), Some(Error::Layout { .. })) && r.value.len() == 99),
        "a short device buffer was not refused with its buffer handed back"
    );
    let wrong = s.swap_into(1, vec![0u8; 4999]);
    check!(
        matches!(wrong, Err(ref r) if r.value.len() == 4999),
        "swap_into a buffer of the wrong length"
    );
    expect_bytes(
        "tensor 1 after the refusals",
        &rig.bytes(1)?,
        &pattern(1, 5000),
    )?;
    ctx.checked(12);
    rig.finish()
}
