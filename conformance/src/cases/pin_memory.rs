//! Pinning memory the caller owns ([`DeviceExt::pin_memory`]): round trips
//! through pinned `Vec`s, boxed slices and host buffers, to the device and
//! to a file; unpinning after transfers gives back the same buffer; every
//! refusal gives the buffer back unchanged.

use tensorswap_core::sys::memlock::MemlockLimit;
use tensorswap_core::{
    AioConfig, AnyEngine, Device, DeviceExt, EngineKind, Error, FaultyDevice, HostBuf, HostBuffer,
    IoEngineExt, PinnedPool, Rejected, SwapDir,
};

use crate::engine::scratch_parent;
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

/// Where a buffer's bytes are: unpinning must give back this very buffer.
fn place<B: HostBuf>(buf: &B) -> (usize, usize) {
    (buf.stable_ptr() as usize, buf.bytes_len())
}

/// `Ok` when `rejected` is a memlock refusal that this process's limit
/// explains (the case then has nothing left to pin), `Err` for any other
/// refusal.
fn limit_refused<B>(what: &str, rejected: &Rejected<B>) -> Result<(), CaseError> {
    let bounded = MemlockLimit::current().lockable().is_some();
    match &rejected.error {
        Error::Pin { .. } | Error::MapCount { .. } if bounded => Ok(()),
        other => Err(CaseError(format!("pinning {what} failed: {other}"))),
    }
}

/// A pinned `Vec<u32>` uploads, a pinned `Box<[u8]>` downloads, a pinned
/// [`HostBuffer`] is written to a file and another read back; each is
/// pinned where the device pins its own memory; unpinning gives back the
/// same buffer (address, length, capacity) with the bytes the transfers
/// left, and the same memory can be pinned again.
pub fn round_trips<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    let caps = dev.capabilities();
    let words: Vec<u32> = (0..4 << 10)
        .map(|i: u32| i.wrapping_mul(2_654_435_761))
        .collect();
    let bytes: Vec<u8> = bytemuck::cast_slice(&words).to_vec();
    let (vec_ptr, vec_cap) = (words.as_ptr() as usize, words.capacity());
    let expected = words.clone();

    let src = match dev.pin_memory(words) {
        Ok(src) => src,
        // A limit too low for even 16 KiB: the refusal is what is checked.
        Err(rejected) => {
            limit_refused("a 16 KiB Vec", &rejected)?;
            check!(
                rejected.value.as_ptr() as usize == vec_ptr && rejected.value == expected,
                "the refused Vec came back changed"
            );
            ctx.checked(1);
            return Ok(());
        }
    };
    check!(
        src.is_pinned() || !caps.pinned_host,
        "a device that pins its own host memory left a user's Vec unpinned"
    );
    let dst = dev.pin_memory(vec![0u8; bytes.len()].into_boxed_slice())?;
    let dst_place = place(&*dst);

    let up = dev.upload_blocking(src, dev.alloc(bytes.len())?, 0)?;
    let (mut src, mem) = (up.host, up.device);
    // Writes through the pinned value reach the device on the next upload.
    src.as_mut_slice()[0] = 0xdead_beef;
    let mem = dev.upload_blocking(src, mem, 0)?;
    let (src, mem) = (mem.host, mem.device);
    let mut want = bytes.clone();
    want[..4].copy_from_slice(&0xdead_beef_u32.to_ne_bytes());
    let head = dev.download_blocking(mem, 0, dst)?.host;

    let words = src.unpin();
    check!(
        (words.as_ptr() as usize, words.capacity()) == (vec_ptr, vec_cap),
        "unpin gave back another Vec (or one reallocated)"
    );
    expect_bytes("the unpinned Vec", bytemuck::cast_slice(&words), &want)?;
    let head = head.unpin();
    check!(place(&head) == dst_place, "unpin gave back another box");
    expect_bytes("the pinned box, downloaded into", &head, &want)?;
    // Unpinned for real: the same memory pins again.
    let again = dev.pin_memory(words)?;
    check!(
        again.as_ptr() as usize == vec_ptr,
        "re-pinning moved the Vec"
    );
    drop(again);

    files(&dev)?;
    ctx.checked(3);
    Ok(())
}

/// A pinned host buffer is written to a swap file and read back into
/// another pinned buffer.
fn files<D: Device>(dev: &D) -> Outcome {
    let parent = scratch_parent()?;
    let dir = SwapDir::create(parent.path())?;
    let file = dir.create_file()?;
    let engine = AnyEngine::new(EngineKind::Auto, &AioConfig::default())?;
    let len = 16 << 10;
    let data = pattern(21, len);
    let mut out = dev.pin_memory(HostBuffer::with_alignment(len, dir.alignment())?)?;
    out.bytes_mut().copy_from_slice(&data);
    let out = engine.write(&file, 0, out)?.wait()?.buf;
    let back = dev.pin_memory(HostBuffer::with_alignment(len, dir.alignment())?)?;
    let back = engine.read(&file, 0, back)?.wait()?.buf;
    expect_bytes("a pinned buffer read from a file", &back, &data)?;
    drop((out.unpin(), back.unpin()));
    Ok(())
}

