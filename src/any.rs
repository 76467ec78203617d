//! [`AnyDevice`]: one type over every backend compiled in, chosen at run time.

use std::any::Any;
use std::ptr::NonNull;

use tensorswap_core::{
    Capabilities, Device, DeviceInfo, Error, IoOp, PendingOp, PinnedAlloc, Result, SwapFile,
};

/// A device of whichever backend was opened at run time.
///
/// It implements [`Device`] by forwarding to the backend, so everything
/// generic over `Device` (the swappers, the conformance suite, the CLI's
/// bench) works on it. Memory of one backend handed to another is refused
/// with [`Error::ForeignMemory`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyDevice {
    /// The CPU backend.
    #[cfg(feature = "cpu")]
    Cpu(tensorswap_cpu::CpuDevice),
    /// The wgpu backend.
    #[cfg(feature = "wgpu")]
    Wgpu(tensorswap_wgpu::WgpuDevice),
    /// The CUDA backend.
    #[cfg(feature = "cuda")]
    Cuda(tensorswap_cuda::CudaDevice),
}

/// Device memory of an [`AnyDevice`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyMemory {
    /// CPU backend memory.
    #[cfg(feature = "cpu")]
    Cpu(<tensorswap_cpu::CpuDevice as Device>::Memory),
    /// wgpu backend memory.
    #[cfg(feature = "wgpu")]
    Wgpu(<tensorswap_wgpu::WgpuDevice as Device>::Memory),
    /// CUDA backend memory.
    #[cfg(feature = "cuda")]
    Cuda(<tensorswap_cuda::CudaDevice as Device>::Memory),
}

/// An in-flight transfer of an [`AnyDevice`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyPending {
    /// CPU backend transfer.
    #[cfg(feature = "cpu")]
    Cpu(<tensorswap_cpu::CpuDevice as Device>::Pending),
    /// wgpu backend transfer.
    #[cfg(feature = "wgpu")]
    Wgpu(<tensorswap_wgpu::WgpuDevice as Device>::Pending),
    /// CUDA backend transfer.
    #[cfg(feature = "cuda")]
    Cuda(<tensorswap_cuda::CudaDevice as Device>::Pending),
}

/// Runs `$body` with `$d` bound to the backend value inside `$value`, an
/// `AnyDevice`, `AnyMemory` or `AnyPending` (all variants share names).
macro_rules! each {
    ($kind:ident, $value:expr, $d:ident => $body:expr) => {
        match $value {
            #[cfg(feature = "cpu")]
            $kind::Cpu($d) => $body,
            #[cfg(feature = "wgpu")]
            $kind::Wgpu($d) => $body,
            #[cfg(feature = "cuda")]
            $kind::Cuda($d) => $body,
        }
    };
}

/// Runs `$body` with the device and the memory of the same backend, or
/// returns `ForeignMemory` when they differ.
macro_rules! paired {
    ($dev:expr, $mem:expr, ($d:ident, $m:ident, $variant:ident) => $body:expr) => {{
        #[allow(unreachable_patterns)] // with one backend compiled in, every pair matches
        match ($dev, $mem) {
            #[cfg(feature = "cpu")]
            (AnyDevice::Cpu($d), AnyMemory::Cpu($m)) => {
                #[allow(unused)]
                use AnyPending::Cpu as $variant;
                $body
            }
            #[cfg(feature = "wgpu")]
            (AnyDevice::Wgpu($d), AnyMemory::Wgpu($m)) => {
                #[allow(unused)]
                use AnyPending::Wgpu as $variant;
                $body
            }
            #[cfg(feature = "cuda")]
            (AnyDevice::Cuda($d), AnyMemory::Cuda($m)) => {
                #[allow(unused)]
                use AnyPending::Cuda as $variant;
                $body
            }
            (dev, mem) => Err(Error::ForeignMemory {
                memory: mem.backend(),
                device: dev.info().backend,
            }),
        }
    }};
}

