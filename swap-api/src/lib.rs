//! tensorswap's backend-agnostic core.
//!
//! - [`Device`]: the small, `unsafe`-contract trait a backend implements
//!   (device memory, host registration, asynchronous copies with one
//!   [`PendingOp`] per copy).
//! - [`DeviceExt`]: the safe layer every user calls. It validates ranges and
//!   moves ownership of both buffers into each [`Transfer`] until it completes,
//!   so safe code cannot race a copy, free memory under it, or `mem::forget`
//!   its way into a DMA into freed memory.
//! - [`HostBuffer`] / [`HostTensor`]: page-aligned host memory, pinned where
//!   the backend can, and typed `bytemuck::Pod` views over it that keep the
//!   logical length apart from the padded one.
//! - [`FaultyDevice`]: a decorator that injects faults into any backend.
//! - [`storage`]: swap folders and files and the asynchronous file I/O
//!   engines ([`IoEngine`], io_uring and thread pool), with [`IoEngineExt`]
//!   as the safe, buffer-owning layer.
//! - [`PinnedPool`]: one aligned, locked arena leased in slabs.
//! - [`swapper`]: the swappers ([`swapper::Swapper`] and the parameter,
//!   optimizer and gradient swappers on top of it).
//! - [`AioConfig`]: DeepSpeed's `"aio"` config section.
//! - [`Error`]: one `#[non_exhaustive]` error enum with context fields.
//!
//! ```ignore
//! use swap_api::DeviceExt;
//! let mut host = dev.alloc_host(4096)?;
//! host.fill(7);
//! let done = dev.upload(host, dev.alloc(4096)?, 0)?.wait()?;
//! let back = dev.download(done.device, 0, vec![0u8; 4096])?.wait()?;
//! assert!(back.host.iter().all(|&b| b == 7));
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

pub mod buffer;
mod config;
mod device;
mod error;
mod ext;
mod faulty;
mod pinning;
pub mod pool;
mod rejected;
pub mod storage;
pub mod swapper;
pub mod sync;
pub mod sys;
mod tensor;
mod transfer;

pub use buffer::{DeviceBuffer, HostBuf, HostBufMut, HostBuffer};
pub use config::AioConfig;
pub use device::{Capabilities, Device, DeviceInfo, PendingOp, PinnedAlloc};
pub use error::{check_range, Direction, Error, IoOp, Result};
pub use ext::DeviceExt;
pub use faulty::{FaultStage, FaultyDevice, FaultyPending};
pub use pinning::Pinning;
pub use pool::{PinnedPool, PinnedPoolBuilder, PoolStats, Slab, SlabPart};
pub use rejected::Rejected;
#[cfg(target_os = "linux")]
pub use storage::UringEngine;
pub use storage::{
    wait_all_io, AnyEngine, DioSupport, DirOptions, DirectIo, EngineKind, FaultyEngine, IoDone,
    IoEngine, IoEngineExt, IoFailed, IoPending, IoResult, IoTicket, SwapDir, SwapFile,
    ThreadEngine,
};
pub use tensor::{padded_len, HostTensor};
pub use transfer::{wait_all, Done, Failed, Transfer, TransferResult};
