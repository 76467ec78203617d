//! The I/O engine trait: asynchronous reads and writes of raw host memory
//! at file offsets, one pending operation per request.

use std::ptr::NonNull;
use std::time::Instant;

use super::file::SwapFile;
use crate::sync::LatchPending;
use crate::{AioConfig, IoOp, PendingOp, Result};

/// One read or write as an engine sees it: raw memory, a file, an offset.
///
/// The safe layer ([`IoEngineExt`](crate::IoEngineExt)) builds these from
/// owned buffers; engines and decorators receive them in
/// [`IoEngine::submit`].
#[derive(Debug)]
pub struct IoRequest {
    /// Read or write.
    pub op: IoOp,
    /// The file.
    pub file: SwapFile,
    /// File offset of the first byte.
    pub offset: u64,
    /// Host memory: read from for writes, written to for reads.
    pub buf: NonNull<u8>,
    /// Bytes to move.
    pub len: usize,
    /// Set the file's length to `offset + len` once the write succeeds
    /// (drops a stale tail left by an earlier, longer write).
    pub truncate: bool,
}

// SAFETY: the request only carries the address; the submitter's contract
// (IoEngine::submit) makes the memory valid and unshared for the request's
// life, whichever thread touches it.
unsafe impl Send for IoRequest {}

/// A submitted request that can also tell when it finished.
pub trait IoPending: PendingOp {
    /// When the last byte of the request was moved (or it failed), once complete.
    fn finished_at(&self) -> Option<Instant>;
}

impl IoPending for LatchPending {
    fn finished_at(&self) -> Option<Instant> {
        self.latch().finished_at()
    }
}

/// An asynchronous file I/O engine.
///
/// # Contract
/// - Every request gets its own [`IoPending`]; there is no engine-wide wait.
/// - A request is split into [`AioConfig::block_size`] pieces; up to
///   [`AioConfig::queue_depth`] pieces per worker are in flight, over
///   [`AioConfig::intra_op_parallelism`] workers.
/// - Every completion is checked: short transfers are resubmitted for the
///   remainder, `EINTR`/`EAGAIN` retried, an end of file before the whole
///   read is [`Error::ShortIo`](crate::Error::ShortIo), and an OS failure is
///   [`Error::Io`](crate::Error::Io) naming the file, offset and errno.
/// - Pieces whose address, offset or length are not aligned for direct I/O go
///   through the file's buffered descriptor, so unaligned tails are moved
///   correctly, never dropped.
/// - Dropping the engine finishes the requests already submitted.
pub trait IoEngine: Send + Sync {
    /// What [`IoEngine::submit`] returns.
    type Pending: IoPending;

    /// Engine name: `"uring"`, `"threads"`, ...
    fn name(&self) -> &'static str;

    /// The settings the engine runs with.
    fn config(&self) -> &AioConfig;

    /// Starts a request.
    ///
    /// # Safety
    /// `req.buf` must be valid for `req.len` bytes — readable for writes,
    /// writable for reads — and must not be accessed (read for reads, written
    /// for writes) or freed by anyone else until the returned operation has
    /// completed (its `wait` returned or `is_complete` returned true).
    unsafe fn submit(&self, req: IoRequest) -> Result<Self::Pending>;

    /// Offers a long-lived memory region (a pinned pool's arena) for
    /// registration with the kernel, so requests inside it skip per-request
    /// page pinning. Returns whether the engine registered it. The default
    /// registers nothing.
    ///
    /// The region is kept alive by `keep_alive` for as long as the engine
    /// uses the registration.
    fn register_region(&self, region: Region) -> bool {
        let _ = region;
        false
    }
}

/// A memory region offered to [`IoEngine::register_region`].
pub struct Region {
    /// Start of the region.
    pub ptr: NonNull<u8>,
    /// Length in bytes.
    pub len: usize,
    /// Keeps the memory allocated while the engine holds the registration.
    pub keep_alive: std::sync::Arc<dyn std::any::Any + Send + Sync>,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

// SAFETY: the region is an address range kept alive by `keep_alive`, which is
// Send + Sync; the engine only passes the address to the kernel.
unsafe impl Send for Region {}

// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
impl<E: IoEngine> IoEngine for std::sync::Arc<E> {
    type Pending = E::Pending;

    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn config(&self) -> &AioConfig {
        (**self).config()
    }

    unsafe fn submit(&self, req: IoRequest) -> Result<Self::Pending> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (**self).submit(req) }
    }

    fn register_region(&self, region: Region) -> bool {
        (**self).register_region(region)
    }
}
