//! The backend trait: device memory, host registration, asynchronous copies.

use std::fmt;
use std::ptr::NonNull;

use crate::{Error, IoOp, PendingOp, Result, SwapFile};

/// What a backend can do; the conformance suite tests only what is claimed here.
///
/// A backend builds it from [`Capabilities::new`] (the most modest claims)
/// and the `with_*` setters, so that a field added later starts unclaimed:
///
/// ```
/// use tensorswap_core::Capabilities;
/// let caps = Capabilities::new(1 << 30)
///     .with_async_transfers(true)
///     .with_ordered_transfers(true);
/// assert!(caps.async_transfers && !caps.pinned_host && !caps.direct_storage);
/// assert_eq!(caps.max_allocation, 1 << 30);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Host memory from [`Device::register_host`] is really page-locked
    /// (false: the backend works with pageable memory, e.g. under a low
    /// `RLIMIT_MEMLOCK`, or has no notion of pinning).
    pub pinned_host: bool,
    /// Transfers run asynchronously to the submitting thread.
    pub async_transfers: bool,
    /// Transfers complete in submission order (one queue), so a download
    /// submitted after an upload to the same range observes the uploaded bytes
    /// without waiting for the upload first.
    pub ordered_transfers: bool,
    /// Files can be read into / written from device memory directly, with no
    /// copy through host memory (GPUDirect Storage): [`Device::open_direct`]
    /// may succeed. Whether it does for a given file is only known by trying.
    pub direct_storage: bool,
    /// Largest single allocation in bytes.
    pub max_allocation: usize,
    /// Alignment the backend wants for host buffers it transfers from/to
    /// (at least the page size).
    pub host_alignment: usize,
}

impl Capabilities {
    /// A device that claims nothing: allocations up to `max_allocation`
    /// bytes, host buffers aligned to the page size, synchronous and
    /// unordered transfers, no pinning and no direct storage.
    pub fn new(max_allocation: usize) -> Self {
        Self {
            pinned_host: false,
            async_transfers: false,
            ordered_transfers: false,
            direct_storage: false,
            max_allocation,
            host_alignment: crate::sys::page_size(),
        }
    }

    /// Sets [`pinned_host`](Self::pinned_host).
    pub fn with_pinned_host(mut self, pinned: bool) -> Self {
        self.pinned_host = pinned;
        self
    }

    /// Sets [`async_transfers`](Self::async_transfers).
    pub fn with_async_transfers(mut self, async_transfers: bool) -> Self {
        self.async_transfers = async_transfers;
        self
    }

    /// Sets [`ordered_transfers`](Self::ordered_transfers).
    pub fn with_ordered_transfers(mut self, ordered: bool) -> Self {
        self.ordered_transfers = ordered;
        self
    }

    /// Sets [`direct_storage`](Self::direct_storage).
    pub fn with_direct_storage(mut self, direct: bool) -> Self {
        self.direct_storage = direct;
        self
    }

    /// Sets [`host_alignment`](Self::host_alignment) (at least the page
    /// size: smaller values are raised to it).
    pub fn with_host_alignment(mut self, alignment: usize) -> Self {
        self.host_alignment = alignment.max(crate::sys::page_size());
        self
    }
}

/// What a device is, for humans and for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// Backend name: `"cpu"`, `"wgpu"`, `"cuda"`, ...
    pub backend: &'static str,
    /// Device name as the driver reports it.
    pub name: String,
    /// Total device memory this handle may allocate, in bytes, when known.
    pub memory_capacity: Option<usize>,
}

impl DeviceInfo {
    /// Builds an info record.
    pub fn new(
        backend: &'static str,
        name: impl Into<String>,
        memory_capacity: Option<usize>,
    ) -> Self {
        Self {
            backend,
            name: name.into(),
            memory_capacity,
        }
    }
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.backend)?;
        if let Some(cap) = self.memory_capacity {
            write!(f, ", {cap} bytes")?;
        }
        Ok(())
    }
}

/// Page-locked host memory a backend allocated itself
/// ([`Device::allocate_pinned`]); freed when dropped.
pub struct PinnedAlloc {
    ptr: NonNull<u8>,
    len: usize,
    // Frees the memory when dropped.
    _owner: Box<dyn std::any::Any + Send + Sync>,
}

