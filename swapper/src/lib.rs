//! The swappers: what ZeRO-Infinity needs on top of a [`Device`](tensorswap_core::Device)
//! and an [`IoEngine`](tensorswap_core::IoEngine).
//!
//! - [`SwapStore`]: one private folder with one extent file, an I/O engine and
//!   a pinned pool; every swapper streams through one.
//! - [`Swapper`]: tensors in device memory swapped out to a store (or to
//!   pinned host memory) and back, pipelined, with the states of
//!   [`TensorState`].
//! - [`ParamSwapper`]: DeepSpeed's `offload_param` over a `Swapper`
//!   ([`OffloadParamConfig`]).
//! - [`OptimizerSwapper`]: optimizer state of parameter sub-groups on NVMe,
//!   stepped with reads and writes overlapping the update
//!   ([`OffloadOptimizerConfig`]).
//! - [`GradientSwapper`]: gradients appended to pinned slabs and written
//!   behind, read back (and summed) at step time.
//! - [`SwapError`]: what the swappers refuse or report, over the core's
//!   [`Error`](tensorswap_core::Error); [`AioSection`]: DeepSpeed's whole `"aio"`
//!   section, `use_gds` included ([`Swapper::with_direct_storage`]).
//!
//! The crate stands on `tensorswap-core` (devices, storage, pools) and
//! nothing above it. Inside, `tensor_swapper` (the [`Swapper`] API) drives
//! `worker` (its thread) and `into` (`swap_into`), which share `shared`
//! (the device, the store and `table`, the per-tensor state); they sit on
//! `plan` (cutting tensors into slab-sized chunks), `stream` (the slab
//! pipelines to and from a file), `direct` (the direct-storage path) and
//! `store`; `param` builds on `tensor_swapper`; `optimizer` and `gradient`
//! use `store` and its extents, not the tensor swapper; `baseline` reuses
//! `plan` and `stream` without device copies. `state` ([`TensorState`]) is
//! below `error`, which is below `status` ([`TensorStatus`]). No two files
//! use each other (the workspace's `tests/layout` checks it).

#[cfg(feature = "baseline")]
mod baseline;
mod direct;
mod error;
mod extent;
mod gradient;
mod into;
mod meta;
mod offload;
mod optimizer;
mod param;
mod path;
mod plan;
mod shared;
mod state;
mod status;
mod store;
mod stream;
mod table;
mod tensor_swapper;
#[cfg(test)]
mod tests;
mod ticket;
mod worker;

pub use error::{GroupOp, Result, SwapError, SwapOp};
pub use gradient::GradientSwapper;
pub use meta::{DType, TensorId, TensorMeta};
pub use offload::{
    AioSection, NvmePath, OffloadDevice, OffloadOptimizerConfig, OffloadParamConfig,
};
pub use optimizer::{group_bytes, GroupState, OptimizerSwapper};
pub use param::ParamSwapper;
pub use path::DataPath;
pub use state::TensorState;
pub use status::TensorStatus;
pub use store::{SwapStore, SwapStoreBuilder};
pub use tensor_swapper::{Swapper, TensorHandle};
pub use ticket::{SwapTicket, TensorFailure};

pub use tensorswap_core::Rejected;
