//! [`Offloader`]: candle tensors swapped out to NVMe by id and back.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use candle_core::{DType, Device, DeviceLocation, Shape, Tensor};
use tensorswap_core::EngineKind;
use tensorswap_cpu::CpuDevice;
use tensorswap_swapper::{SwapTicket, Swapper, TensorId, TensorState};

use crate::host::with_cpu_bytes;
use crate::swapping::{settle, start_out, StoreSettings};
use crate::{Error, Result};

/// Swaps candle tensors out to a private swap folder and back, by id.
///
/// - [`swap_out`](Self::swap_out) takes any tensor: CPU or CUDA storage
///   (`cuda` feature), every dtype candle has; a non-contiguous one is made
///   contiguous first. It returns at once with a ticket; the tensor's
///   memory is released once the write is done and the caller's last
///   reference is gone (the offloader keeps one reference until then).
/// - [`prefetch`](Self::prefetch) starts reading tensors back;
///   [`swap_in`](Self::swap_in) gives a new tensor of the same dtype,
///   shape and device, bit-identical, and keeps the stored copy, so a weight
///   can be swapped in once per pass and dropped after use.
/// - Every misuse (an id used twice, an unknown id, a tensor still being
///   swapped out) is a typed [`Error`], never a panic.
///
/// On the CPU, tensorswap's "device memory" is host memory: a swap-out
/// copies the tensor's bytes once into it and a swap-in copies them once
/// into the new tensor's storage. On CUDA (`cuda` feature) the offloader
/// shares the tensor's own context, orders its copies after the tensor's
/// stream, downloads straight from the tensor's `CudaSlice`, and hands the
/// swapped-in allocation to the new tensor: no device copy.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use candle_core::{DType, Device, Tensor};
/// let folder = tempfile::tempdir()?;
/// let offloader = tensorswap_candle::Offloader::builder().folder(folder.path()).build()?;
/// let w = Tensor::randn(0f32, 1., (64, 64), &Device::Cpu)?.to_dtype(DType::BF16)?;
/// offloader.swap_out(1, &w)?.wait()?;
/// offloader.prefetch(&[1])?;
/// let back = offloader.swap_in(1)?;
/// assert_eq!((back.dtype(), back.dims()), (DType::BF16, w.dims()));
/// assert_eq!(back.to_vec2::<half::bf16>()?, w.to_vec2::<half::bf16>()?);
/// # Ok(()) }
/// ```
pub struct Offloader {
    cpu: Swapper<CpuDevice>,
    #[cfg(feature = "cuda")]
    cuda: crate::cuda::CudaSwappers,
    tensors: Mutex<HashMap<TensorId, Offloaded>>,
}

/// What the offloader remembers of a tensor to rebuild it.
#[derive(Debug, Clone)]
struct Offloaded {
    dtype: DType,
    shape: Shape,
    device: Device,
    bytes: usize,
}

/// A snapshot of one offloaded tensor.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OffloadStatus {
    /// Where its bytes are.
    pub state: TensorState,
    /// Its element type.
    pub dtype: DType,
    /// Its shape.
    pub shape: Shape,
    /// The device a swap-in puts it on.
    pub location: DeviceLocation,
    /// Bytes of its elements.
    pub bytes: usize,
}

/// Settings of an [`Offloader`]'s swap folders and pinned slabs.
#[derive(Debug, Clone, Default)]
pub struct OffloaderBuilder {
    settings: StoreSettings,
}

impl OffloaderBuilder {
    /// The folder the private swap folder is made in (default: the system's
    /// temporary folder).
    pub fn folder(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.folder = Some(path.into());
        self
    }

    /// Bytes per pinned slab (default: the store's).
    pub fn slab_size(mut self, bytes: usize) -> Self {
        self.settings.slab_size = Some(bytes);
        self
    }

    /// Pinned slabs per swapper (default: the store's).
    pub fn slabs(mut self, count: usize) -> Self {
        self.settings.slabs = Some(count);
        self
    }

