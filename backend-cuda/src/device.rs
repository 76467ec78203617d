//! [`CudaDevice`] and its [`Device`] implementation.

use std::ptr::NonNull;
use std::sync::Arc;

use cudarc::driver::{sys, CudaContext, CudaStream};
use tensorswap_core::{
    Capabilities, Device, DeviceBuffer, DeviceInfo, Direction, Error, OwnerToken, Result,
};

use crate::driver::{self, failed};
use crate::memory::CudaMemory;
use crate::pending::{Check, CudaPending};
use crate::registration::HostRegistration;
use crate::BACKEND;

/// One CUDA GPU; see the [crate docs](crate).
///
/// Cheap to clone: clones share the context and the two transfer streams.
#[derive(Debug, Clone)]
pub struct CudaDevice {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    ctx: Arc<CudaContext>,
    /// Uploads, and allocation and freeing.
    up: Arc<CudaStream>,
    /// Downloads: a stream of its own, so the two directions overlap.
    down: Arc<CudaStream>,
    name: String,
    memory: usize,
    owner: OwnerToken,
}

impl CudaDevice {
    /// Opens GPU `ordinal` (its primary context, shared with other users of
    /// the runtime API on this process).
    ///
    /// `Unavailable` when the driver library is missing, there is no GPU, or
    /// the ordinal is out of range; never a panic.
    pub fn new(ordinal: usize) -> Result<Self> {
        let count = driver::device_count()?;
        if ordinal >= count {
            return Err(Error::Unavailable {
                component: BACKEND,
                reason: format!("no CUDA device {ordinal}: this machine has {count}"),
            });
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| Error::Unavailable {
            component: BACKEND,
            reason: format!("opening device {ordinal}: {}", driver::describe(&e)),
        })?;
        Self::from_context(ctx)
    }

    /// Opens the first GPU; see [`CudaDevice::new`].
    pub fn open() -> Result<Self> {
        Self::new(0)
    }

    /// Works in a context the application already has (candle and other
    /// libraries hold one), on two new streams of its own.
    pub fn from_context(ctx: Arc<CudaContext>) -> Result<Self> {
        let up = ctx
            .new_stream()
            .map_err(|e| failed("create a stream", &e))?;
        let down = ctx
            .new_stream()
            .map_err(|e| failed("create a stream", &e))?;
        let name = ctx.name().map_err(|e| failed("query device", &e))?;
        let memory = ctx.total_mem().map_err(|e| failed("query device", &e))?;
        tracing::debug!(ordinal = ctx.ordinal(), %name, memory, async_alloc = ctx.has_async_alloc(), "cuda device opened");
        Ok(Self {
            shared: Arc::new(Shared {
                ctx,
                up,
                down,
                name,
                memory,
                owner: OwnerToken::new(),
            }),
        })
    }

    /// The context, to run your own kernels next to the transfers.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.shared.ctx
    }

    /// Lends another library's device memory to tensorswap (a candle
    /// tensor's `CudaSlice`, say) as a buffer for the transfer API and the
    /// swappers, with no copy. `keep` is held until the buffer drops, and
    /// nothing frees the memory here.
    ///
    /// # Safety
    ///
    /// `ptr..ptr + len` is device memory of this device's context that stays
    /// allocated while `keep` lives, and that nothing writes while a
    /// transfer of tensorswap uses it. Work queued on other streams that
    /// writes it must be ordered first ([`CudaDevice::wait_for`]).
    pub unsafe fn adopt(
        &self,
        ptr: sys::CUdeviceptr,
        len: usize,
        keep: Box<dyn std::any::Any + Send + Sync>,
    ) -> DeviceBuffer<CudaDevice> {
        let shared = &self.shared;
        // SAFETY: forwarded from this function's contract.
        let memory = unsafe { CudaMemory::from_lent(&shared.owner, &shared.down, ptr, len, keep) };
        // SAFETY: `len` bytes of this device's memory, by the contract above.
        unsafe { DeviceBuffer::from_memory(memory, len, BACKEND) }
    }

    /// Orders this device's transfers after the work queued on `stream` so
    /// far (e.g. the kernels of a framework that wrote a tensor about to be
    /// swapped out): both of its streams wait for an event recorded there.
    pub fn wait_for(&self, stream: &CudaStream) -> Result<()> {
        let shared = &self.shared;
        shared
            .ctx
            .bind_to_thread()
            .map_err(|e| failed("bind context", &e))?;
        let event = stream
            .record_event(None)
            .map_err(|e| failed("record an event", &e))?;
        shared
            .up
            .wait(&event)
            .and_then(|()| shared.down.wait(&event))
            .map_err(|e| failed("order streams", &e))
    }

    /// Binds the context, runs one async operation on `stream` (`start`
    /// gets the stream and returns what to check once it has run, or why it
    /// could not be queued) and records the event its ticket waits on;
    /// waits sleep (`CU_EVENT_BLOCKING_SYNC`).
    fn transfer(
        &self,
        stream: &CudaStream,
        direction: Direction,
        offset: usize,
        len: usize,
        start: impl FnOnce(sys::CUstream) -> std::result::Result<Option<Check>, String>,
    ) -> Result<CudaPending> {
        if len == 0 {
            return Ok(CudaPending::new(None, None, direction, offset, 0));
        }
        let ctx = &self.shared.ctx;
        ctx.bind_to_thread()
            .map_err(|e| failed("bind context", &e))?;
        let check = start(stream.cu_stream()).map_err(|reason| Error::Transfer {
            backend: BACKEND,
            direction,
            offset,
            len,
            reason,
        })?;
        let event = match stream.record_event(Some(sys::CUevent_flags::CU_EVENT_BLOCKING_SYNC)) {
            Ok(event) => event,
            Err(e) => {
                // The copy is queued and may still be running, and the
                // error hands its buffers back: wait for it first. (Found
                // by the emulated driver: the buffers used to go back
                // while the copy still wrote into them.)
                if let Err(sync) = stream.synchronize() {
                    tracing::error!(backend = BACKEND, error = %driver::describe(&sync), "waiting for a copy whose event failed");
                }
                return Err(failed("record an event", &e));
            }
        };
        Ok(CudaPending::new(Some(event), check, direction, offset, len))
    }

    /// How GPUDirect Storage runs on this machine (`gds` feature): through
    /// the nvidia-fs driver, or in cuFile's compat mode; or why it cannot.
    #[cfg(feature = "gds")]
    pub fn gds_mode(&self) -> Result<String> {
        crate::gds::mode(&self.shared.ctx)
    }
}