impl AnyMemory {
    /// Name of the backend that allocated it.
    pub fn backend(&self) -> &'static str {
        match self {
            #[cfg(feature = "cpu")]
            AnyMemory::Cpu(_) => tensorswap_cpu::BACKEND,
            #[cfg(feature = "wgpu")]
            AnyMemory::Wgpu(_) => tensorswap_wgpu::BACKEND,
            #[cfg(feature = "cuda")]
            AnyMemory::Cuda(_) => tensorswap_cuda::BACKEND,
        }
    }
}

// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
impl PendingOp for AnyPending {
    fn is_complete(&self) -> bool {
        each!(AnyPending, self, op => op.is_complete())
    }

    fn wait(self) -> Result<()> {
        each!(AnyPending, self, op => op.wait())
    }
}

// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
impl Device for AnyDevice {
    type Memory = AnyMemory;
    type Pending = AnyPending;
    type Registration = Box<dyn Any + Send + Sync>;

    fn info(&self) -> DeviceInfo {
        each!(AnyDevice, self, d => d.info())
    }

    fn capabilities(&self) -> Capabilities {
        each!(AnyDevice, self, d => d.capabilities())
    }

    fn allocate_memory(&self, len: usize) -> Result<AnyMemory> {
        match self {
            #[cfg(feature = "cpu")]
            AnyDevice::Cpu(d) => d.allocate_memory(len).map(AnyMemory::Cpu),
            #[cfg(feature = "wgpu")]
            AnyDevice::Wgpu(d) => d.allocate_memory(len).map(AnyMemory::Wgpu),
            #[cfg(feature = "cuda")]
            AnyDevice::Cuda(d) => d.allocate_memory(len).map(AnyMemory::Cuda),
        }
    }

    fn owns(&self, memory: &AnyMemory) -> bool {
        paired!(self, memory, (d, m, _V) => Ok(d.owns(m))).unwrap_or(false)
    }

    unsafe fn register_host(&self, ptr: NonNull<u8>, len: usize) -> Result<Self::Registration> {
        // SAFETY: forwarded unchanged; our caller upholds the same contract.
        each!(AnyDevice, self, d => unsafe { d.register_host(ptr, len) }
            .map(|r| Box::new(r) as Box<dyn Any + Send + Sync>))
    }

    unsafe fn pin_host(&self, ptr: NonNull<u8>, len: usize) -> Result<(Self::Registration, bool)> {
        // SAFETY: forwarded unchanged; our caller upholds the same contract.
        each!(AnyDevice, self, d => unsafe { d.pin_host(ptr, len) }
            .map(|(r, locked)| (Box::new(r) as Box<dyn Any + Send + Sync>, locked)))
    }

    unsafe fn submit_upload(
        &self,
        src: *const u8,
        len: usize,
        dst: &AnyMemory,
        dst_offset: usize,
    ) -> Result<AnyPending> {
        // SAFETY: forwarded unchanged to the backend that owns `dst`.
        paired!(self, dst, (d, m, Variant) => unsafe { d.submit_upload(src, len, m, dst_offset) }.map(Variant))
    }

    unsafe fn submit_download(
        &self,
        src: &AnyMemory,
        src_offset: usize,
        dst: *mut u8,
        len: usize,
    ) -> Result<AnyPending> {
        // SAFETY: forwarded unchanged to the backend that owns `src`.
        paired!(self, src, (d, m, Variant) => unsafe { d.submit_download(m, src_offset, dst, len) }.map(Variant))
    }

    fn allocate_pinned(&self, len: usize) -> Result<PinnedAlloc> {
        each!(AnyDevice, self, d => d.allocate_pinned(len))
    }

    fn open_direct(&self, file: &SwapFile) -> Result<()> {
        each!(AnyDevice, self, d => d.open_direct(file))
    }

    unsafe fn submit_direct(
        &self,
        op: IoOp,
        memory: &AnyMemory,
        mem_offset: usize,
        file: &SwapFile,
        file_offset: u64,
        len: usize,
    ) -> Result<AnyPending> {
        // SAFETY: forwarded unchanged to the backend that owns `memory`.
        paired!(self, memory, (d, m, Variant) => unsafe {
            d.submit_direct(op, m, mem_offset, file, file_offset, len)
        }.map(Variant))
    }
}