    /// The engine (io_uring or the thread pool).
    pub fn engine(mut self, kind: EngineKind) -> Self {
        self.settings.engine = kind;
        self
    }

    /// The offloader. Its swap folder is made now (CUDA ones when a first
    /// tensor of that context arrives).
    pub fn build(self) -> Result<Offloader> {
        let device = CpuDevice::new()?;
        let store = self.settings.store_for(&device)?;
        Ok(Offloader {
            cpu: Swapper::new(device, store)?,
            #[cfg(feature = "cuda")]
            cuda: crate::cuda::CudaSwappers::new(self.settings),
            tensors: Mutex::new(HashMap::new()),
        })
    }
}

impl Offloader {
    /// Settings, then [`OffloaderBuilder::build`].
    pub fn builder() -> OffloaderBuilder {
        OffloaderBuilder::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TensorId, Offloaded>> {
        // A panic elsewhere cannot leave the map half-updated: every change
        // is one insert or remove.
        self.tensors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn offloaded(&self, id: TensorId) -> Result<Offloaded> {
        self.lock()
            .get(&id)
            .cloned()
            .ok_or(Error::UnknownTensor { id })
    }

    /// Starts writing `tensor` out under `id`; see the [type docs](Self).
    /// Refused for an id in use ([`Error::DuplicateId`]) and for tensors on
    /// devices this build cannot reach ([`Error::Unsupported`]).
    ///
    /// # Contract
    ///
    /// Until the ticket completes, the tensor's storage must not be written
    /// in place (candle's in-place ops, such as `slice_set`, or a kernel of
    /// yours writing into the buffer): on CUDA the write reads the tensor's
    /// own allocation, with no copy, so such a write could reach the disk
    /// half-done. Writes queued on the tensor's stream before this call are
    /// fine (the swap-out is ordered after them); ordinary candle ops, which
    /// make new tensors, are fine at any time. On the CPU the bytes are
    /// copied before this call returns.
    pub fn swap_out(&self, id: TensorId, tensor: &Tensor) -> Result<SwapTicket> {
        let mut tensors = self.lock();
        if tensors.contains_key(&id) {
            return Err(Error::DuplicateId { id });
        }
        let tensor = tensor.contiguous()?;
        let (dtype, shape, device) = (
            tensor.dtype(),
            tensor.shape().clone(),
            tensor.device().clone(),
        );
        let (ticket, bytes) = match &device {
            Device::Cpu => {
                let dev = self.cpu.device();
                let buf = with_cpu_bytes(&tensor, |src| dev.alloc_from(src))??;
                let bytes = buf.len();
                (start_out(&self.cpu, id, bytes, buf)?, bytes)
            }
            #[cfg(feature = "cuda")]
            Device::Cuda(_) => self.cuda.swap_out(id, tensor)?,
            other => return Err(unsupported_device(other)),
        };
        tensors.insert(
            id,
            Offloaded {
                dtype,
                shape,
                device,
                bytes,
            },
        );
        Ok(ticket)
    }

    /// Starts reading stored tensors back, to be taken by
    /// [`swap_in`](Self::swap_in); tensors already on their way are skipped.
    /// Nothing starts unless every id is known.
    pub fn prefetch(&self, ids: &[TensorId]) -> Result<()> {
        let tensors = self.lock();
        let mut cpu = Vec::new();
        #[cfg(feature = "cuda")]
        let mut cuda = Vec::new();
        for &id in ids {
            let offloaded = tensors.get(&id).ok_or(Error::UnknownTensor { id })?;
            match &offloaded.device {
                Device::Cpu => cpu.push(id),
                #[cfg(feature = "cuda")]
                Device::Cuda(dev) => cuda.push((id, dev.clone())),
                other => return Err(unsupported_device(other)),
            }
        }
        drop(tensors);
        self.cpu.prefetch(&cpu)?;
        #[cfg(feature = "cuda")]
        self.cuda.prefetch(&cuda)?;
        Ok(())
    }

    /// The tensor `id`, back on its device with its dtype and shape,
    /// bit-identical; waits for its prefetch (or reads it now), and for a
    /// swap-out still running. The stored copy stays until
    /// [`remove`](Self::remove).
    ///
    /// After a failed swap-out (its ticket said why) there is no stored
    /// copy: `swap_in` gives back the tensor, the only copy, and the
    /// offloader forgets it.
    pub fn swap_in(&self, id: TensorId) -> Result<Tensor> {
        let t = self.offloaded(id)?;
        if t.bytes == 0 {
            return Ok(Tensor::zeros(t.shape, t.dtype, &t.device)?);
        }
        let (tensor, stored) = match &t.device {
            Device::Cpu => {
                let swapper = &self.cpu;
                let stored = settle(swapper, id)?;
                swapper.prefetch(&[id])?;
                let handle = swapper.get(id)?;
                let bytes = &handle.memory().as_slice()[..t.bytes];
                let tensor = Tensor::from_raw_buffer(bytes, t.dtype, t.shape.dims(), &t.device);
                drop(handle);
                if stored {
                    swapper.release(&[id])?;
                } else {
                    swapper.remove(id)?;
                }
                (tensor?, stored)
            }
            #[cfg(feature = "cuda")]
            Device::Cuda(dev) => self.cuda.swap_in(id, &t.dtype, &t.shape, t.bytes, dev)?,
            other => return Err(unsupported_device(other)),
        };
        if !stored {
            self.lock().remove(&id);
        }
        Ok(tensor)
    }

    /// A snapshot of one tensor.
    pub fn status(&self, id: TensorId) -> Result<OffloadStatus> {
        let t = self.offloaded(id)?;
        let state = match &t.device {
            #[cfg(feature = "cuda")]
            Device::Cuda(dev) => self.cuda.status(id, dev)?,
            _ => self.cpu.status(id)?.state,
        };
        Ok(OffloadStatus {
            state,
            location: t.device.location(),
            dtype: t.dtype,
            shape: t.shape,
            bytes: t.bytes,
        })
    }

    /// Forgets a tensor and frees its stored copy; refused while it is being
    /// swapped (wait for its ticket first).
    pub fn remove(&self, id: TensorId) -> Result<()> {
        let mut tensors = self.lock();
        let offloaded = tensors.get(&id).ok_or(Error::UnknownTensor { id })?;
        match &offloaded.device {
            #[cfg(feature = "cuda")]
            Device::Cuda(dev) => self.cuda.remove(id, dev)?,
            _ => self.cpu.remove(id)?,
        }
        tensors.remove(&id);
        Ok(())
    }

    /// Bytes of device memory the offloader holds for tensors now: those
    /// prefetched and not yet taken by [`swap_in`](Self::swap_in), those on
    /// their way in, and those still being written out (counted from the
    /// moment a read or write starts, so this is an upper bound).
    pub fn resident_bytes(&self) -> usize {
        let ids: Vec<(TensorId, usize)> =
            self.lock().iter().map(|(&id, t)| (id, t.bytes)).collect();
        ids.into_iter()
            .filter(|&(id, _)| {
                self.status(id).is_ok_and(|s| {
                    matches!(
                        s.state,
                        TensorState::Resident | TensorState::SwappingIn | TensorState::SwappingOut
                    )
                })
            })
            .map(|(_, bytes)| bytes)
            .sum()
    }

    /// The ids held, sorted.
    pub fn ids(&self) -> Vec<TensorId> {
        let mut ids: Vec<TensorId> = self.lock().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Blocks until no swap is running.
    pub fn wait_idle(&self) {
        self.cpu.wait_idle();
        #[cfg(feature = "cuda")]
        self.cuda.wait_idle();
    }
}

fn unsupported_device(device: &Device) -> Error {
    Error::Unsupported {
        what: format!(
            "swapping {:?} tensors: this build swaps CPU{} tensors",
            device.location(),
            if cfg!(feature = "cuda") {
                " and CUDA"
            } else {
                " (and CUDA with the cuda feature)"
            }
        ),
    }
}
