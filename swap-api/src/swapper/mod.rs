//! The swappers: what ZeRO-Infinity needs on top of a [`Device`](crate::Device)
//! and an [`IoEngine`](crate::IoEngine).
//!
//! - [`SwapStore`]: one private folder with one extent file, an I/O engine and
//!   a pinned pool; every swapper streams through one.
//! - [`Swapper`]: tensors in device memory swapped out to a store (or to
//!   pinned host memory) and back, pipelined, with the states of
//!   [`TensorState`].

mod extent;
mod into;
mod meta;
mod plan;
mod state;
mod store;
mod stream;
mod table;
mod tensor;
mod ticket;
mod worker;

pub use meta::{DType, TensorId, TensorMeta};
pub use state::{TensorState, TensorStatus};
pub use store::{SwapStore, SwapStoreBuilder};
pub use tensor::{Swapper, TensorHandle};
pub use ticket::SwapTicket;

pub use crate::Rejected;
