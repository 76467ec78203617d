//! Which way a swapper's bytes travel between device memory and its file:
//! through the store's pinned slabs, or directly (GPUDirect Storage).

use std::fmt;

use crate::store::SwapStore;
use tensorswap_core::{Device, IoEngine};

/// How a [`Swapper`](super::Swapper) moves tensors between device memory
/// and its store's file, chosen once when the swapper is created.
///
/// Direct storage is asked for with
/// [`Swapper::with_direct_storage`](super::Swapper::with_direct_storage)
/// (DeepSpeed's `"use_gds": true`, [`AioSection`](super::AioSection)).
/// Where the device cannot do it, the
/// swapper says why (a warning, and [`DataPath::Compat`]) and moves the
/// bytes through pinned host memory instead, like kvikio's compat mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataPath {
    /// Through the store's pinned slabs: device -> slab -> file.
    Pinned,
    /// Directly between device memory and the file, with no host copy.
    Direct,
    /// Direct storage was asked for but cannot be used; the bytes go
    /// through the pinned slabs.
    Compat {
        /// Why direct storage was refused.
        reason: String,
    },
}

impl DataPath {
    /// Decides the path for `device` and `store`, opening direct storage for
    /// the store's file when `direct` asks for it.
    pub(crate) fn choose<D: Device, E: IoEngine>(
        device: &D,
        store: &SwapStore<E>,
        direct: bool,
    ) -> Self {
        if !direct {
            return Self::Pinned;
        }
        let folders = store.dirs().len();
        let opened = if folders > 1 {
            Err(format!(
                "the store is striped over {folders} folders, and direct storage moves a tensor \
                 to or from one file"
            ))
        } else {
            device.open_direct(store.file()).map_err(|e| e.to_string())
        };
        let refused = match opened {
            Ok(()) => {
                if store.file().checksummed() {
                    tracing::warn!(
                        "use_gds: tensors moved by direct storage bypass host memory, so their \
                         bytes are not checksummed (the swap folder's CRC32C covers only what \
                         goes through host memory)"
                    );
                }
                return Self::Direct;
            }
            Err(reason) => reason,
        };
        tracing::warn!(
            reason = %refused,
            "use_gds: direct storage is not available; swapping through pinned host memory"
        );
        Self::Compat { reason: refused }
    }

    /// True when tensors move with no host copy.
    pub fn is_direct(&self) -> bool {
        matches!(self, Self::Direct)
    }
}

impl fmt::Display for DataPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pinned => f.write_str("pinned host memory"),
            Self::Direct => f.write_str("direct storage (no host copy)"),
            Self::Compat { reason } => {
                write!(f, "pinned host memory (direct storage refused: {reason})")
            }
        }
    }
}
