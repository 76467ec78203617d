//! A decorator that injects faults into any [`Device`], so the same failure
//! tests run on every backend.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::{
    Capabilities, Device, DeviceInfo, Direction, Error, FaultStage, IoOp, PendingOp, PinnedAlloc,
    Result, SwapFile,
};

/// Wraps a device and fails the Nth allocation or transfer on request.
///
/// Everything else is passed through unchanged, so a `FaultyDevice` with no
/// fault armed must pass the whole conformance suite.
///
/// ```
/// use tensorswap_core::{DeviceExt, FaultStage, FaultyDevice};
/// let dev = FaultyDevice::new(tensorswap_cpu::CpuDevice::new()?);
/// dev.fail_transfer(2, FaultStage::Complete); // the 2nd transfer from now fails
/// let host = dev.alloc_host(4096)?;
/// let first = dev.upload(host, dev.alloc(4096)?, 0)?.wait()?;
/// let failed = dev.upload(first.host, first.device, 0)?.wait().unwrap_err();
/// assert!(matches!(failed.error, tensorswap_core::Error::Transfer { .. }));
/// assert_eq!(failed.value.host.len(), 4096); // both buffers come back
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FaultyDevice<D> {
    inner: D,
    allocations: AtomicU64,
    transfers: AtomicU64,
    // Absolute 1-based index of the operation to fail; 0 = none armed.
    fail_allocation_at: AtomicU64,
    fail_transfer_at: AtomicU64,
    // true: the armed transfer fails at completion; false: at submission.
    fail_transfer_at_completion: AtomicBool,
    refuse_registration: AtomicBool,
}

impl<D: Device> FaultyDevice<D> {
    /// Wraps `inner` with no fault armed.
    pub fn new(inner: D) -> Self {
        Self {
            inner,
            allocations: AtomicU64::new(0),
            transfers: AtomicU64::new(0),
            fail_allocation_at: AtomicU64::new(0),
            fail_transfer_at: AtomicU64::new(0),
            fail_transfer_at_completion: AtomicBool::new(false),
            refuse_registration: AtomicBool::new(false),
        }
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Makes the `nth` allocation from now fail (`1` = the next one).
    pub fn fail_allocation(&self, nth: u64) {
        let at = self.allocations.load(Ordering::SeqCst) + nth.max(1);
        self.fail_allocation_at.store(at, Ordering::SeqCst);
    }

    /// Makes every [`Device::register_host`] and [`Device::pin_host`] from
    /// now fail (or succeed again), as CUDA's do where `cuMemHostRegister`
    /// is refused.
    pub fn refuse_registration(&self, refuse: bool) {
        self.refuse_registration.store(refuse, Ordering::SeqCst);
    }

    /// The injected refusal of a registration, when one is set.
    fn check_registration(&self, len: usize) -> Result<()> {
        if self.refuse_registration.load(Ordering::SeqCst) {
            return Err(Error::Device {
                component: self.inner.info().backend,
                op: "register host memory",
                reason: format!("injected fault ({len} bytes)"),
            });
        }
        Ok(())
    }

    /// Makes the `nth` transfer from now (uploads and downloads counted
    /// together; `1` = the next one) fail at `stage`.
    pub fn fail_transfer(&self, nth: u64, stage: FaultStage) {
        let at = self.transfers.load(Ordering::SeqCst) + nth.max(1);
        self.fail_transfer_at_completion
            .store(stage == FaultStage::Complete, Ordering::SeqCst);
        self.fail_transfer_at.store(at, Ordering::SeqCst);
    }

    fn next_transfer_fault(
        &self,
        direction: Direction,
        offset: usize,
        len: usize,
    ) -> Option<(Error, FaultStage)> {
        let n = self.transfers.fetch_add(1, Ordering::SeqCst) + 1;
        if self
            .fail_transfer_at
            .compare_exchange(n, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return None;
        }
        let stage = if self.fail_transfer_at_completion.load(Ordering::SeqCst) {
            FaultStage::Complete
        } else {
            FaultStage::Submit
        };
        let error = Error::Transfer {
            backend: self.inner.info().backend,
            direction,
            offset,
            len,
            reason: format!("injected fault (transfer #{n})"),
        };
        Some((error, stage))
    }

    fn submit(
        &self,
        direction: Direction,
        offset: usize,
        len: usize,
        start: impl FnOnce() -> Result<D::Pending>,
    ) -> Result<FaultyDevicePending<D::Pending>> {
        match self.next_transfer_fault(direction, offset, len) {
            None => start().map(FaultyDevicePending::Real),
            Some((error, FaultStage::Submit)) => Err(error),
            Some((error, FaultStage::Complete)) => Ok(FaultyDevicePending::Failed(error)),
        }
    }
}

/// A pending op of [`FaultyDevice`]: the real one, or an injected failure.
#[derive(Debug)]
pub enum FaultyDevicePending<P> {
    /// Passed through to the wrapped device.
    Real(P),
    /// Completes at once with this error; no byte was copied.
    Failed(Error),
}

// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
impl<P: PendingOp> PendingOp for FaultyDevicePending<P> {
    fn is_complete(&self) -> bool {
        match self {
            FaultyDevicePending::Real(op) => op.is_complete(),
            FaultyDevicePending::Failed(_) => true,
        }
    }

