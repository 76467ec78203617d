//! tensorswap's wgpu backend: any GPU wgpu drives on Linux (Vulkan, GL).
//!
//! Device memory is one `wgpu::Buffer` per allocation
//! ([`WgpuMemory::buffer`] binds it in your shaders). Transfers run on a
//! transfer thread through reused mappable staging buffers: an upload is
//! copied into a mapped `MAP_WRITE` buffer and then `copy_buffer_to_buffer`
//! into device memory; a download is copied into a `MAP_READ` buffer, mapped
//! and copied out. Large transfers are cut into staging-sized pieces that
//! are pipelined, and completion is driven by `wgpu::Device::poll` on the
//! transfer thread, so a caller waiting on a ticket sleeps.
//!
//! What the backend promises:
//! - Sizes and offsets need no alignment: the 4-byte copy alignment is met
//!   internally, and an upload never changes a byte outside its range.
//! - An allocation above the adapter's `max_buffer_size` is
//!   [`tensorswap_core::Error::TooLarge`] naming that limit; it is not split, so
//!   every allocation stays one bindable buffer.
//! - Host memory is not page-locked (wgpu has no way to); capabilities say so.
//! - Device memory is never mapped directly, even where the adapter offers
//!   `MAPPABLE_PRIMARY_BUFFERS`: a mappable buffer lives in host-visible
//!   memory (on a discrete GPU, shaders would read it over PCIe), and while
//!   mapped no GPU work may use it. Staging keeps device memory where the
//!   driver wants it, and on lavapipe already runs at memcpy speed.
//! - wgpu errors are captured and returned as typed errors, never raised to
//!   the device's uncaptured-error handler (which panics by default).
//!
//! On a machine without a GPU, Mesa's lavapipe
//! (`apt-get install mesa-vulkan-drivers libvulkan1`) is a software Vulkan
//! adapter that runs everything here.
//!
//! ```no_run
//! use tensorswap_wgpu::WgpuDevice;
//! use tensorswap_core::DeviceExt;
//!
//! let dev = WgpuDevice::open()?;
//! let mut host = dev.alloc_host(4099)?;
//! host.fill(42);
//! let done = dev.upload(host, dev.alloc(4099)?, 0)?.wait()?;
//! let back = dev.download(done.device, 0, vec![0u8; 4099])?.wait()?;
//! assert!(back.host.iter().all(|&b| b == 42));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

//! # Modules, and what each may use
//!
//! - `scope` (wgpu error scopes) and `window` (cutting ranges into aligned
//!   pieces): wgpu and `std` only.
//! - `adapter` (choosing one), `memory` (device buffers), `staging` (the
//!   mappable staging ring): `scope` and `window`.
//! - `worker` (the transfer thread): `staging`, `scope`, `window`, and
//!   `tensorswap_core::sync` for its thread and completion latches.
//! - `builder` and `device` (the [`tensorswap_core::Device`] impl): everything above.
//!
//! The crate uses `swap-api`'s public items only, and no other backend.

#![deny(unsafe_op_in_unsafe_fn)]

mod adapter;
mod builder;
mod device;
mod memory;
mod scope;
mod staging;
mod window;
mod worker;

pub use adapter::{adapters, AdapterSummary};
pub use builder::WgpuDeviceBuilder;
pub use device::WgpuDevice;
pub use memory::WgpuMemory;
/// An in-flight wgpu transfer; see [`tensorswap_core::PendingOp`].
pub type WgpuPending = tensorswap_core::sync::LatchPending;
pub use wgpu;

/// The backend's name in errors, reports and `TENSORSWAP_REQUIRE`.
pub const BACKEND: &str = "wgpu";

/// The Rust blocks of this crate's README, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
