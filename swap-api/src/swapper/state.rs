//! The states a swapped tensor goes through.

use std::fmt;
use std::sync::Arc;

use super::error::SwapError;
use super::meta::TensorMeta;

/// Where a tensor is, as seen by a [`Swapper`](super::Swapper).
///
/// ```text
///            swap_out              (write done)
/// Resident ------------> SwappingOut ------------> Stored | Host
///    ^                                                  |
///    |      (upload done)              swap_in/prefetch |
///    +--------------------- SwappingIn <----------------+
/// ```
///
/// `release` takes a resident tensor whose stored copy is still current
/// straight back to `Stored`/`Host`, without writing. A failed swap leaves
/// the tensor in the state it started from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorState {
    /// In device memory; `get` returns it.
    Resident,
    /// Being written out; the device copy is kept until the write succeeds.
    SwappingOut,
    /// On disk only.
    Stored,
    /// In pinned host memory only (the `max_in_cpu` tier).
    Host,
    /// Being read in; `get` waits for it.
    SwappingIn,
}

impl fmt::Display for TensorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TensorState::Resident => "resident",
            TensorState::SwappingOut => "swapping out",
            TensorState::Stored => "stored",
            TensorState::Host => "in host memory",
            TensorState::SwappingIn => "swapping in",
        })
    }
}

/// A snapshot of one tensor, from [`Swapper::status`](super::Swapper::status).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TensorStatus {
    /// Where it is now.
    pub state: TensorState,
    /// Its element type and shape.
    pub meta: TensorMeta,
    /// Bytes of the elements.
    pub logical_bytes: usize,
    /// Bytes it takes in its file (the logical length padded for direct I/O).
    pub padded_bytes: usize,
    /// True when resident and its stored copy holds the same bytes (it was
    /// swapped in and not written since), so `release` needs no write.
    pub clean: bool,
    /// The failure of its last swap, if that swap failed.
    pub last_error: Option<Arc<SwapError>>,
}
