//! Pools whose memory the device refuses to register: page-locked memory
//! the device allocates itself where it can ([`Device::allocate_pinned`]),
//! an unlocked pool otherwise; transfers through either are exact.

use tensorswap_core::{Device, DeviceExt, FaultyDevice, PinnedPool, Pinning};

use crate::{check, expect_bytes, pattern, Ctx, Outcome};

const SLAB: usize = 64 << 10;

fn pool<D: Device>(dev: &D, pinning: Pinning) -> tensorswap_core::Result<PinnedPool> {
    PinnedPool::builder()
        .slab_size(SLAB)
        .slabs(2)
        .pinning(pinning)
        .build_for(dev)
}

/// A refused registration falls back to the device's own page-locked
/// memory (or, where it has none, to an unlocked pool under
/// `Pinning::Auto` and an error under `Pinning::Required`); slabs of the
/// resulting pool carry an upload and a download byte for byte.
pub fn refused_registration<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = FaultyDevice::new(ctx.device()?);
    // Whether this process can pin at all (RLIMIT_MEMLOCK, pinning policy).
    let can_pin = pool(&dev, Pinning::Auto)?.is_pinned();
    dev.refuse_registration(true);
    let own = dev.allocate_pinned(SLAB).map(drop);
    if let Err(err) = &own {
        check!(
            err.is_unavailable(),
            "allocate_pinned failed with {err}, expected Unsupported or Unavailable"
        );
    }
    let fallback = own.is_ok() && can_pin;

    let auto = pool(&dev, Pinning::Auto)?;
    check!(
        auto.is_pinned() == fallback,
        "pool pinned: {}, expected {fallback} (device allocates pinned memory: {}, pinning possible: {can_pin})",
        auto.is_pinned(),
        own.is_ok()
    );
    let bytes = pattern(11, SLAB);
    let mut slab = auto.lease();
    slab.copy_from_slice(&bytes);
    let done = dev.upload_blocking(slab, dev.alloc(SLAB)?, 0)?;
    let mut back = auto.lease();
    back.fill(0);
    let back = dev.download_blocking(done.device, 0, back)?.host;
    expect_bytes("bytes through the fallback pool", &back, &bytes)?;

    if can_pin {
        let required = pool(&dev, Pinning::Required);
        check!(
            required.is_ok() == fallback,
            "Pinning::Required with registration refused: {:?}, expected success {fallback}",
            required.as_ref().map(PinnedPool::is_pinned)
        );
    }
    ctx.checked(2);
    Ok(())
}
