//! The one error type of the core API.

use std::fmt;
use std::path::PathBuf;

/// Result alias used across tensorswap.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which way a transfer moves bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Host memory to device memory.
    Upload,
    /// Device memory to host memory.
    Download,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        })
    }
}

/// Which way a file operation moves bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoOp {
    /// File to host memory.
    Read,
    /// Host memory to file.
    Write,
}

impl IoOp {
    /// The way device memory sees a direct file operation
    /// ([`Device::submit_direct`](crate::Device::submit_direct)): a read
    /// fills the device (an upload), a write drains it (a download).
    pub fn device_direction(self) -> Direction {
        match self {
            IoOp::Read => Direction::Upload,
            IoOp::Write => Direction::Download,
        }
    }
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoOp::Read => "read",
            IoOp::Write => "write",
        })
    }
}

/// What can go wrong below the swappers (devices, host memory, pools, files
/// and I/O engines, configuration), with the context needed to act on it.
/// The swappers' own refusals are `tensorswap_swapper::SwapError`,
/// which wraps this one.
///
/// Every message is whole on its own: an OS error is part of the message
/// and is not returned again by `source()`, so printing the chain
/// (`{:#}` with anyhow) shows each cause once.
///
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a
/// fallback arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A device allocation asked for more memory than the device has left.
    #[error(
        "{backend}: out of device memory: requested {requested} bytes, {}",
        match .available {
            Some(bytes) => format!("{bytes} bytes available"),
            None => "the driver does not say how much is free".to_owned(),
        }
    )]
    OutOfMemory {
        /// Backend that refused the allocation.
        backend: &'static str,
        /// Bytes asked for.
        requested: usize,
        /// Bytes the device could still give at the time of the request,
        /// where the backend can tell (wgpu cannot).
        available: Option<usize>,
    },

    /// One allocation is larger than the device allows for a single buffer,
    /// however much memory is free.
    #[error(
        "{backend}: an allocation of {requested} bytes exceeds the device's {limit} of {max} bytes; \
         split the tensor into pieces of at most {max} bytes"
    )]
    TooLarge {
        /// Backend that refused the allocation.
        backend: &'static str,
        /// Bytes asked for.
        requested: usize,
        /// The largest allocation the device allows.
        max: usize,
        /// The driver limit that sets `max` (e.g. wgpu's `max_buffer_size`).
        limit: &'static str,
    },

    /// Host memory could not be allocated.
    #[error("could not allocate {len} bytes of host memory aligned to {align}")]
    HostAlloc {
        /// Bytes asked for.
        len: usize,
        /// Alignment asked for.
        align: usize,
    },

    /// An offset/length pair does not fit inside a buffer.
    #[error("{what}: range {offset}..{offset}+{len} is outside a buffer of {size} bytes")]
    OutOfRange {
        /// Which buffer the range was checked against.
        what: &'static str,
        /// Start of the requested range in bytes.
        offset: usize,
        /// Length of the requested range in bytes.
        len: usize,
        /// Size of the buffer in bytes.
        size: usize,
    },

    /// A size or element count is not valid for the requested view.
    #[error("invalid layout: {reason}")]
    Layout {
        /// What was wrong.
        reason: String,
    },

    /// Page-locking failed because the process has as many memory mappings
    /// as `vm.max_map_count` allows: each locked range splits off mappings
    /// of its own, however far below `RLIMIT_MEMLOCK` the process is.
    #[error("could not page-lock {len} bytes: the process has {mappings} memory mappings and vm.max_map_count is {limit} (each page-locked allocation is a mapping of its own, so many small pinned allocations reach it before any memlock limit); raise it (`sysctl -w vm.max_map_count={suggested}`), or pin fewer, larger buffers (fewer tensors, or a pinned pool)", suggested = limit.saturating_mul(4))]
    MapCount {
        /// Bytes that were to be locked.
        len: usize,
        /// Mappings the process has (`/proc/self/maps`).
        mappings: u64,
        /// `vm.max_map_count`.
        limit: u64,
    },

    /// Page-locking (pinning) host memory failed.
    #[error("could not page-lock {len} bytes: {cause}; raise RLIMIT_MEMLOCK (`ulimit -l`) or open the device with pinning off")]
    Pin {
        /// Bytes that were to be locked.
        len: usize,
        /// The OS error (in the message; not repeated as `source()`).
        cause: std::io::Error,
    },

    /// Host memory that is registered with a device (or page-locked by a
    /// pool) already was to be registered again: a range is registered once.
    #[error("{len} bytes of host memory are registered already (a pinned pool's slab, a buffer from alloc_host, a buffer pinned before, or a range the driver holds); use the buffer as it is, or unpin it first")]
    AlreadyRegistered {
        /// Bytes of the buffer.
        len: usize,
    },

    /// A transfer was submitted but failed; its buffers are returned intact to the caller.
    #[error("{backend}: {direction} of {len} bytes at device offset {offset} failed: {reason}")]
    Transfer {
        /// Backend that ran the transfer.
        backend: &'static str,
        /// Upload or download.
        direction: Direction,
        /// Offset into device memory.
        offset: usize,
        /// Bytes moved.
        len: usize,
        /// What the backend reported.
        reason: String,
    },

    /// An operation of a backend other than a transfer failed.
    #[error("{component}: {op} failed: {reason}")]
    Device {
        /// The backend (`"cpu"`, `"wgpu"`, `"cuda"`, ...).
        component: &'static str,
        /// The operation (`"allocate"`, `"register host memory"`, ...).
        op: &'static str,
        /// What the backend reported.
        reason: String,
    },

    /// A thread could not be started (the OS refused it: a thread limit,
    /// no memory).
    #[error("{component}: could not start a thread: {cause}")]
    ThreadStart {
        /// Whose thread: an engine (`"uring"`, `"threads"`), `"swapper"`.
        component: &'static str,
        /// The OS's refusal.
        cause: std::io::Error,
    },

    /// An engine whose threads have ended (dropped, or a thread that
    /// panicked) was given a request.
    #[error("{component}: the engine's threads have stopped; create a new engine")]
    Stopped {
        /// The engine (`"uring"`, `"threads"`).
        component: &'static str,
    },

    /// A backend or engine is compiled in but cannot run here (no driver, no
    /// adapter, no GPU, io_uring refused).
    #[error("{component} unavailable: {reason}")]
    Unavailable {
        /// What cannot run: a backend, an engine, or `"device"` when no
        /// backend can.
        component: &'static str,
        /// Why it cannot run.
        reason: String,
    },

    /// A backend or feature is not implemented (yet); see the README's feature table.
    #[error("{component}: not supported: {what}")]
    Unsupported {
        /// Who refuses: a backend, an engine, or `"open"` for a backend not
        /// compiled in.
        component: &'static str,
        /// What is not supported, and where it is tracked.
        what: String,
    },

    /// A worker that kept failing gave up: what it held failed with this
    /// error, and every later request to it fails at once. Create a new
    /// engine (or device) to go on.
    #[error("{component} stopped: {reason}; its requests failed, and later ones fail at once: create a new one")]
    Broken {
        /// What stopped (`"uring"`, ...).
        component: &'static str,
        /// The failure it gave up on.
        reason: String,
    },

    /// Memory allocated by one device was passed to another device's transfer.
    #[error(
        "device memory allocated by another {memory} device was passed to this {device} device"
    )]
    ForeignMemory {
        /// Backend that owns the memory.
        memory: &'static str,
        /// Backend it was used with.
        device: &'static str,
    },

    /// A read or write of a swap file failed.
    #[error("{op} of {len} bytes at offset {offset} in {path} failed: {cause}", path = path.display())]
    Io {
        /// Read or write.
        op: IoOp,
        /// The file.
        path: PathBuf,
        /// File offset of the failed piece.
        offset: u64,
        /// Length of the failed piece.
        len: usize,
        /// The OS error (`errno`; in the message, not repeated as `source()`).
        cause: std::io::Error,
    },

    /// An operation on a swap file or folder other than a read or write failed.
    #[error("{op} {path} failed: {cause}", path = path.display())]
    File {
        /// What was attempted (`"create"`, `"open"`, `"truncate"`, ...).
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The OS error (in the message, not repeated as `source()`).
        cause: std::io::Error,
    },

    /// A read reached the end of the file (or a write made no progress)
    /// before the whole request was moved. The buffer's contents are unspecified.
    #[error("short {op} in {path}: only {done} of {len} bytes at offset {offset} (the file ends there)", path = path.display())]
    ShortIo {
        /// Read or write.
        op: IoOp,
        /// The file.
        path: PathBuf,
        /// Start of the request in the file.
        offset: u64,
        /// Bytes requested.
        len: usize,
        /// Bytes moved before the end.
        done: usize,
    },

    /// Bytes read back differ from the bytes written (CRC32C mismatch).
    #[error("checksum mismatch in {path}: the {len}-byte block at offset {offset} was written with crc32c {expected:#010x} but read back as {actual:#010x}", path = path.display())]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Start of the 4 KiB block that differs.
        offset: u64,
        /// Length of the block.
        len: usize,
        /// CRC32C recorded when the bytes were written.
        expected: u32,
        /// CRC32C of the bytes read.
        actual: u32,
    },

    /// Every slab of a pinned pool is leased ([`crate::PinnedPool::try_lease`]).
    #[error("pinned pool exhausted: all {slabs} slabs of {slab_size} bytes are leased; wait with `lease()`, or build the pool with more slabs")]
    PoolExhausted {
        /// Slabs in the pool.
        slabs: usize,
        /// Bytes per slab.
        slab_size: usize,
    },

    /// Every leased slab of a pinned pool is held between its users' calls
    /// ([`crate::Parked`]), so a lease would wait forever
    /// ([`crate::PinnedPool::wait_lease`]).
    #[error("pinned pool stalled: all {slabs} slabs are leased and {parked} of them are held between calls (a GradientSwapper's open slab and unwaited writes, an OptimizerSwapper's read-ahead), so waiting would never end; give the shared store one more slab than those users hold, or flush or clear them first")]
    PoolStalled {
        /// Slabs in the pool.
        slabs: usize,
        /// Slabs held between calls.
        parked: usize,
    },

    /// Pinned memory asked for exceeds what the process may lock.
    #[error("pinned pool of {requested} bytes exceeds RLIMIT_MEMLOCK ({limit} bytes): raise the limit (`ulimit -l`, or `LimitMEMLOCK=` for a systemd service, or run with CAP_IPC_LOCK), or shrink the pool (fewer or smaller slabs)")]
    MemlockBudget {
        /// Bytes the pool needs locked.
        requested: u64,
        /// Bytes the process may lock.
        limit: u64,
    },

    /// A configuration value or key is not valid.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong, naming the key and what is accepted.
        reason: String,
    },
}

