//! tensorswap moves tensors between device memory (GPU), pinned host memory
//! and NVMe files, behind one backend-agnostic [`Device`] trait: swap
//! folders and asynchronous I/O engines ([`storage`]), pinned pools
//! ([`PinnedPool`]) and the swappers DeepSpeed's ZeRO-Infinity needs
//! ([`swapper`]).
//!
//! This is the facade crate: it re-exports the core's user API by name
//! (from [`tensorswap_core`]; backend authors use that crate itself), the
//! swappers ([`swapper`], from `tensorswap-swapper`), the persistent
//! store ([`store`], from `tensorswap-store`, feature `store`, on by
//! default) and, per cargo feature, the backends (`cpu`, the default;
//! `wgpu`; `cuda`),
//! plus [`open_best`], which opens the best device this machine can run and
//! says why the others were passed over, and [`TensorSwap`], the front
//! door: DeepSpeed's six verbs over that device and a store in the temp
//! folder.
//!
//! ```
//! use tensorswap::TensorSwap;
//! let ts = TensorSwap::open()?;
//! let pinned = ts.pin_memory(vec![1u8; 1 << 20])?;
//! let handle = ts.swap_tensor(ts.to_device(pinned)?.device)?;
//! let back = ts.from_device(ts.load_tensor(handle)?, vec![0u8; 1 << 20])?;
//! assert!(back.host.iter().all(|&b| b == 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The layers below it, directly:
//!
//! ```
//! use tensorswap::DeviceExt;
//!
//! let selection = tensorswap::open_best()?;
//! let dev = selection.device;
//! let mut host = dev.alloc_host(1 << 20)?;            // pinned where the backend can
//! host.fill(7);
//! let up = dev.upload(host, dev.alloc(1 << 20)?, 0)?; // the ticket owns both buffers
//! let done = up.wait()?;                              // ... and hands them back
//! let back = dev.download(done.device, 0, vec![0u8; 1 << 20])?.wait()?;
//! assert!(back.host.iter().all(|&b| b == 7));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The default features are `cpu` and `store`; the command-line tool is a crate of its
//! own (`tensorswap-cli`), so none of its dependencies reach a library user.

#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "cpu", feature = "wgpu", feature = "cuda")))]
compile_error!("tensorswap needs at least one backend feature: cpu, wgpu or cuda");

mod any;
mod select;
mod tensor_swap;

pub use any::{AnyDevice, AnyMemory, AnyPending};
pub use select::{open, open_best, Selection, COMPILED_BACKENDS};
pub use tensor_swap::{AnyDeviceBuffer, SwapHandle, TensorSwap, Unswapped};

// The core's user-facing API, named one by one: what a framework pins.
// Backend authors depend on `tensorswap-core` itself, which also has the
// OS (`sys`) and threading (`sync`) helpers backends share.
pub use tensorswap_core::UringEngine;
pub use tensorswap_core::{buffer, pool, storage};
pub use tensorswap_core::{
    check_range, padded_len, wait_all, AioConfig, Capabilities, Device, DeviceBuffer, DeviceExt,
    DeviceInfo, Direction, Done, Error, Failed, FaultStage, FaultyDevice, FaultyDevicePending,
    HostBuf, HostBufMut, HostBuffer, HostTensor, IoOp, OwnerToken, PendingOp, Pinned, PinnedAlloc,
    Pinning, Rejected, Result, Transfer, TransferResult,
};
pub use tensorswap_core::{
    wait_all_io, AnyEngine, DioSupport, DirOptions, DirectIo, EngineKind, FaultyEngine, IoDone,
    IoEngine, IoEngineExt, IoFailed, IoPending, IoResult, IoTicket, NamedOptions, StaleSweep,
    SwapDir, SwapFile, ThreadEngine, ThrottledEngine,
};
pub use tensorswap_core::{Parked, PinnedPool, PinnedPoolBuilder, PoolStats, Slab, SlabPart};

/// The swappers (`tensorswap-swapper`).
pub use tensorswap_swapper as swapper;

/// The persistent store (`tensorswap-store`): named values in a folder
/// that outlive the process.
#[cfg(feature = "store")]
pub use tensorswap_store as store;
/// The persistent store's handle ([`store::PersistentStore`]).
#[cfg(feature = "store")]
pub use tensorswap_store::PersistentStore;

/// The CPU backend.
#[cfg(feature = "cpu")]
pub use tensorswap_cpu as cpu;
/// The CUDA backend.
#[cfg(feature = "cuda")]
pub use tensorswap_cuda as cuda;
/// The wgpu backend.
#[cfg(feature = "wgpu")]
pub use tensorswap_wgpu as wgpu;

/// The Rust blocks of the README and the user guide, compiled (and run) as
/// doctests, so that what they show keeps working.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
#[doc = include_str!("../docs/GUIDE.md")]
struct DocumentDoctests;
