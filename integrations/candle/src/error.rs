//! [`Error`]: what the candle integration reports.

use std::path::PathBuf;

use tensorswap_swapper::{SwapError, TensorId};

/// The integration's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between candle and tensorswap, with the
/// tensor, file or dtype it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// tensorswap's core refused or failed (I/O, memory, a device).
    #[error(transparent)]
    Core(#[from] tensorswap_core::Error),
    /// A swapper refused or failed (a tensor in the wrong state, a failed
    /// write or read with its file and offset).
    #[error(transparent)]
    Swap(#[from] SwapError),
    /// candle refused or failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// `swap_out` of an id the offloader already holds.
    #[error(
        "tensor {id} is already offloaded; remove it first to store another tensor under its id"
    )]
    DuplicateId {
        /// The id.
        id: TensorId,
    },
    /// An id the offloader does not hold.
    #[error("tensor {id} is not offloaded here")]
    UnknownTensor {
        /// The id.
        id: TensorId,
    },
    /// Something this integration does not do (yet), and why.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What, and what to do instead.
        what: String,
    },
    /// A safetensors file that does not hold what its header says.
    #[error("{}: not a valid safetensors file: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the tensor it concerns.
        reason: String,
    },
}

impl From<Error> for candle_core::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Candle(inner) => inner,
            other => candle_core::Error::wrap(other),
        }
    }
}

impl<T> From<tensorswap_core::Rejected<T>> for Error {
    fn from(rejected: tensorswap_core::Rejected<T>) -> Self {
        Error::Core(rejected.error)
    }
}

impl<T> From<tensorswap_core::Rejected<T, SwapError>> for Error {
    fn from(rejected: tensorswap_core::Rejected<T, SwapError>) -> Self {
        Error::Swap(rejected.error)
    }
}
