//! What [`Swapper::status`](crate::Swapper::status) says of one tensor.

use std::sync::Arc;

use crate::error::SwapError;
use crate::meta::TensorMeta;
use crate::state::TensorState;

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