/// A driver status as the outcome of queueing a copy.
fn queued(status: sys::CUresult) -> std::result::Result<Option<Check>, String> {
    status
        .result()
        .map(|()| None)
        .map_err(|e| driver::describe(&e))
}

impl Device for CudaDevice {
    type Memory = CudaMemory;
    type Pending = CudaPending;
    type Registration = HostRegistration;

    fn info(&self) -> DeviceInfo {
        let name = format!("{} (cuda:{})", self.shared.name, self.shared.ctx.ordinal());
        DeviceInfo::new(BACKEND, name, Some(self.shared.memory))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(self.shared.memory)
            .with_pinned_host(true)
            .with_async_transfers(true)
            // Uploads and downloads run on separate streams: not ordered.
            // Built with cuFile; `open_direct` says whether it runs here.
            .with_direct_storage(cfg!(feature = "gds"))
    }

    fn allocate_memory(&self, len: usize) -> Result<CudaMemory> {
        let shared = &self.shared;
        if len > shared.memory {
            return Err(Error::OutOfMemory {
                backend: BACKEND,
                requested: len,
                available: shared.ctx.mem_get_info().ok().map(|(free, _)| free),
            });
        }
        let pooled = shared.ctx.has_async_alloc();
        CudaMemory::allocate(&shared.owner, &shared.up, &shared.down, pooled, len)
    }

    fn owns(&self, memory: &CudaMemory) -> bool {
        memory.belongs_to(&self.shared.owner)
    }

    fn allocate_pinned(&self, len: usize) -> Result<tensorswap_core::PinnedAlloc> {
        crate::host_alloc::allocate(&self.shared.ctx, len)
    }

    unsafe fn register_host(&self, ptr: NonNull<u8>, len: usize) -> Result<HostRegistration> {
        // SAFETY: forwarded from the caller.
        unsafe { HostRegistration::new(&self.shared.ctx, ptr, len) }
    }

    unsafe fn submit_upload(
        &self,
        src: *const u8,
        len: usize,
        dst: &CudaMemory,
        dst_offset: usize,
    ) -> Result<CudaPending> {
        let to = dst.device_ptr() + dst_offset as u64;
        self.transfer(
            &self.shared.up,
            Direction::Upload,
            dst_offset,
            len,
            |stream| {
                // SAFETY: the caller guarantees `dst` holds `dst_offset + len`
                // bytes and keeps both ranges alive and unaliased until the
                // ticket is waited.
                queued(unsafe { sys::cuMemcpyHtoDAsync_v2(to, src.cast(), len, stream) })
            },
        )
    }

    unsafe fn submit_download(
        &self,
        src: &CudaMemory,
        src_offset: usize,
        dst: *mut u8,
        len: usize,
    ) -> Result<CudaPending> {
        let from = src.device_ptr() + src_offset as u64;
        self.transfer(
            &self.shared.down,
            Direction::Download,
            src_offset,
            len,
            |stream| {
                // SAFETY: as in submit_upload, for `src` and the host range at `dst`.
                queued(unsafe { sys::cuMemcpyDtoHAsync_v2(dst.cast(), from, len, stream) })
            },
        )
    }

    #[cfg(feature = "gds")]
    fn open_direct(&self, file: &tensorswap_core::SwapFile) -> Result<()> {
        crate::gds::register(&self.shared.ctx, file).map(drop)
    }

    /// Reads run on the upload stream, writes on the download stream.
    #[cfg(feature = "gds")]
    unsafe fn submit_direct(
        &self,
        op: tensorswap_core::IoOp,
        memory: &CudaMemory,
        mem_offset: usize,
        file: &tensorswap_core::SwapFile,
        file_offset: u64,
        len: usize,
    ) -> Result<CudaPending> {
        let registered = crate::gds::register(&self.shared.ctx, file)?;
        let stream = match op {
            tensorswap_core::IoOp::Read => &self.shared.up,
            tensorswap_core::IoOp::Write => &self.shared.down,
        };
        let at = memory.device_ptr() + mem_offset as u64;
        self.transfer(stream, op.device_direction(), mem_offset, len, |_| {
            // SAFETY: the caller guarantees `memory` holds `mem_offset + len`
            // bytes and keeps it alive and untouched until the ticket is
            // waited, which is after the operation has run.
            let op = unsafe {
                crate::gds::FileOp::submit(op, registered, file, at, len, file_offset, stream)
            }?;
            Ok(Some(Box::new(move || op.finish()) as Check))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ordinal_past_the_last_device_is_unavailable_never_a_panic() {
        // With or without a GPU (and with or without a driver).
        let err = CudaDevice::new(usize::MAX).unwrap_err();
        assert!(err.is_unavailable(), "{err}");
    }
}
