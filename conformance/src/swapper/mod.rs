//! The swapper suite: plain generic functions over any [`Device`], run by
//! every backend's conformance binary beside the device cases.
//!
//! Each case builds a [`Rig`]: a [`Swapper`] over the backend wrapped in
//! [`FaultyDevice`], streaming through a [`FaultyEngine`] (transparent until
//! a fault is armed), with small slabs so that streaming and sharing are
//! exercised.

mod direct;
mod faults;
mod lifecycle;
mod model;
mod param;
mod roundtrip;
mod striped;

pub use direct::{gds_faults, gds_path};
pub use faults::{checksum_mismatch, device_faults, engine_faults, enospc_retry_takes_freed_space};
pub use lifecycle::{
    drop_in_flight, pool_pressure, shared_store, take_hands_over, unregister_hands_back,
};
pub use model::random_operations;
pub use param::param_buffers;
pub use roundtrip::{errors, host_tier, mixed_sizes};
pub use striped::striped_folders;

use tensorswap_core::storage::DEFAULT_STRIPE_UNIT;
use tensorswap_core::{
    AioConfig, AnyEngine, Device, DeviceExt, DirOptions, EngineKind, FaultyDevice, FaultyEngine,
    PinnedPool, SwapDir,
};
use tensorswap_swapper::{SwapStore, Swapper, TensorId, TensorMeta};

use crate::engine::scratch_parent;
use crate::{CaseError, Ctx};

/// Bytes per slab in the suite: small, so tensors of a few hundred KiB
/// stream through several slabs.
pub const SLAB: usize = 64 << 10;

/// The swapper type every case runs.
pub type SuiteSwapper<D> = Swapper<FaultyDevice<D>, FaultyEngine<AnyEngine>>;

/// A swapper under test with the pool it streams through and its folder.
pub struct Rig<D: Device> {
    /// The swapper (dropped before the folder).
    pub swapper: SuiteSwapper<D>,
    /// A handle on the swapper's pool, to check it is whole afterwards.
    pub pool: PinnedPool,
    /// The temporary parent of the swap folder.
    pub parent: tempfile::TempDir,
}

/// A fresh swapper with `slabs` slabs of [`SLAB`] bytes, its store striped
/// over [`Ctx::folders`] folders.
pub fn rig<D: Device>(
    ctx: &Ctx<D>,
    slabs: usize,
    options: DirOptions,
) -> Result<Rig<D>, CaseError> {
    rig_with(ctx, slabs, options, false)
}

/// [`rig`], asking for direct storage (DeepSpeed's `use_gds`) when `gds` is set.
pub fn rig_with<D: Device>(
    ctx: &Ctx<D>,
    slabs: usize,
    options: DirOptions,
    gds: bool,
) -> Result<Rig<D>, CaseError> {
    rig_over(ctx, ctx.folders(), slabs, SLAB, options, gds)
}

/// A fresh swapper whose store stripes over `folders` swap folders (all in
/// one scratch parent, each with its own engine), with `slabs` slabs of
/// `slab` bytes.
pub fn rig_over<D: Device>(
    ctx: &Ctx<D>,
    folders: usize,
    slabs: usize,
    slab: usize,
    options: DirOptions,
    gds: bool,
) -> Result<Rig<D>, CaseError> {
    let device = FaultyDevice::new(ctx.device()?);
    let parent = scratch_parent()?;
    let config = AioConfig::default()
        .with_block_size(16 << 10)
        .with_queue_depth(4);
    let mut lanes = Vec::with_capacity(folders);
    for _ in 0..folders {
        let dir = SwapDir::create_with(parent.path(), options)?;
        let engine = FaultyEngine::new(AnyEngine::new(EngineKind::Auto, &config)?);
        lanes.push((engine, dir));
    }
    let alignment = lanes.iter().map(|(_, d)| d.alignment()).max().unwrap_or(1);
    let pool = PinnedPool::builder()
        .slab_size(slab)
        .slabs(slabs)
        .alignment(alignment)
        .build_for(&device)?;
    let store = SwapStore::striped(lanes, pool.clone(), DEFAULT_STRIPE_UNIT)?;
    let swapper = if gds {
        Swapper::with_direct_storage(device, store)?
    } else {
        Swapper::new(device, store)?
    };
    Ok(Rig {
        swapper,
        pool,
        parent,
    })
}

impl<D: Device> Rig<D> {
    /// Registers tensor `id` holding `bytes` (uploaded to new device memory).
    pub fn put(&self, id: TensorId, bytes: &[u8]) -> Result<(), CaseError> {
        let dev = self.swapper.device();
        let mut host = dev.alloc_host(bytes.len())?;
        host.copy_from_slice(bytes);
        let done = dev.upload_blocking(host, dev.alloc(bytes.len())?, 0)?;
        self.swapper
            .register(id, TensorMeta::bytes_of(bytes.len()), done.device)?;
        Ok(())
    }

    /// The tensor's current bytes, wherever they are (`swap_into`).
    pub fn bytes(&self, id: TensorId) -> Result<Vec<u8>, CaseError> {
        let len = self.swapper.status(id)?.logical_bytes;
        Ok(self.swapper.swap_into(id, vec![0u8; len])?)
    }

    /// Drops the swapper and checks that nothing is left: every slab back
    /// in the pool and the swap folder removed.
    pub fn finish(self) -> Result<(), CaseError> {
        let Rig {
            swapper,
            pool,
            parent,
        } = self;
        drop(swapper);
        let stats = pool.stats();
        crate::check!(
            stats.free == stats.slabs,
            "pool not whole after the swapper dropped: {stats:?}"
        );
        let left: Vec<_> = std::fs::read_dir(parent.path())
            .map_err(|e| CaseError(format!("listing the scratch folder: {e}")))?
            .collect();
        crate::check!(
            left.is_empty(),
            "the swapper left {} entries in its folder",
            left.len()
        );
        Ok(())
    }
}
