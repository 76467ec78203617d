//! Pinning a user's buffer on wgpu under a non-root user's page-locking
//! limit: wgpu has no host registration, so every buffer, twice the limit
//! included, is accepted unpinned and moves exactly. Run on wgpu's noop
//! backend (no adapter needed) and on the machine's adapter where there is
//! one (skipped with the reason otherwise, a failure under
//! `TENSORSWAP_REQUIRE=wgpu`).
//!
//! `harness = false` so that privileges are dropped in `main` before any
//! thread exists ([`tensorswap_conformance::limit_memlock`]).

use std::process::ExitCode;

use tensorswap_conformance::cases::past_the_memlock_limit;
use tensorswap_conformance::{limit_memlock, required_backends};
use tensorswap_wgpu::WgpuDevice;

const LIMIT: usize = 8 << 20;

/// Runs the check on `dev`; `Err` says what went wrong.
fn check(dev: &WgpuDevice) -> Result<(), String> {
    match past_the_memlock_limit(dev, LIMIT) {
        Ok(false) => Ok(()),
        Ok(true) => Err("wgpu claims to have page-locked a user's buffer".into()),
        Err(e) => Err(e.0),
    }
}

fn main() -> ExitCode {
    if let Err(e) = limit_memlock(LIMIT as u64) {
        println!("memlock_limited: cannot set up the limit: {e}");
        return ExitCode::FAILURE;
    }
    let noop = {
        let (device, queue) = wgpu::Device::noop(&wgpu::DeviceDescriptor::default());
        WgpuDevice::builder().wrap(device, queue)
    };
    let mut results = vec![(
        "wgpu-noop",
        noop.map_err(|e| e.to_string()).and_then(|dev| check(&dev)),
    )];
    let required = match required_backends() {
        Ok(names) => names.iter().any(|n| n == "wgpu"),
        Err(e) => {
            println!("memlock_limited: {e}");
            return ExitCode::FAILURE;
        }
    };
    match WgpuDevice::open() {
        Ok(dev) => results.push(("wgpu", check(&dev))),
        Err(e) if e.is_unavailable() && !required => {
            println!("test wgpu::pinning_user_memory_at_the_limit ... skipped: {e}");
        }
        Err(e) => results.push(("wgpu", Err(format!("opening the device failed: {e}")))),
    }
    let mut failed = 0;
    for (label, result) in results {
        match result {
            Ok(()) => println!("test {label}::pinning_user_memory_at_the_limit ... ok"),
            Err(e) => {
                failed += 1;
                println!("test {label}::pinning_user_memory_at_the_limit ... FAILED: {e}");
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
