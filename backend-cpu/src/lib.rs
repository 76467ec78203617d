//! tensorswap's CPU backend: the reference every other backend is held against.
//!
//! "Device" memory is real host memory, page-locked with `mlock` where the
//! process may (root, or a large enough `RLIMIT_MEMLOCK`), and transfers are
//! real copies run on a dedicated copy thread, so completion tickets are
//! truly asynchronous. Direct storage ([`tensorswap_core::Device::submit_direct`])
//! reads files straight into device memory on the same thread, so swappers'
//! direct path (`use_gds`) is exercised everywhere. Knobs for tests: a memory capacity, an added latency
//! per transfer, and the pinning policy. Faults are injected with
//! [`tensorswap_core::FaultyDevice`], which works on every backend.
//!
//! ```
//! use tensorswap_cpu::CpuDevice;
//! use tensorswap_core::DeviceExt;
//!
//! let dev = CpuDevice::builder().capacity(1 << 20).build()?;
//! let mut host = dev.alloc_host(4096)?;
//! host.fill(42);
//! let done = dev.upload(host, dev.alloc(4096)?, 0)?.wait()?;
//! let back = dev.download(done.device, 0, vec![0u8; 4096])?.wait()?;
//! assert!(back.host.iter().all(|&b| b == 42));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

//! # Modules, and what each may use
//!
//! - `memory` (budgeted, page-locked allocations) and `copier` (the copy
//!   thread, on `tensorswap_core::sync` and, for direct storage, the thread
//!   engine's request runner): `swap-api` only.
//! - `builder` and `device` (the [`tensorswap_core::Device`] impl): `memory` and
//!   `copier`.
//!
//! The crate uses `swap-api`'s public items only, and no other backend.

#![deny(unsafe_op_in_unsafe_fn)]

mod builder;
mod copier;
mod device;
mod memory;

pub use builder::CpuDeviceBuilder;
pub use copier::CpuPending;
pub use device::CpuDevice;
pub use memory::CpuMemory;
pub use tensorswap_core::Pinning;

/// The backend's name in errors, reports and `TENSORSWAP_REQUIRE`.
pub const BACKEND: &str = "cpu";
