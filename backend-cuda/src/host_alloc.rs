//! Page-locked host memory the driver allocates (`cuMemHostAlloc`), for
//! pools whose own memory `cuMemHostRegister` refused.

use std::ptr::NonNull;
use std::sync::Arc;

use cudarc::driver::{sys, CudaContext};
use tensorswap_core::{Error, PinnedAlloc, Result};

use crate::driver::{describe, failed};
use crate::BACKEND;

/// Frees the allocation (`cuMemFreeHost`) when dropped.
struct HostAlloc {
    ptr: NonNull<u8>,
    ctx: Arc<CudaContext>,
}

// SAFETY: only the address is kept, to free it; the driver call is valid
// from any thread with the context bound.
unsafe impl Send for HostAlloc {}
// SAFETY: as above; nothing reads or writes through the pointer here.
unsafe impl Sync for HostAlloc {}

/// Allocates `len` zeroed bytes of portable page-locked memory, cached (not
/// write-combined: the CPU reads it at full speed).
pub(crate) fn allocate(ctx: &Arc<CudaContext>, len: usize) -> Result<PinnedAlloc> {
    ctx.bind_to_thread()
        .map_err(|e| failed("bind context", &e))?;
    let mut raw = std::ptr::null_mut();
    // SAFETY: `raw` is a valid out-pointer; flags request portable memory only.
    let status =
        unsafe { sys::cuMemHostAlloc(&mut raw, len.max(1), sys::CU_MEMHOSTALLOC_PORTABLE) };
    status.result().map_err(|e| Error::Device {
        component: BACKEND,
        op: "allocate page-locked host memory (cuMemHostAlloc)",
        reason: format!("{len} bytes: {}", describe(&e)),
    })?;
    let ptr = NonNull::new(raw.cast::<u8>()).ok_or(Error::HostAlloc {
        len,
        align: tensorswap_core::sys::page_size(),
    })?;
    let owner = HostAlloc {
        ptr,
        ctx: Arc::clone(ctx),
    };
    // SAFETY: the driver returned `len` writable bytes at `ptr`.
    unsafe { ptr.as_ptr().write_bytes(0, len) };
    // SAFETY: `ptr` holds `len` initialised bytes until `owner` frees them,
    // and nobody else has the address.
    Ok(unsafe { PinnedAlloc::new(ptr, len, Box::new(owner)) })
}

impl Drop for HostAlloc {
    fn drop(&mut self) {
        if let Err(e) = self.ctx.bind_to_thread() {
            tracing::error!(backend = BACKEND, error = %describe(&e), "cannot free page-locked host memory");
            return;
        }
        // SAFETY: the pointer came from cuMemHostAlloc and is freed once.
        let status = unsafe { sys::cuMemFreeHost(self.ptr.as_ptr().cast()) };
        if let Err(e) = status.result() {
            tracing::error!(backend = BACKEND, error = %describe(&e), "cuMemFreeHost failed");
        }
    }
}