impl Error {
    /// True for the errors that mean "this backend cannot run here" rather than
    /// "this backend misbehaved": [`Error::Unavailable`] and [`Error::Unsupported`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Unsupported { .. })
    }
}

/// Checks that `offset..offset + len` lies inside a buffer of `size` bytes.
///
/// ```
/// use tensorswap_core::{check_range, Error};
/// assert!(check_range("device buffer", 8, 8, 16).is_ok());
/// assert!(matches!(check_range("device buffer", 9, 8, 16), Err(Error::OutOfRange { .. })));
/// assert!(check_range("device buffer", usize::MAX, 2, 16).is_err());
/// ```
pub fn check_range(what: &'static str, offset: usize, len: usize, size: usize) -> Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::OutOfRange {
            what,
            offset,
            len,
            size,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The failures of threads and stopped engines name whose they are and
    /// what to do, and keep the OS's refusal in the message, once.
    #[test]
    fn thread_and_stopped_engine_errors_say_whose_and_what_to_do() {
        let start = Error::ThreadStart {
            component: "uring",
            cause: std::io::Error::from_raw_os_error(libc::EAGAIN),
        };
        let text = start.to_string();
        assert!(
            text.starts_with("uring: could not start a thread: "),
            "{text}"
        );
        assert!(text.contains("Resource temporarily unavailable"), "{text}");
        assert!(
            std::error::Error::source(&start).is_none(),
            "the cause is in the message"
        );
        let stopped = Error::Stopped {
            component: "threads",
        }
        .to_string();
        assert_eq!(
            stopped,
            "threads: the engine's threads have stopped; create a new engine"
        );
    }
}
