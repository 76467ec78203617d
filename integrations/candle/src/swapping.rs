//! What the offloader does the same way for every kind of device: a store
//! from its settings, a swap-out started, a swap-out waited for.

use std::path::PathBuf;

use tensorswap_core::{Device, DeviceBuffer, EngineKind};
use tensorswap_swapper::{SwapStore, SwapTicket, Swapper, TensorId, TensorMeta, TensorState};

use crate::Result;

/// The settings of an offloader's swap folders and pinned slabs (each
/// unset one is the store's default).
#[derive(Debug, Clone, Default)]
pub(crate) struct StoreSettings {
    pub(crate) folder: Option<PathBuf>,
    pub(crate) slab_size: Option<usize>,
    pub(crate) slabs: Option<usize>,
    pub(crate) engine: EngineKind,
}

impl StoreSettings {
    /// A store with these settings, its slabs registered with `device`.
    pub(crate) fn store_for<D: Device>(&self, device: &D) -> Result<SwapStore> {
        let mut builder = SwapStore::builder()
            .folder(self.folder.clone().unwrap_or_else(std::env::temp_dir))
            .engine(self.engine);
        if let Some(bytes) = self.slab_size {
            builder = builder.slab_size(bytes);
        }
        if let Some(count) = self.slabs {
            builder = builder.slabs(count);
        }
        Ok(builder.build_for(device)?)
    }
}

/// Registers `buf` as tensor `id` and starts its swap-out; nothing is left
/// registered when that cannot start.
pub(crate) fn start_out<D: Device>(
    swapper: &Swapper<D>,
    id: TensorId,
    bytes: usize,
    buf: DeviceBuffer<D>,
) -> Result<SwapTicket> {
    swapper.register(id, TensorMeta::bytes_of(bytes), buf)?;
    swapper.swap_out(&[id]).map_err(|error| {
        let _ = swapper.remove(id);
        error.into()
    })
}

/// Waits while tensor `id` is still being swapped out; then whether it has
/// a stored copy (false after a failed swap-out: it is resident, and the
/// only copy).
pub(crate) fn settle<D: Device>(swapper: &Swapper<D>, id: TensorId) -> Result<bool> {
    if swapper.status(id)?.state == TensorState::SwappingOut {
        swapper.wait_idle();
    }
    let status = swapper.status(id)?;
    Ok(status.state != TensorState::Resident || status.clean)
}
