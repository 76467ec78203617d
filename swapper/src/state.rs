//! The states a swapped tensor goes through.

use std::fmt;

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
