//! [`CpuDevice`] and its [`Device`] implementation.

use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use tensorswap_core::sys::aligned::AlignedAlloc;
use tensorswap_core::sys::memlock::Locked;
use tensorswap_core::sys::page_size;
use tensorswap_core::{
    Capabilities, Device, DeviceBuffer, DeviceExt, DeviceInfo, Error, IoOp, PinnedAlloc, Result,
    SwapFile,
};

use crate::copier::Copier;
use crate::memory::{Budget, CpuMemory};
use crate::{CpuPending, BACKEND};

/// A device whose memory is host RAM; see the [crate docs](crate).
///
/// Cheap to clone: clones share the copy thread and the memory budget. The
/// copy thread stops (after finishing queued copies) when the last clone is
/// dropped.
#[derive(Debug, Clone)]
pub struct CpuDevice {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    budget: Arc<Budget>,
    /// Device memory and `register_host` lock pages.
    pinned: bool,
    /// `pin_host` locks pages (every policy but `Pinning::Off`).
    pin_on_request: bool,
    copier: Copier,
}

impl CpuDevice {
    pub(crate) fn start(
        capacity: usize,
        latency: Duration,
        pinned: bool,
        pin_on_request: bool,
    ) -> Result<Self> {
        let shared = Shared {
            budget: Arc::new(Budget::new(capacity)),
            pinned,
            pin_on_request,
            copier: Copier::start(latency)?,
        };
        tracing::debug!(
            capacity,
            ?latency,
            pinned,
            pin_on_request,
            "cpu device opened"
        );
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// Bytes of device memory currently allocated.
    pub fn used(&self) -> usize {
        self.shared.budget.used()
    }

    /// Device memory holding a copy of `bytes`, in one copy (no host
    /// staging buffer: on this backend device memory is host memory).
    ///
    /// ```
    /// let dev = tensorswap_cpu::CpuDevice::new()?;
    /// let buf = dev.alloc_from(b"weights")?;
    /// assert_eq!(&buf.memory().as_slice()[..7], b"weights");
    /// # Ok::<(), tensorswap_core::Error>(())
    /// ```
    pub fn alloc_from(&self, bytes: &[u8]) -> Result<DeviceBuffer<Self>> {
        let mut memory = self.alloc(bytes.len())?.into_memory();
        memory.as_mut_slice()[..bytes.len()].copy_from_slice(bytes);
        // SAFETY: this device's memory of at least `bytes.len()` bytes,
        // owned here and in no transfer.
        Ok(unsafe { DeviceBuffer::from_memory(memory, bytes.len(), BACKEND) })
    }
}

impl Device for CpuDevice {
    type Memory = CpuMemory;
    type Pending = CpuPending;
    type Registration = Option<Locked>;

    fn info(&self) -> DeviceInfo {
        DeviceInfo::new(BACKEND, "host memory", Some(self.shared.budget.capacity()))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(self.shared.budget.capacity().min(isize::MAX as usize))
            .with_pinned_host(self.shared.pinned)
            .with_async_transfers(true)
            .with_ordered_transfers(true)
            .with_direct_storage(true)
    }

    fn allocate_memory(&self, len: usize) -> Result<CpuMemory> {
        CpuMemory::allocate(&self.shared.budget, len, self.shared.pinned)
    }

    fn owns(&self, memory: &CpuMemory) -> bool {
        memory.belongs_to(&self.shared.budget)
    }

    unsafe fn register_host(&self, ptr: NonNull<u8>, len: usize) -> Result<Option<Locked>> {
        if !self.shared.pinned {
            return Ok(None);
        }
        // SAFETY: the caller keeps the range allocated until the registration drops.
        unsafe { Locked::new(ptr.as_ptr(), len) }.map(Some)
    }

    /// Locks a caller's buffer under every policy but `Pinning::Off`, also
    /// where a memlock limit keeps the device's own memory unlocked: the
    /// caller asked for this buffer, and learns from [`Error::Pin`] when the
    /// limit refuses it.
    unsafe fn pin_host(&self, ptr: NonNull<u8>, len: usize) -> Result<(Option<Locked>, bool)> {
        if !self.shared.pin_on_request {
            return Ok((None, false));
        }
        // SAFETY: the caller keeps the range allocated until the registration drops.
        unsafe { Locked::new(ptr.as_ptr(), len) }.map(|lock| (Some(lock), true))
    }