/// Memory registered already (a buffer from `alloc_host`, a pool's slab, a
/// buffer pinned before) and a range the device refuses are typed errors
/// that give the buffer back unchanged; a refused buffer pins once the
/// device accepts it; an empty buffer pins.
pub fn refusals<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = FaultyDevice::new(ctx.device()?);
    let mut host = dev.alloc_host(8192)?;
    host.fill(3);
    let at = place(&host);
    let back = already(dev.pin_memory(host), "a buffer from alloc_host")?;
    check!(
        place(&back) == at && back.iter().all(|&b| b == 3),
        "alloc_host's buffer came back changed"
    );

    let pool = PinnedPool::builder()
        .slab_size(4096)
        .slabs(1)
        .build_for(&dev)?;
    already(dev.pin_memory(pool.lease()), "a pool's slab")?;

    let mine = match dev.pin_memory(pattern(5, 12_345)) {
        Ok(mine) => mine,
        Err(rejected) => {
            limit_refused("12 KiB", &rejected)?;
            ctx.checked(2);
            return Ok(());
        }
    };
    let at = place(&*mine);
    let twice = already(dev.pin_memory(mine), "a pinned buffer")?;
    check!(place(&*twice) == at, "the pinned buffer came back moved");
    let mine = twice.unpin();

    dev.refuse_registration(true);
    let refused = match dev.pin_memory(mine) {
        Ok(_) => {
            return Err(CaseError(
                "pinned although the device refused the range".into(),
            ))
        }
        Err(refused) => refused,
    };
    check!(
        matches!(refused.error, Error::Device { .. }),
        "a refused registration gave {}, expected Error::Device",
        refused.error
    );
    check!(
        place(&refused.value) == at && refused.value == pattern(5, 12_345),
        "the refused buffer came back changed"
    );
    dev.refuse_registration(false);
    drop(dev.pin_memory(refused.value)?.unpin());

    let empty = dev.pin_memory(Vec::<f32>::new())?;
    check!(empty.is_empty(), "an empty Vec pinned non-empty");
    drop(empty.unpin());
    ctx.checked(5);
    Ok(())
}

/// The buffer of an [`Error::AlreadyRegistered`] refusal.
fn already<B, P>(result: Result<P, Rejected<B>>, what: &str) -> Result<B, CaseError> {
    match result {
        Ok(_) => Err(CaseError(format!("{what} was registered twice"))),
        Err(Rejected {
            error: Error::AlreadyRegistered { .. },
            value,
        }) => Ok(value),
        Err(other) => Err(CaseError(format!(
            "pinning {what} gave {}, expected Error::AlreadyRegistered",
            other.error
        ))),
    }
}

/// Under a memlock limit of `limit` bytes (set by the caller before any
/// thread exists, in a `harness = false` test): a buffer twice the limit
/// is refused with [`Error::Pin`] naming `RLIMIT_MEMLOCK` and handed back
/// unchanged where the device pins on request; one of a quarter of the
/// limit pins; once unpinned, or dropped, a buffer's share of the limit is
/// free again. Where
/// pinning is a no-op (wgpu) every buffer is accepted unpinned and still
/// moves exactly. Returns whether the device pinned.
pub fn past_the_memlock_limit<D: Device>(dev: &D, limit: usize) -> Result<bool, CaseError> {
    let small = dev.pin_memory(vec![1u8; limit / 4])?;
    let big = pattern(9, 2 * limit);
    let at = place(&big);
    if !small.is_pinned() {
        let big = dev.pin_memory(big)?;
        check!(!big.is_pinned(), "pinned twice the memlock limit");
        let done = dev.upload_blocking(big, dev.alloc(2 * limit)?, 0)?;
        let back = dev.download_blocking(done.device, 0, vec![0u8; 2 * limit])?;
        expect_bytes(
            "through unpinned user memory",
            &back.host,
            &done.host.unpin(),
        )?;
        return Ok(false);
    }
    let refused = match dev.pin_memory(big) {
        Ok(_) => return Err(CaseError("pinned twice the memlock limit".into())),
        Err(refused) => refused,
    };
    check!(
        matches!(refused.error, Error::Pin { len, .. } if len == 2 * limit)
            && refused.error.to_string().contains("RLIMIT_MEMLOCK"),
        "past the limit: {}, expected Error::Pin naming RLIMIT_MEMLOCK",
        refused.error
    );
    check!(
        place(&refused.value) == at && refused.value == pattern(9, 2 * limit),
        "the refused buffer came back changed"
    );
    // Seven eighths of the limit fit only once the first quarter is free.
    let most = vec![2u8; limit / 8 * 7];
    let most = match dev.pin_memory(most) {
        Ok(_) => {
            return Err(CaseError(
                "a quarter and seven eighths of the limit both pinned".into(),
            ))
        }
        Err(refused) => refused.value,
    };
    drop(small.unpin());
    let most = dev.pin_memory(most)?;
    check!(
        most.is_pinned(),
        "seven eighths of the limit did not pin once the rest was unpinned"
    );
    // Dropping a pinned buffer unlocks it too: another seven eighths fit.
    drop(most);
    let again = dev.pin_memory(vec![3u8; limit / 8 * 7])?;
    check!(
        again.is_pinned(),
        "seven eighths of the limit did not pin once the last pinned buffer dropped"
    );
    Ok(true)
}
