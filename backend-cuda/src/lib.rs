//! tensorswap's CUDA backend: NVIDIA GPUs through cudarc's driver API.
//!
//! The driver library is loaded at run time, so the crate builds on
//! machines without CUDA; there [`CudaDevice::new`] returns
//! [`tensorswap_core::Error::Unavailable`] with the reason (no library, no device,
//! ordinal out of range) instead of panicking.
//!
//! - Device memory comes from the device's memory pool (`cuMemAllocAsync`)
//!   where it has one, else `cuMemAlloc`; running out is `OutOfMemory`
//!   with the bytes still free.
//! - Host memory is page-locked by registering it (`cuMemHostRegister`,
//!   [`HostRegistration`]), so one aligned buffer serves both `O_DIRECT`
//!   file I/O and DMA.
//! - Uploads and downloads run on two streams of their own, so the two
//!   directions overlap; each transfer's ticket is an event recorded after
//!   its copy, created with `CU_EVENT_BLOCKING_SYNC` so that waiting sleeps.
//!   Nothing synchronises except a waited ticket.
//!
//! - Where `cuMemHostRegister` refuses a pool's memory, the pool takes
//!   portable `cuMemHostAlloc` memory instead (not write-combined).
//! - With the `gds` feature, swap files are read into and written from
//!   device memory by cuFile (GPUDirect Storage), stream-ordered; without
//!   libcufile this is `Unavailable` with the fix, and swappers fall back to
//!   pinned memory.
//!
//! **Status**: not yet run on a GPU. Its conformance suite (the `gds`
//! cases on cuFile included) and its error paths run against the emulated
//! driver and cuFile (`backend-cuda/emulator`, issue 16) in every
//! `cargo test --workspace`; see the README's feature table.
//!
//! ```no_run
//! use tensorswap_cuda::CudaDevice;
//! use tensorswap_core::DeviceExt;
//!
//! let dev = CudaDevice::new(0)?;
//! let mut host = dev.alloc_host(1 << 20)?; // registered: DMA at full speed
//! host.fill(7);
//! let done = dev.upload(host, dev.alloc(1 << 20)?, 0)?.wait()?;
//! let back = dev.download(done.device, 0, vec![0u8; 1 << 20])?.wait()?;
//! assert!(back.host.iter().all(|&b| b == 7));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

//! # Modules, and what each may use
//!
//! - `driver` (loading libcuda, describing driver errors): cudarc only.
//! - `memory`, `pending` (events as tickets), `registration`
//!   (`cuMemHostRegister`), `host_alloc` (`cuMemHostAlloc`): `driver`.
//! - `gds` (cuFile, behind the `gds` feature): cudarc and `swap-api`'s
//!   errors and files; of this crate, only [`BACKEND`].
//! - `device` (the [`tensorswap_core::Device`] impl): everything above.
//! - [`emulated`] (running on the emulated driver, on purpose): `driver`,
//!   and the process's environment.
//!
//! The crate uses `swap-api`'s public items only, and no other backend.

#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod device;
mod driver;
pub mod emulated;
#[cfg(feature = "gds")]
mod gds;
mod host_alloc;
mod memory;
mod pending;
mod registration;

pub use cudarc;
pub use device::CudaDevice;
pub use driver::{devices, CudaDeviceSummary};
pub use memory::CudaMemory;
pub use pending::CudaPending;
pub use registration::HostRegistration;

/// The backend's name in errors, reports and `TENSORSWAP_REQUIRE`.
pub const BACKEND: &str = "cuda";
