//! tensorswap's backend-agnostic core.
//!
//! - [`Device`]: the small, `unsafe`-contract trait a backend implements
//!   (device memory, host registration, asynchronous copies with one
//!   [`PendingOp`] per copy, optional direct storage).
//! - [`DeviceExt`]: the safe layer every user calls. It validates ranges and
//!   moves ownership of both buffers into each [`Transfer`] until it completes,
//!   so safe code cannot race a copy, free memory under it, or `mem::forget`
//!   its way into a DMA into freed memory.
//! - [`HostBuffer`] / [`HostTensor`]: page-aligned host memory, pinned where
//!   the backend can, and typed `bytemuck::Pod` views over it that keep the
//!   logical length apart from the padded one; [`Pinned`]: a caller's own
//!   buffer registered with a device ([`DeviceExt::pin_memory`]).
//! - [`FaultyDevice`] and [`FaultyEngine`]: decorators that inject faults
//!   into any backend or engine.
//! - [`storage`]: swap folders and files and the asynchronous file I/O
//!   engines ([`IoEngine`], io_uring and thread pool), with [`IoEngineExt`]
//!   as the safe, buffer-owning layer.
//! - [`PinnedPool`]: one aligned, locked arena leased in slabs.
//! - [`AioConfig`]: the engine's settings from DeepSpeed's `"aio"` section.
//! - [`Error`]: the `#[non_exhaustive]` error of everything below the
//!   swappers; [`Rejected`] hands a refused call's buffers back with it.
//!
//! ```
//! use tensorswap_core::DeviceExt;
//! let dev = tensorswap_cpu::CpuDevice::new()?;
//! let mut host = dev.alloc_host(4096)?;
//! host.fill(7);
//! let done = dev.upload(host, dev.alloc(4096)?, 0)?.wait()?;
//! let back = dev.download(done.device, 0, vec![0u8; 4096])?.wait()?;
//! assert!(back.host.iter().all(|&b| b == 7));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layers: what each module may use
//!
//! From the bottom up; a module uses only the layers below it (and its own).
//! A change that needs an upward edge belongs in a higher layer. The
//! workspace's `tests/layout` checks it (the same table), and that no two
//! files of any crate use each other, directly or through others.
//!
//! 1. **Foundations**: `error` ([`Error`], [`Result`], [`check_range`]),
//!    `rejected` ([`Rejected`]), `pending` ([`PendingOp`]), `fault`
//!    ([`FaultStage`]), [`ds_config`] (finding a section in a DeepSpeed
//!    config, counts written `1e8`, bounded messages), `config`
//!    ([`AioConfig`]), [`sys`] (the OS and the
//!    allocator), [`sync`] ([`sync::WorkerThread`], [`sync::Latch`]). They
//!    use `std`, `libc`, `serde` and each other only.
//! 2. **Host memory**: [`buffer`] (host and device buffer handles, the
//!    [`HostBuf`] traits, [`Pinned`]), `tensor` ([`HostTensor`]), `pinning`
//!    ([`Pinning`]). They use the foundations.
//! 3. **Storage**: [`storage`] (folders, files, engines, tickets). It uses
//!    the layers below; it knows no device.
//! 4. **Devices**: `device` (the [`Device`] trait), `device_buffer`
//!    ([`DeviceBuffer`]), `owner` ([`OwnerToken`]), `ext` ([`DeviceExt`]),
//!    `transfer` ([`Transfer`]), `faulty` ([`FaultyDevice`]). They use the layers below; storage only
//!    for direct storage's [`SwapFile`].
//! 5. **Pools**: [`pool`] ([`PinnedPool`]). It uses devices (to register
//!    its arena) and storage (to offer it to an engine).
//!
//! The swappers are a crate of their own above this one
//! (`tensorswap-swapper`), so that nothing here can use them.
//!
//! Backends (`tensorswap-cpu`, `tensorswap-wgpu`, `tensorswap-cuda`)
//! implement [`Device`] on the public items of layers 1 to 4 ([`sync`] and
//! [`sys`] included); no backend knows another, and this crate knows none.

#![deny(unsafe_op_in_unsafe_fn)]

// The engines and folders stand on Linux's io_uring, `O_DIRECT`, `statx`,
// `fallocate` and `/proc`; there is no port to another system yet.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "tensorswap supports Linux only: its I/O engines use io_uring, O_DIRECT, statx and fallocate, which other systems lack"
);

pub mod buffer;
mod config;
mod device;
mod device_buffer;
pub mod ds_config;
mod error;
mod ext;
mod fault;
mod faulty;
mod owner;
mod pending;
mod pinning;
pub mod pool;
mod rejected;
pub mod storage;
pub mod sync;
pub mod sys;
mod tensor;
mod transfer;

pub use buffer::{HostBuf, HostBufMut, HostBuffer, Pinned};
pub use config::AioConfig;
pub use device::{Capabilities, Device, DeviceInfo, PinnedAlloc};
pub use device_buffer::DeviceBuffer;
pub use error::{check_range, Direction, Error, IoOp, Result};
pub use ext::DeviceExt;
pub use fault::FaultStage;
pub use faulty::{FaultyDevice, FaultyDevicePending};
pub use owner::OwnerToken;
pub use pending::PendingOp;
pub use pinning::Pinning;
pub use pool::{Parked, PinnedPool, PinnedPoolBuilder, PoolStats, Slab, SlabPart};
pub use rejected::Rejected;
pub use storage::UringEngine;
pub use storage::{
    wait_all_io, AnyEngine, DioSupport, DirOptions, DirectIo, EngineKind, FaultyEngine, IoDone,
    IoEngine, IoEngineExt, IoFailed, IoPending, IoResult, IoTicket, NamedOptions, StaleSweep,
    SwapDir, SwapFile, ThreadEngine, ThrottledEngine,
};
pub use tensor::{padded_len, HostTensor};
pub use transfer::{wait_all, Done, Failed, Transfer, TransferResult};
