//! The CUDA side of the [`Offloader`](crate::Offloader): one swapper per
//! candle CUDA context, sharing that context (`CudaDevice::from_context`),
//! ordered after candle's stream, with no device copy either way.

use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::cuda_backend::{CudaStorage, CudaStorageSlice};
use candle_core::op::BackpropOp;
use candle_core::{DType, Shape, Storage, Tensor};
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr, DeviceRepr};
use tensorswap_cuda::CudaDevice;
use tensorswap_swapper::{SwapTicket, Swapper, TensorId, TensorState};

use crate::host::{byte_range, unsupported_dtype};
use crate::swapping::{settle, start_out, StoreSettings};
use crate::{Error, Result};

/// The swappers, one per CUDA context met so far.
pub(crate) struct CudaSwappers {
    settings: StoreSettings,
    swappers: Mutex<Vec<Arc<Swapper<CudaDevice>>>>,
}

impl CudaSwappers {
    pub(crate) fn new(settings: StoreSettings) -> Self {
        Self {
            settings,
            swappers: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Swapper<CudaDevice>>>> {
        self.swappers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The swapper of `dev`'s context, made on first use.
    fn swapper(&self, dev: &candle_core::CudaDevice) -> Result<Arc<Swapper<CudaDevice>>> {
        let ctx = dev.cuda_stream().context().clone();
        let mut swappers = self.lock();
        if let Some(found) = swappers
            .iter()
            .find(|s| Arc::ptr_eq(s.device().context(), &ctx))
        {
            return Ok(Arc::clone(found));
        }
        let device = CudaDevice::from_context(ctx)?;
        let store = self.settings.store_for(&device)?;
        let swapper = Arc::new(Swapper::new(device, store)?);
        swappers.push(Arc::clone(&swapper));
        Ok(swapper)
    }

    /// Starts the swap-out of a contiguous CUDA tensor: its own memory,
    /// lent to the swapper with a clone of the tensor that keeps it alive
    /// until the write is done.
    pub(crate) fn swap_out(&self, id: TensorId, tensor: Tensor) -> Result<(SwapTicket, usize)> {
        let dev = tensor.device().as_cuda_device()?.clone();
        let swapper = self.swapper(&dev)?;
        let stream = dev.cuda_stream();
        // The kernels that wrote the tensor run on candle's stream.
        swapper.device().wait_for(&stream)?;
        let (ptr, len) = {
            let (storage, layout) = tensor.storage_and_layout();
            let Storage::Cuda(cuda) = &*storage else {
                return Err(Error::Unsupported {
                    what: String::from("a CUDA device whose tensor has no CUDA storage"),
                });
            };
            let (base, storage_len) = address(&cuda.slice, &stream);
            let range = byte_range(tensor.dtype(), layout, storage_len)?;
            (base + range.start as u64, range.len())
        };
        // SAFETY: `ptr..ptr + len` lies in the tensor's allocation, in the
        // swapper's context (found by that context), kept allocated by the
        // tensor clone moved into the buffer; candle does not write a
        // tensor's storage except through in-place ops, which the
        // offloader's contract excludes while a swap-out runs; the writes
        // queued before were ordered first by `wait_for`.
        let buf = unsafe { swapper.device().adopt(ptr, len, Box::new(tensor)) };
        Ok((start_out(&swapper, id, len, buf)?, len))
    }

    pub(crate) fn prefetch(&self, ids: &[(TensorId, candle_core::CudaDevice)]) -> Result<()> {
        for (id, dev) in ids {
            self.swapper(dev)?.prefetch(&[*id])?;
        }
        Ok(())
    }

    /// The stored tensor in a new allocation that the candle tensor owns,
    /// and true; or, after a failed swap-out, the caller's own tensor lent
    /// to the swapper (forgotten by it now), and false.
    pub(crate) fn swap_in(
        &self,
        id: TensorId,
        dtype: &DType,
        shape: &Shape,
        bytes: usize,
        dev: &candle_core::CudaDevice,
    ) -> Result<(Tensor, bool)> {
        let dtype = *dtype;
        let swapper = self.swapper(dev)?;
        if !settle(&swapper, id)? {
            let handle = swapper.get(id)?;
            let lent = handle
                .memory()
                .lent()
                .and_then(|keep| keep.downcast_ref::<Tensor>())
                .cloned();
            drop(handle);
            let tensor = lent.ok_or_else(|| Error::Unsupported {
                what: format!("tensor {id}: its failed swap-out holds no candle tensor"),
            })?;
            swapper.remove(id)?;
            return Ok((tensor, false));
        }
        // The storage variant first: once the memory is handed over, nothing
        // may fail before a slice owns it.
        type Wrap = fn(&Arc<CudaStream>, u64, usize) -> CudaStorageSlice;
        let wrap: Wrap = match dtype {
            DType::U8 => |s, p, b| CudaStorageSlice::U8(slice(s, p, b)),
            DType::U32 => |s, p, b| CudaStorageSlice::U32(slice(s, p, b)),
            DType::I16 => |s, p, b| CudaStorageSlice::I16(slice(s, p, b)),
            DType::I32 => |s, p, b| CudaStorageSlice::I32(slice(s, p, b)),
            DType::I64 => |s, p, b| CudaStorageSlice::I64(slice(s, p, b)),
            DType::BF16 => |s, p, b| CudaStorageSlice::BF16(slice(s, p, b)),
            DType::F16 => |s, p, b| CudaStorageSlice::F16(slice(s, p, b)),
            DType::F32 => |s, p, b| CudaStorageSlice::F32(slice(s, p, b)),
            DType::F64 => |s, p, b| CudaStorageSlice::F64(slice(s, p, b)),
            DType::F8E4M3 => |s, p, b| CudaStorageSlice::F8E4M3(slice(s, p, b)),
            DType::F6E2M3 => |s, p, b| CudaStorageSlice::F6E2M3(slice(s, p, b)),
            DType::F6E3M2 => |s, p, b| CudaStorageSlice::F6E3M2(slice(s, p, b)),
            DType::F4 => |s, p, b| CudaStorageSlice::F4(slice(s, p, b)),
            DType::F8E8M0 => |s, p, b| CudaStorageSlice::F8E8M0(slice(s, p, b)),
            other => return Err(unsupported_dtype(other)),
        };
        let stream = dev.cuda_stream();
        swapper.prefetch(&[id])?;
        let buf = swapper.take(id)?;
        if buf.memory().is_pooled() != stream.context().has_async_alloc() {
            // Never expected: both come from the same context.
            return Err(Error::Unsupported {
                what: String::from(
                    "a context whose allocator changed between allocation and hand-over",
                ),
            });
        }
        let (ptr, _) = buf.into_memory().into_raw().map_err(|(error, _)| error)?;
        let slice = wrap(&stream, ptr, bytes);
        let storage = CudaStorage {
            slice,
            device: dev.clone(),
        };
        let tensor = Tensor::from_storage(
            Storage::Cuda(storage),
            shape.clone(),
            BackpropOp::none(),
            false,
        );
        Ok((tensor, true))
    }

    pub(crate) fn status(
        &self,
        id: TensorId,
        dev: &candle_core::CudaDevice,
    ) -> Result<TensorState> {
        Ok(self.swapper(dev)?.status(id)?.state)
    }

    pub(crate) fn remove(&self, id: TensorId, dev: &candle_core::CudaDevice) -> Result<()> {
        Ok(self.swapper(dev)?.remove(id)?)
    }

    pub(crate) fn wait_idle(&self) {
        for swapper in self.lock().iter() {
            swapper.wait_idle();
        }
    }
}

/// A slice of `bytes` bytes of `T` that owns `ptr` from now on.
fn slice<T: DeviceRepr>(stream: &Arc<CudaStream>, ptr: u64, bytes: usize) -> CudaSlice<T> {
    // SAFETY: `ptr` is a live allocation of at least `bytes` bytes in
    // `stream`'s context, handed over by `CudaMemory::into_raw` and owned by
    // the slice from now on; the slice frees it as it was allocated (from
    // the pool exactly when the context has one, checked by the caller);
    // driver allocations are aligned for every element type.
    unsafe { stream.upgrade_device_ptr::<T>(ptr, bytes / std::mem::size_of::<T>()) }
}

/// The device address and byte length of a candle CUDA storage.
fn address(slice: &CudaStorageSlice, stream: &CudaStream) -> (u64, usize) {
    fn raw<T>(s: &CudaSlice<T>, stream: &CudaStream) -> (u64, usize) {
        // The read is ordered by `wait_for`, and the slice's own read event
        // (recorded when the guard drops) is on candle's stream, which
        // waits for nothing of ours: candle keeps ordering its own work.
        let (ptr, _guard) = s.device_ptr(stream);
        (ptr, s.len() * std::mem::size_of::<T>())
    }
    match slice {
        CudaStorageSlice::U8(s)
        | CudaStorageSlice::F6E2M3(s)
        | CudaStorageSlice::F6E3M2(s)
        | CudaStorageSlice::F4(s)
        | CudaStorageSlice::F8E8M0(s) => raw(s, stream),
        CudaStorageSlice::U32(s) => raw(s, stream),
        CudaStorageSlice::I16(s) => raw(s, stream),
        CudaStorageSlice::I32(s) => raw(s, stream),
        CudaStorageSlice::I64(s) => raw(s, stream),
        CudaStorageSlice::BF16(s) => raw(s, stream),
        CudaStorageSlice::F16(s) => raw(s, stream),
        CudaStorageSlice::F32(s) => raw(s, stream),
        CudaStorageSlice::F64(s) => raw(s, stream),
        CudaStorageSlice::F8E4M3(s) => raw(s, stream),
    }
}
