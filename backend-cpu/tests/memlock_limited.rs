//! The CPU backend, pinned pools and io_uring under a non-root user's
//! page-locking limit: they must run unlocked (pools unregistered), say so,
//! move more bytes than the limit allows to lock, and refuse
//! `Pinning::Required` with an actionable error.
//!
//! A user's own buffer pinned past the limit is refused and handed back.
//!
//! `harness = false` so that privileges are dropped in `main` before any
//! thread exists ([`tensorswap_conformance::limit_memlock`]).

use std::error::Error as StdError;
use std::process::ExitCode;

use tensorswap_core::sys::memlock::{Locked, MemlockLimit};
use tensorswap_core::{
    AioConfig, Device, DeviceExt, Error, IoEngineExt, PinnedPool, SwapDir, UringEngine,
};
use tensorswap_cpu::{CpuDevice, Pinning};

const LIMIT: u64 = 8 << 20;

/// One named check; `Err` says what went wrong.
type Check = (&'static str, fn() -> Result<(), Box<dyn StdError>>);

fn auto_pinning_runs_unlocked() -> Result<(), Box<dyn StdError>> {
    let dev = CpuDevice::new()?;
    if dev.capabilities().pinned_host {
        return Err("capabilities claim pinned host memory under an 8 MiB limit".into());
    }
    // Four times what the process may lock, through host and device memory.
    let len = 32 << 20;
    let mut host = dev.alloc_host(len)?;
    if host.is_pinned() {
        return Err("host buffer claims to be pinned".into());
    }
    host.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = (i % 251) as u8);
    let done = dev.upload_blocking(host, dev.alloc(len)?, 0)?;
    let back = dev.download_blocking(done.device, 0, vec![0u8; len])?;
    if back.host[..] != done.host[..] {
        return Err("round trip through unlocked memory changed bytes".into());
    }
    Ok(())
}

fn required_pinning_is_refused() -> Result<(), Box<dyn StdError>> {
    match CpuDevice::builder().pinning(Pinning::Required).build() {
        Err(Error::Unavailable { reason, .. }) if reason.contains("ulimit -l") => Ok(()),
        Err(other) => Err(format!("expected Unavailable naming `ulimit -l`, got {other}").into()),
        Ok(_) => Err("Pinning::Required opened a device that cannot pin".into()),
    }
}

fn locking_past_the_limit_is_a_typed_error() -> Result<(), Box<dyn StdError>> {
    let buf = vec![0u8; 2 * LIMIT as usize];
    // SAFETY: `buf` outlives the guard (dropped at the end of the match).
    match unsafe { Locked::new(buf.as_ptr(), buf.len()) } {
        Err(e @ Error::Pin { len, .. })
            if len == buf.len() && e.to_string().contains("RLIMIT_MEMLOCK") =>
        {
            Ok(())
        }
        Err(other) => Err(format!("expected Error::Pin naming RLIMIT_MEMLOCK, got {other}").into()),
        Ok(_) => Err("locked twice the limit".into()),
    }
}

/// A 16 MiB pool (twice the limit) runs unlocked under Auto, and Required
/// names the budget and the knobs.
fn pool_over_the_limit() -> Result<(), Box<dyn StdError>> {
    let builder = PinnedPool::builder().slab_size(4 << 20).slabs(4);
    let pool = builder.clone().build()?;
    if pool.is_pinned() {
        return Err("a 16 MiB pool claims to be pinned under an 8 MiB limit".into());
    }
    let dev = CpuDevice::new()?;
    let for_device = builder.clone().build_for(&dev)?;
    if for_device.is_pinned() {
        return Err("a device-registered pool claims to be pinned".into());
    }
    match builder.pinning(Pinning::Required).build() {
        Err(e @ Error::MemlockBudget { requested, limit }) => {
            // The message names the fixes of every caller (the DeepSpeed knob
            // names are wrong for the CLI), and no fallback that already ran.
            let text = e.to_string();
            let generic = !text.contains("buffer_count") && !text.contains("fallback");
            if requested != 16 << 20 || limit != LIMIT || !text.contains("ulimit -l") || !generic {
                return Err(format!("unexpected budget error: {e}").into());
            }
            Ok(())
        }
        Err(other) => Err(format!("expected MemlockBudget, got {other}").into()),
        Ok(_) => Err("Pinning::Required built a pool beyond RLIMIT_MEMLOCK".into()),
    }
}

/// io_uring refuses to register a pool beyond the limit; requests on its
/// slabs still move the right bytes with plain reads and writes.
fn uring_registration_falls_back() -> Result<(), Box<dyn StdError>> {
    let engine = UringEngine::new(&AioConfig::default())?;
    let pool = PinnedPool::builder().slab_size(4 << 20).slabs(4).build()?;
    if pool.register_with(&engine) {
        return Err("io_uring registered 16 MiB under an 8 MiB limit".into());
    }
    let parent = std::env::temp_dir().join(format!("memlock-limited-{}", std::process::id()));
    std::fs::create_dir_all(&parent)?;
    let result = (|| -> Result<(), Box<dyn StdError>> {
        let dir = SwapDir::create(&parent)?;
        let file = dir.create_file()?;
        let mut slab = pool.lease();
        slab.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i % 253) as u8);
        let written = engine.write(&file, 0, slab)?.wait()?.buf;
        let back = engine.read(&file, 0, pool.lease())?.wait()?.buf;
        if back[..] != written[..] {
            return Err("bytes read back differ".into());
        }
        Ok(())
    })();
    std::fs::remove_dir(&parent)?;
    result
}

/// A user's buffer past the limit is refused and handed back; one within
/// it pins, though the device's own memory runs unlocked here.
fn pinning_user_memory_at_the_limit() -> Result<(), Box<dyn StdError>> {
    let dev = CpuDevice::new()?;
    match tensorswap_conformance::cases::past_the_memlock_limit(&dev, LIMIT as usize) {
        Ok(true) => Ok(()),
        Ok(false) => Err("the cpu device did not pin a user's buffer within the limit".into()),
        Err(e) => Err(e.0.into()),
    }
}

fn main() -> ExitCode {
    if let Err(e) = tensorswap_conformance::limit_memlock(LIMIT) {
        println!("memlock_limited: cannot set up the limit: {e}");
        return ExitCode::FAILURE;
    }
    println!("memlock_limited: {}", MemlockLimit::current());
    let checks: [Check; 6] = [
        ("pool_over_the_limit", pool_over_the_limit),
        (
            "uring_registration_falls_back",
            uring_registration_falls_back,
        ),
        ("auto_pinning_runs_unlocked", auto_pinning_runs_unlocked),
        ("required_pinning_is_refused", required_pinning_is_refused),
        (
            "locking_past_the_limit_is_a_typed_error",
            locking_past_the_limit_is_a_typed_error,
        ),
        (
            "pinning_user_memory_at_the_limit",
            pinning_user_memory_at_the_limit,
        ),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        match check() {
            Ok(()) => println!("test {name} ... ok"),
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED: {e}");
            }
        }
    }
    println!(
        "memlock_limited: {} passed, {failed} failed",
        checks.len() - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
