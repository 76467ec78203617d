//! Page-locking host memory the driver did not allocate: a small safe
//! wrapper over `cuMemHostRegister_v2` / `cuMemHostUnregister`.

use std::ptr::NonNull;
use std::sync::Arc;

use cudarc::driver::{sys, CudaContext};
use tensorswap_core::{Error, Result};

use crate::driver::describe;
use crate::BACKEND;

/// Host memory registered with the driver (page-locked and mapped for DMA);
/// unregistered on drop.
#[derive(Debug)]
pub struct HostRegistration {
    ptr: NonNull<u8>,
    len: usize,
    ctx: Arc<CudaContext>,
}

// SAFETY: the registration only remembers an address to unregister; the
// driver call is valid from any thread with the context bound.
unsafe impl Send for HostRegistration {}
// SAFETY: as above; no method reads or writes through the pointer.
unsafe impl Sync for HostRegistration {}

impl HostRegistration {
    /// Registers `len` bytes at `ptr` (portable: usable from every context).
    ///
    /// # Safety
    /// `ptr..ptr + len` is host memory of this process that stays allocated
    /// until the registration is dropped, and is not registered already.
    pub(crate) unsafe fn new(ctx: &Arc<CudaContext>, ptr: NonNull<u8>, len: usize) -> Result<Self> {
        // Made only once the range is registered: dropping it unregisters.
        // (Found by the emulated driver: a refused registration used to be
        // dropped here, unregistering a range it never held.)
        let this = || Self {
            ptr,
            len,
            ctx: Arc::clone(ctx),
        };
        if len == 0 {
            // Nothing to lock (and the driver refuses empty ranges).
            return Ok(this());
        }
        ctx.bind_to_thread()
            .map_err(|e| crate::driver::failed("bind context", &e))?;
        // SAFETY: the caller guarantees the range is live host memory.
        let status = unsafe {
            sys::cuMemHostRegister_v2(ptr.as_ptr().cast(), len, sys::CU_MEMHOSTREGISTER_PORTABLE)
        };
        status.result().map_err(|e| {
            if e.0 == sys::CUresult::CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED {
                return Error::AlreadyRegistered { len };
            }
            Error::Device {
                component: BACKEND,
                op: "register host memory (cuMemHostRegister)",
                reason: format!("{len} bytes: {}", describe(&e)),
            }
        })?;
        Ok(this())
    }

    /// Bytes registered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty registration.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for HostRegistration {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        if let Err(e) = self.ctx.bind_to_thread() {
            tracing::error!(backend = BACKEND, error = %describe(&e), "cannot unregister host memory");
            return;
        }
        // SAFETY: the range was registered by `new` and is still allocated
        // (the caller of `new` keeps it so until this drop).
        let status = unsafe { sys::cuMemHostUnregister(self.ptr.as_ptr().cast()) };
        if let Err(e) = status.result() {
            tracing::error!(backend = BACKEND, error = %describe(&e), len = self.len, "cuMemHostUnregister failed");
        }
    }
}