    fn wait(self) -> Result<()> {
        match self {
            FaultyDevicePending::Real(op) => op.wait(),
            FaultyDevicePending::Failed(error) => Err(error),
        }
    }
}

// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
impl<D: Device> Device for FaultyDevice<D> {
    type Memory = D::Memory;
    type Pending = FaultyDevicePending<D::Pending>;
    type Registration = D::Registration;

    fn info(&self) -> DeviceInfo {
        let inner = self.inner.info();
        DeviceInfo {
            name: format!("faulty({})", inner.name),
            ..inner
        }
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn allocate_memory(&self, len: usize) -> Result<Self::Memory> {
        let n = self.allocations.fetch_add(1, Ordering::SeqCst) + 1;
        if self
            .fail_allocation_at
            .compare_exchange(n, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return Err(Error::Device {
                component: self.inner.info().backend,
                op: "allocate",
                reason: format!("injected fault (allocation #{n} of {len} bytes)"),
            });
        }
        self.inner.allocate_memory(len)
    }

    fn owns(&self, memory: &Self::Memory) -> bool {
        self.inner.owns(memory)
    }

    unsafe fn register_host(&self, ptr: NonNull<u8>, len: usize) -> Result<Self::Registration> {
        self.check_registration(len)?;
        // SAFETY: forwarded unchanged; our caller upholds the same contract.
        unsafe { self.inner.register_host(ptr, len) }
    }

    unsafe fn pin_host(&self, ptr: NonNull<u8>, len: usize) -> Result<(Self::Registration, bool)> {
        self.check_registration(len)?;
        // SAFETY: forwarded unchanged; our caller upholds the same contract.
        unsafe { self.inner.pin_host(ptr, len) }
    }

    unsafe fn submit_upload(
        &self,
        src: *const u8,
        len: usize,
        dst: &Self::Memory,
        dst_offset: usize,
    ) -> Result<Self::Pending> {
        self.submit(Direction::Upload, dst_offset, len, || {
            // SAFETY: forwarded unchanged; our caller upholds the same contract.
            unsafe { self.inner.submit_upload(src, len, dst, dst_offset) }
        })
    }

    unsafe fn submit_download(
        &self,
        src: &Self::Memory,
        src_offset: usize,
        dst: *mut u8,
        len: usize,
    ) -> Result<Self::Pending> {
        self.submit(Direction::Download, src_offset, len, || {
            // SAFETY: forwarded unchanged; our caller upholds the same contract.
            unsafe { self.inner.submit_download(src, src_offset, dst, len) }
        })
    }

    fn allocate_pinned(&self, len: usize) -> Result<PinnedAlloc> {
        self.inner.allocate_pinned(len)
    }

    fn open_direct(&self, file: &SwapFile) -> Result<()> {
        self.inner.open_direct(file)
    }

    /// Counted with the transfers: a direct read is an upload into the
    /// device, a direct write a download from it.
    unsafe fn submit_direct(
        &self,
        op: IoOp,
        memory: &Self::Memory,
        mem_offset: usize,
        file: &SwapFile,
        file_offset: u64,
        len: usize,
    ) -> Result<Self::Pending> {
        self.submit(op.device_direction(), mem_offset, len, || {
            // SAFETY: forwarded unchanged; our caller upholds the same contract.
            unsafe {
                self.inner
                    .submit_direct(op, memory, mem_offset, file, file_offset, len)
            }
        })
    }
}