    unsafe fn submit_upload(
        &self,
        src: *const u8,
        len: usize,
        dst: &CpuMemory,
        dst_offset: usize,
    ) -> Result<CpuPending> {
        // SAFETY: the caller guarantees dst_offset + len <= dst.len(), so the
        // offset pointer stays inside the allocation.
        let dst = unsafe { dst.base().add(dst_offset) };
        // SAFETY: the caller keeps both ranges alive and unaliased until waited.
        unsafe { self.shared.copier.submit(src, dst, len) }
    }

    unsafe fn submit_download(
        &self,
        src: &CpuMemory,
        src_offset: usize,
        dst: *mut u8,
        len: usize,
    ) -> Result<CpuPending> {
        // SAFETY: the caller guarantees src_offset + len <= src.len().
        let src = unsafe { src.base().add(src_offset) };
        // SAFETY: the caller keeps both ranges alive and unaliased until waited.
        unsafe { self.shared.copier.submit(src, dst, len) }
    }

    /// An aligned allocation locked with `mlock`: what registering does, on
    /// memory of our own (for pools whose memory a device refused).
    fn allocate_pinned(&self, len: usize) -> Result<PinnedAlloc> {
        if !self.shared.pinned {
            return Err(Error::Unsupported {
                component: BACKEND,
                what: "page-locked memory on a device opened with pinning off".into(),
            });
        }
        let mut alloc = AlignedAlloc::zeroed(len, page_size())?;
        let ptr = NonNull::new(alloc.as_mut_ptr()).ok_or(Error::HostAlloc {
            len,
            align: page_size(),
        })?;
        // SAFETY: the lock covers the allocation, and is dropped before it
        // (tuple fields drop in order).
        let locked = unsafe { Locked::new(ptr.as_ptr(), len)? };
        // SAFETY: `ptr` is valid for `len` bytes while the owner (which holds
        // the allocation) lives, and only the returned value hands it out.
        Ok(unsafe { PinnedAlloc::new(ptr, len, Box::new((locked, alloc))) })
    }

    /// Nothing to open: the file's own descriptor reaches host memory.
    fn open_direct(&self, _file: &SwapFile) -> Result<()> {
        Ok(())
    }

    unsafe fn submit_direct(
        &self,
        op: IoOp,
        memory: &CpuMemory,
        mem_offset: usize,
        file: &SwapFile,
        file_offset: u64,
        len: usize,
    ) -> Result<CpuPending> {
        // SAFETY: the caller guarantees mem_offset + len <= memory.len().
        let mem = unsafe { memory.base().add(mem_offset) };
        // SAFETY: the caller keeps the memory alive and unaliased until waited.
        unsafe {
            self.shared
                .copier
                .submit_file(op, file, file_offset, mem, len)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tensorswap_core::DeviceExt;

    use super::*;

    #[test]
    fn added_latency_makes_transfers_observably_asynchronous() {
        let latency = Duration::from_millis(50);
        let dev = CpuDevice::builder().latency(latency).build().unwrap();
        let started = Instant::now();
        let ticket = dev
            .upload(vec![7u8; 4096], dev.alloc(4096).unwrap(), 0)
            .unwrap();
        // Submission returned without waiting for the copy thread.
        assert!(
            !ticket.is_complete(),
            "complete {:?} after submission",
            started.elapsed()
        );
        let done = ticket.wait().unwrap();
        assert!(started.elapsed() >= latency);
        let back = dev
            .download_blocking(done.device, 0, vec![0u8; 4096])
            .unwrap();
        assert!(back.host.iter().all(|&b| b == 7));
    }

    #[test]
    fn device_memory_outlives_its_device_and_returns_to_the_budget() {
        let dev = CpuDevice::builder().capacity(1 << 20).build().unwrap();
        let probe = dev.clone();
        let mem = dev.alloc(4096).unwrap();
        drop(dev);
        assert_eq!(probe.used(), 4096);
        drop(mem);
        assert_eq!(probe.used(), 0);
    }

    /// The default capacity is all of RAM; an allocation the kernel cannot
    /// give now is `OutOfMemory` up front, not a job for the OOM killer.
    #[test]
    fn an_allocation_beyond_available_memory_is_refused_with_a_typed_error() {
        let Some(physical) = tensorswap_core::sys::physical_memory() else {
            return;
        };
        let dev = CpuDevice::new().unwrap();
        match dev.alloc(physical) {
            Err(Error::OutOfMemory {
                requested,
                available: Some(available),
                ..
            }) => assert!(requested == physical && available < physical),
            Err(other) => panic!("expected OutOfMemory, got {other}"),
            Ok(_) => panic!("allocated all {physical} bytes of RAM"),
        }
        assert_eq!(dev.used(), 0, "the refused bytes went back to the budget");
    }
}
