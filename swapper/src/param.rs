//! [`ParamSwapper`]: DeepSpeed's `offload_param` over the tensor swapper.

use crate::error::{Result, SwapError};
use crate::meta::{TensorId, TensorMeta};
use crate::offload::{nvme_folders, AioSection, OffloadDevice, OffloadParamConfig};
use crate::state::TensorState;
use crate::status::TensorStatus;
use crate::store::SwapStore;
use crate::tensor_swapper::{Swapper, TensorHandle};
use crate::ticket::SwapTicket;
use tensorswap_core::{
    AnyEngine, Device, DeviceBuffer, Error, HostBufMut, IoEngine, Pinning, Rejected,
};

/// Largest pinned slab a parameter swapper stages through; larger
/// parameters stream through several.
const MAX_SLAB: usize = 64 << 20;

/// Bytes per element assumed for `max_in_cpu` (DeepSpeed counts elements of
/// fp16/bf16 parameters).
const PARAM_ELEMENT_BYTES: usize = 2;

/// Parameters identified by id, swapped with DeepSpeed's `offload_param`
/// semantics: at most `buffer_count` parameters in memory at once (resident
/// or being swapped in), none larger than `buffer_size` elements; swap in on
/// demand ([`get`](Self::get)) or ahead ([`prefetch`](Self::prefetch), in
/// order); swap out, or release when unchanged.
///
/// A request that cannot fit is an [`SwapError::Buffers`] naming
/// `buffer_count` or `buffer_size` and the value that would fit.
///
/// Pinned staging memory is `buffer_count` slabs of at most 64 MiB
/// (parameters larger than a slab stream through several), rather than
/// DeepSpeed's `buffer_count x buffer_size` elements.
pub struct ParamSwapper<D: Device, E: IoEngine = AnyEngine> {
    swapper: Swapper<D, E>,
    buffer_count: usize,
    buffer_size: usize,
}

impl<D: Device> ParamSwapper<D> {
    /// A swapper configured from DeepSpeed's `offload_param` and `aio` sections.
    ///
    /// `device: "cpu"` keeps every swapped parameter in pinned host memory;
    /// `"nvme"` writes to a private folder in `nvme_path`, keeping up to
    /// `max_in_cpu` elements in host memory first.
    /// With `aio.use_gds`, parameters move between files and device memory
    /// directly where the device can ([`Swapper::with_direct_storage`]).
    pub fn new(device: D, config: &OffloadParamConfig, aio: &AioSection) -> Result<Self> {
        if config.device == OffloadDevice::None {
            return Err(Error::Config {
                reason: "offload_param.device is \"none\": there is nothing to swap".into(),
            }
            .into());
        }
        for (key, value) in [
            ("buffer_count", config.buffer_count),
            ("buffer_size", config.buffer_size),
        ] {
            if value == 0 {
                return Err(Error::Config {
                    reason: format!("offload_param.{key} is 0; it must be at least 1"),
                }
                .into());
            }
        }
        let folders = nvme_folders("offload_param", config.device, &config.nvme_path)?;
        let slab = config
            .buffer_size
            .saturating_mul(PARAM_ELEMENT_BYTES)
            .min(MAX_SLAB);
        let mut store = SwapStore::builder()
            .aio(aio.engine.clone())
            .slab_size(slab)
            .slabs(config.buffer_count)
            .pinning(if config.pin_memory {
                Pinning::Required
            } else {
                Pinning::Auto
            });
        if !folders.is_empty() {
            store = store.folders(folders);
        }
        let store = store.build_for(&device)?;
        let in_cpu = match config.device {
            OffloadDevice::Nvme => config.max_in_cpu.saturating_mul(PARAM_ELEMENT_BYTES),
            _ => usize::MAX,
        };
        let swapper = if aio.use_gds {
            Swapper::with_direct_storage(device, store)?
        } else {
            Swapper::new(device, store)?
        };
        let swapper = swapper.with_max_in_cpu(in_cpu);
        Ok(Self::with_swapper(
            swapper,
            config.buffer_count,
            config.buffer_size,
        ))
    }
}