impl PinnedAlloc {
    /// Wraps `len` bytes at `ptr`, freed when `owner` drops.
    ///
    /// # Safety
    /// `ptr` must be valid for reads and writes of `len` initialised bytes,
    /// used by nobody else, until `owner` is dropped; dropping `owner`
    /// frees it.
    pub unsafe fn new(
        ptr: NonNull<u8>,
        len: usize,
        owner: Box<dyn std::any::Any + Send + Sync>,
    ) -> Self {
        Self {
            ptr,
            len,
            _owner: owner,
        }
    }

    /// Start of the memory.
    pub fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the allocation holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for PinnedAlloc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedAlloc")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

// SAFETY: the allocation is owned uniquely, like a Box<[u8]>; the owner is
// Send + Sync and only frees the memory.
unsafe impl Send for PinnedAlloc {}
// SAFETY: as above; &PinnedAlloc hands out only the address.
unsafe impl Sync for PinnedAlloc {}

/// A device that holds memory and copies bytes to and from host memory.
///
/// This is the low-level trait a backend implements. Users call the safe,
/// validating layer on top of it ([`crate::DeviceExt`], [`crate::Transfer`]),
/// which checks ranges and moves ownership of both buffers into each transfer
/// so that no safe code can race it, free memory under it, or leak its way
/// into a use-after-free.
///
/// # Contract
/// - A `Device` is shared across threads (`Send + Sync`); every method may be
///   called concurrently.
/// - [`Device::Memory`] frees its device memory when dropped, and may outlive
///   the `Device` handle that allocated it.
/// - Allocation beyond what the device has left is
///   [`crate::Error::OutOfMemory`], one above [`Capabilities::max_allocation`]
///   may instead be [`crate::Error::TooLarge`]; either leaves the device usable.
/// - Each transfer returns its own [`PendingOp`]; there is no device-wide wait.
/// - A failed transfer reports a typed error from `wait` and leaves its
///   *source* bytes unchanged.
/// - Dropping the `Device` while transfers are in flight is safe: the backend
///   finishes or fails them; their pending ops still complete.
pub trait Device: Send + Sync + 'static {
    /// An owned device allocation; frees itself on drop.
    type Memory: Send + Sync + 'static;
    /// An in-flight transfer.
    type Pending: PendingOp;
    /// Keeps host memory registered with the device; unregisters on drop.
    type Registration: Send + Sync + 'static;

    /// Describes the device.
    fn info(&self) -> DeviceInfo;

    /// What the backend can do.
    fn capabilities(&self) -> Capabilities;

    /// Allocates `len` bytes of device memory (contents unspecified).
    fn allocate_memory(&self, len: usize) -> Result<Self::Memory>;

    /// True when `memory` was allocated by this device (or a clone of its handle),
    /// so that it may be passed to this device's transfers.
    fn owns(&self, memory: &Self::Memory) -> bool;

    /// Registers (pins) host memory so that transfers from/to it run at full
    /// speed; a backend with nothing to do returns a no-op registration.
    ///
    /// # Safety
    /// `ptr..ptr + len` must be host memory of this process that stays
    /// allocated until the returned registration is dropped.
    unsafe fn register_host(&self, ptr: NonNull<u8>, len: usize) -> Result<Self::Registration>;

    /// Registers host memory a caller owns and asked to pin
    /// ([`crate::DeviceExt::pin_memory`]): the registration, and whether the
    /// memory is now page-locked.
    ///
    /// The default registers it as [`Device::register_host`] does and
    /// reports [`Capabilities::pinned_host`]. A backend whose own memory runs
    /// unlocked under a memlock limit still tries to lock here, since the
    /// caller asked for this buffer, and fails with the reason
    /// ([`crate::Error::Pin`]) when it cannot.
    ///
    /// # Safety
    /// As for [`Device::register_host`].
    unsafe fn pin_host(&self, ptr: NonNull<u8>, len: usize) -> Result<(Self::Registration, bool)> {
        // SAFETY: forwarded from the caller.
        let registration = unsafe { self.register_host(ptr, len)? };
        Ok((registration, self.capabilities().pinned_host))
    }

