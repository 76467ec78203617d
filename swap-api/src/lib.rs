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
mod device;
mod error;
mod ext;
mod faulty;
pub mod sys;
mod tensor;
mod transfer;
mod unimplemented;

pub use buffer::{DeviceBuffer, HostBuf, HostBufMut, HostBuffer};
pub use device::{Capabilities, Device, DeviceInfo, PendingOp};
pub use error::{check_range, Direction, Error, Result};
pub use ext::DeviceExt;
pub use faulty::{FaultStage, FaultyDevice, FaultyPending};
pub use tensor::{padded_len, HostTensor};
pub use transfer::{wait_all, Done, Failed, Transfer, TransferResult};
pub use unimplemented::{PlannedBackend, Unimplemented};