impl<D: Device, E: IoEngine> ParamSwapper<D, E> {
    /// Wraps a tensor swapper with the `buffer_count` / `buffer_size` limits.
    pub fn with_swapper(swapper: Swapper<D, E>, buffer_count: usize, buffer_size: usize) -> Self {
        Self {
            swapper,
            buffer_count,
            buffer_size,
        }
    }

    /// The tensor swapper underneath.
    pub fn swapper(&self) -> &Swapper<D, E> {
        &self.swapper
    }

    /// Adds a resident parameter; one of more than `buffer_size` elements
    /// is refused (buffer handed back).
    pub fn register(
        &self,
        id: TensorId,
        meta: TensorMeta,
        buf: DeviceBuffer<D>,
    ) -> Result<(), Rejected<DeviceBuffer<D>, SwapError>> {
        match meta.elements() {
            Ok(n) if n > self.buffer_size => Err(Rejected {
                error: SwapError::Buffers {
                    reason: format!(
                        "parameter {id} has {n} elements, more than offload_param.buffer_size ({}); raise buffer_size to at least {n}",
                        self.buffer_size
                    ),
                },
                value: buf,
            }),
            _ => self.swapper.register(id, meta, buf),
        }
    }

    /// Starts writing parameters out (see [`Swapper::swap_out`]).
    pub fn swap_out(&self, ids: &[TensorId]) -> Result<SwapTicket> {
        self.swapper.swap_out(ids)
    }

    /// Starts swapping parameters in, if the buffers allow.
    pub fn swap_in(&self, ids: &[TensorId]) -> Result<SwapTicket> {
        self.check_buffers(ids)?;
        self.swapper.swap_in(ids)
    }

    /// Swaps the stored ones of `ids` in ahead of use, in order, if the
    /// buffers allow.
    pub fn prefetch(&self, ids: &[TensorId]) -> Result<()> {
        self.check_buffers(ids)?;
        self.swapper.prefetch(ids)
    }

    /// The parameter, swapped in on demand when stored.
    pub fn get(&self, id: TensorId) -> Result<TensorHandle<D>> {
        if matches!(
            self.swapper.status(id)?.state,
            TensorState::Stored | TensorState::Host
        ) {
            self.check_buffers(&[id])?;
            self.swapper.prefetch(&[id])?;
        }
        self.swapper.get(id)
    }

    /// Drops unchanged parameters' device copies (see [`Swapper::release`]).
    pub fn release(&self, ids: &[TensorId]) -> Result<()> {
        self.swapper.release(ids)
    }

    /// Copies a parameter's bytes into `buf` (see [`Swapper::swap_into`]).
    pub fn swap_into<H: HostBufMut>(
        &self,
        id: TensorId,
        buf: H,
    ) -> Result<H, Rejected<H, SwapError>> {
        self.swapper.swap_into(id, buf)
    }

    /// A snapshot of one parameter.
    pub fn status(&self, id: TensorId) -> Result<TensorStatus> {
        self.swapper.status(id)
    }

    /// Fails unless swapping in the stored ones of `ids` keeps at most
    /// `buffer_count` parameters in memory.
    fn check_buffers(&self, ids: &[TensorId]) -> Result<()> {
        let held = self.swapper.in_memory();
        let mut incoming = 0;
        for &id in ids {
            if matches!(
                self.swapper.status(id)?.state,
                TensorState::Stored | TensorState::Host
            ) {
                incoming += 1;
            }
        }
        let needed = held + incoming;
        if needed <= self.buffer_count {
            return Ok(());
        }
        Err(SwapError::Buffers {
            reason: format!(
                "swapping in {incoming} parameter(s) would hold {needed} in memory, but offload_param.buffer_count is {}; release or swap out {} first, or raise buffer_count to {needed}",
                self.buffer_count,
                needed - self.buffer_count
            ),
        })
    }
}
