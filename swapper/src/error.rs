//! [`SwapError`]: what the swappers refuse or report, over the core's
//! [`Error`] for everything below them.

use std::fmt;
use std::sync::Arc;

use crate::meta::TensorId;
use crate::state::TensorState;
use tensorswap_core::Error;

/// Result alias of the swappers.
pub type Result<T, E = SwapError> = std::result::Result<T, E>;

/// What can go wrong in a swapper: its own refusals (an unknown tensor, an
/// illegal state, too few buffers), the failure of one tensor's or one
/// optimizer group's swap, or a failure of the layers below ([`Error`]:
/// device, pool, file, engine, configuration), carried in `Core`.
///
/// Like [`Error`], every message is whole on its own; a wrapped cause is
/// part of the message and is not returned again by `source()`.
///
/// ```
/// use tensorswap_swapper::{SwapError, SwapStore, Swapper};
/// use tensorswap_core::Error;
/// let dev = tensorswap_cpu::CpuDevice::new()?;
/// let parent = tempfile::tempdir()?;
/// let store = SwapStore::builder().folder(parent.path()).slab_size(1 << 20).build_for(&dev)?;
/// let swapper = Swapper::new(dev, store)?;
/// let err = swapper.swap_out(&[7]).unwrap_err();
/// assert!(matches!(err, SwapError::UnknownTensor { id: 7 }));
/// assert!(err.core().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwapError {
    /// A failure of the layers below the swappers (device, pool, file,
    /// engine, configuration).
    #[error(transparent)]
    Core(#[from] Error),

    /// No tensor with this id is registered with the swapper.
    #[error("tensor {id} is not registered with this swapper")]
    UnknownTensor {
        /// The id asked for.
        id: TensorId,
    },

    /// The operation is not allowed in the tensor's current state (e.g.
    /// swapping in a resident tensor, or reading a stored one).
    #[error("cannot {op} tensor {id}: it is {state}{hint}")]
    InvalidState {
        /// The tensor.
        id: TensorId,
        /// The operation asked for (`"swap_out"`, `"get"`, ...).
        op: &'static str,
        /// The state it was in.
        state: TensorState,
        /// What to do instead, when there is something to say (starts with "; ").
        hint: &'static str,
    },

    /// A swap failed for one tensor; the tensor is still readable where it
    /// was before the swap (the cause names the file, offset and errno).
    #[error("{op} of tensor {id} failed: {cause}")]
    Tensor {
        /// The tensor.
        id: TensorId,
        /// Which way the swap went.
        op: SwapOp,
        /// The failure, shared with the tensor's status.
        cause: Arc<SwapError>,
    },

    /// Reading or writing back one optimizer sub-group failed; its state is
    /// still where it was before (the cause names the file, offset and errno).
    #[error("{op} of optimizer group {group} failed: {cause}")]
    Group {
        /// The sub-group, in the order it was added.
        group: usize,
        /// What failed: the read or the write-back.
        op: GroupOp,
        /// The failure.
        cause: Arc<SwapError>,
    },

    /// The swapper was dropped before this queued work ran.
    #[error("{what} was cancelled: its swapper was dropped first")]
    Closed {
        /// What was cancelled.
        what: &'static str,
    },

    /// A swapper's fixed buffers cannot hold what was asked for.
    #[error("not enough buffers: {reason}")]
    Buffers {
        /// What was needed, what there is, and which knob to change.
        reason: String,
    },
}

impl SwapError {
    /// The core error at the bottom of this one, through the tensor and
    /// group wrappers (e.g. to match `Error::Io` and its errno); `None` for
    /// the swappers' own refusals.
    pub fn core(&self) -> Option<&Error> {
        match self {
            SwapError::Core(error) => Some(error),
            SwapError::Tensor { cause, .. } | SwapError::Group { cause, .. } => cause.core(),
            _ => None,
        }
    }
}

/// Which way a tensor's failed swap went ([`SwapError::Tensor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SwapOp {
    /// Device memory to the store.
    SwapOut,
    /// The store to device memory.
    SwapIn,
}

impl SwapOp {
    /// The method's name: `"swap_out"` or `"swap_in"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SwapOp::SwapOut => "swap_out",
            SwapOp::SwapIn => "swap_in",
        }
    }
}

impl fmt::Display for SwapOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What failed for an optimizer sub-group ([`SwapError::Group`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupOp {
    /// Reading its state in.
    Read,
    /// Writing its updated state back.
    WriteBack,
}

impl fmt::Display for GroupOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupOp::Read => "read",
            GroupOp::WriteBack => "write back",
        })
    }
}