    /// Starts copying `len` bytes from host memory at `src` into `dst` at
    /// byte offset `dst_offset`.
    ///
    /// # Safety
    /// - `dst` was allocated by this device ([`Device::owns`]) with at least
    ///   `dst_offset + len` bytes.
    /// - `src..src + len` is readable and is not written by anyone, and `dst`
    ///   is neither dropped nor accessed by anyone else (another transfer, or
    ///   a backend accessor such as a CPU view of the memory), until the
    ///   returned operation has been waited.
    unsafe fn submit_upload(
        &self,
        src: *const u8,
        len: usize,
        dst: &Self::Memory,
        dst_offset: usize,
    ) -> Result<Self::Pending>;

    /// Starts copying `len` bytes from `src` at byte offset `src_offset` into
    /// host memory at `dst`.
    ///
    /// # Safety
    /// - `src` was allocated by this device ([`Device::owns`]) with at least
    ///   `src_offset + len` bytes.
    /// - `dst..dst + len` is writable and not accessed by anyone else, and
    ///   `src` is neither dropped nor written by another transfer, until the
    ///   returned operation has been waited.
    unsafe fn submit_download(
        &self,
        src: &Self::Memory,
        src_offset: usize,
        dst: *mut u8,
        len: usize,
    ) -> Result<Self::Pending>;

    /// Allocates `len` bytes of page-locked host memory with the backend's
    /// own allocator (CUDA: `cuMemHostAlloc`, not write-combined), at least
    /// page-aligned and zero-filled (pools hand slabs out as initialised
    /// bytes). Pools fall back to it when
    /// [`Device::register_host`] refuses their memory. The default is
    /// [`Error::Unsupported`].
    fn allocate_pinned(&self, len: usize) -> Result<PinnedAlloc> {
        let _ = len;
        Err(Error::Unsupported {
            component: self.info().backend,
            what: "allocating page-locked host memory itself".into(),
        })
    }

    /// Prepares `file` for direct storage ([`Device::submit_direct`]): opens
    /// the driver and registers the file, once; later calls are cheap.
    ///
    /// Backends without direct storage return [`Error::Unsupported`] (the
    /// default). A backend that has it but cannot use it here (no driver
    /// library, a file system it cannot reach) returns
    /// [`Error::Unavailable`] with the reason; callers then move the bytes
    /// through pinned host memory instead.
    fn open_direct(&self, file: &SwapFile) -> Result<()> {
        let _ = file;
        Err(no_direct_storage(self.info().backend))
    }

    /// Starts moving `len` bytes between `memory` at byte offset
    /// `mem_offset` and `file` at `file_offset`, with no copy through host
    /// memory: [`IoOp::Read`] fills the memory from the file, [`IoOp::Write`]
    /// writes the memory to the file. The file must have been opened with
    /// [`Device::open_direct`].
    ///
    /// The operation's `wait` reports [`Error::Io`] (file, offset, cause)
    /// when the file system fails and [`Error::ShortIo`] when a read reaches
    /// the end of the file. The default is [`Error::Unsupported`].
    ///
    /// # Safety
    /// - `memory` was allocated by this device ([`Device::owns`]) with at
    ///   least `mem_offset + len` bytes.
    /// - `memory` is neither dropped nor accessed by anyone else (read, for
    ///   reads; written, for writes) until the returned operation has been
    ///   waited.
    unsafe fn submit_direct(
        &self,
        op: IoOp,
        memory: &Self::Memory,
        mem_offset: usize,
        file: &SwapFile,
        file_offset: u64,
        len: usize,
    ) -> Result<Self::Pending> {
        let _ = (op, memory, mem_offset, file, file_offset, len);
        Err(no_direct_storage(self.info().backend))
    }
}

/// The error of a backend without direct storage.
fn no_direct_storage(backend: &'static str) -> Error {
    Error::Unsupported {
        component: backend,
        what: "direct storage between files and device memory (GPUDirect Storage); \
               swap through pinned host memory"
            .into(),
    }
}
