//! Device memory of the CUDA backend: one driver allocation, stream-ordered
//! where the device has memory pools.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use cudarc::driver::{result, sys, CudaContext, CudaStream, DriverError};
use tensorswap_core::{Error, OwnerToken, Result};

use crate::driver::{describe, failed};
use crate::BACKEND;

/// A CUDA device allocation; freed on drop (stream-ordered where the device
/// supports it), also after the device handle is gone. Memory another
/// library owns and lent ([`CudaDevice::adopt`](crate::CudaDevice::adopt))
/// is not freed: dropping it drops what keeps that library's allocation
/// alive.
pub struct CudaMemory {
    /// 0 for a zero-length allocation, which the driver refuses to make.
    ptr: sys::CUdeviceptr,
    len: usize,
    /// The stream it was allocated on and is freed on.
    stream: Arc<CudaStream>,
    origin: Origin,
    owner: OwnerToken,
}

/// Who frees the memory.
enum Origin {
    /// We do; `pooled`: it came from the device's memory pool.
    Ours { pooled: bool },
    /// Another library does, once the value it lent with it drops.
    Lent(Box<dyn Any + Send + Sync>),
    /// Nobody here any more (handed over by [`CudaMemory::into_raw`]).
    HandedOver,
}

impl fmt::Debug for CudaMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = match self.origin {
            Origin::Ours { pooled } => {
                if pooled {
                    "pool"
                } else {
                    "cuMemAlloc"
                }
            }
            Origin::Lent(_) => "lent",
            Origin::HandedOver => "handed over",
        };
        f.debug_struct("CudaMemory")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .field("origin", &origin)
            .finish()
    }
}

impl CudaMemory {
    /// Allocates `len` bytes on `stream`. With `pooled`, through the
    /// device's memory pool (`cuMemAllocAsync`); `other` then waits for the
    /// allocation, so that both transfer streams may use it at once.
    pub(crate) fn allocate(
        owner: &OwnerToken,
        stream: &Arc<CudaStream>,
        other: &CudaStream,
        pooled: bool,
        len: usize,
    ) -> Result<Self> {
        let ctx = stream.context();
        ctx.bind_to_thread()
            .map_err(|e| failed("bind context", &e))?;
        let ptr = if len == 0 {
            0
        } else if pooled {
            // SAFETY: `stream` is a live stream of the bound context; the
            // memory is not read before something is written to it.
            let ptr = unsafe { result::malloc_async(stream.cu_stream(), len) }
                .map_err(|e| alloc_error(ctx, len, &e))?;
            let ready = stream
                .record_event(None)
                .and_then(|event| other.wait(&event));
            if let Err(e) = ready {
                // SAFETY: just allocated on this stream and never used.
                let _ = unsafe { result::free_async(ptr, stream.cu_stream()) };
                return Err(failed("order an allocation between streams", &e));
            }
            ptr
        } else {
            // SAFETY: a plain allocation in the bound context.
            unsafe { result::malloc_sync(len) }.map_err(|e| alloc_error(ctx, len, &e))?
        };
        Ok(Self {
            ptr,
            len,
            stream: Arc::clone(stream),
            origin: Origin::Ours { pooled },
            owner: owner.clone(),
        })
    }

    /// Memory another library allocated in this context and lends for as
    /// long as `keep` lives (e.g. a clone of the framework tensor that owns
    /// it).
    ///
    /// # Safety
    ///
    /// `ptr..ptr + len` is device memory of `stream`'s context that stays
    /// allocated while `keep` lives, and that nothing writes while a
    /// transfer of tensorswap uses it.
    pub(crate) unsafe fn from_lent(
        owner: &OwnerToken,
        stream: &Arc<CudaStream>,
        ptr: sys::CUdeviceptr,
        len: usize,
        keep: Box<dyn Any + Send + Sync>,
    ) -> Self {
        Self {
            ptr: if len == 0 { 0 } else { ptr },
            len,
            stream: Arc::clone(stream),
            origin: Origin::Lent(keep),
            owner: owner.clone(),
        }
    }

    /// True for memory from the device's memory pool (freed with
    /// `cuMemFreeAsync`), false for `cuMemAlloc` memory and lent memory.
    pub fn is_pooled(&self) -> bool {
        matches!(self.origin, Origin::Ours { pooled: true })
    }

    /// What another library lent with this memory
    /// ([`CudaDevice::adopt`](crate::CudaDevice::adopt)'s `keep`), to
    /// recover it (e.g. the framework tensor that owns the memory); `None`
    /// for memory tensorswap allocated.
    pub fn lent(&self) -> Option<&(dyn Any + Send + Sync)> {
        match &self.origin {
            Origin::Lent(keep) => Some(keep.as_ref()),
            _ => None,
        }
    }

    /// Gives up the allocation without freeing it: its address and length.
    /// The caller frees it from then on, with `cuMemFreeAsync` where
    /// [`is_pooled`](Self::is_pooled), else `cuMemFree` (as a cudarc
    /// `CudaSlice` made with `upgrade_device_ptr` does, in a context with a
    /// memory pool and without). Lent memory is not ours to give:
    /// `Unsupported`, and it comes back unchanged.
    pub fn into_raw(mut self) -> std::result::Result<(sys::CUdeviceptr, usize), (Error, Self)> {
        match self.origin {
            Origin::Ours { .. } => {
                self.origin = Origin::HandedOver;
                Ok((self.ptr, self.len))
            }
            _ => Err((
                Error::Unsupported {
                    component: BACKEND,
                    what: String::from("handing over memory that another library lent"),
                },
                self,
            )),
        }
    }

    /// The device address, to hand to kernels or other CUDA libraries (while
    /// no transfer of tensorswap uses the memory).
    pub fn device_ptr(&self) -> sys::CUdeviceptr {
        self.ptr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length allocation.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn belongs_to(&self, owner: &OwnerToken) -> bool {
        self.owner.same(owner)
    }
}

/// `OutOfMemory` with what the device has free, or the driver's own error.
fn alloc_error(ctx: &CudaContext, len: usize, error: &DriverError) -> Error {
    if error.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
        Error::OutOfMemory {
            backend: BACKEND,
            requested: len,
            available: ctx.mem_get_info().ok().map(|(free, _)| free),
        }
    } else {
        Error::Device {
            component: BACKEND,
            op: "allocate",
            reason: format!("{len} bytes: {}", describe(error)),
        }
    }
}

impl Drop for CudaMemory {
    fn drop(&mut self) {
        let Origin::Ours { pooled } = self.origin else {
            return;
        };
        if self.ptr == 0 {
            return;
        }
        let freed = self.stream.context().bind_to_thread().and_then(|()| {
            // SAFETY: allocated by `allocate` and freed only here; the Device
            // contract has every transfer using it waited before the drop.
            unsafe {
                if pooled {
                    result::free_async(self.ptr, self.stream.cu_stream())
                } else {
                    result::free_sync(self.ptr)
                }
            }
        });
        if let Err(e) = freed {
            tracing::error!(backend = BACKEND, error = %describe(&e), len = self.len, "freeing device memory failed");
        }
    }
}
