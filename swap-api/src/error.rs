//! The one error type of the core API.

use std::fmt;

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

/// Everything that can go wrong in tensorswap, with the context needed to act on it.
///
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a
/// fallback arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A device allocation asked for more memory than the device has left.
    #[error(
        "{backend}: out of device memory: requested {requested} bytes, {available} bytes available"
    )]
    OutOfMemory {
        /// Backend that refused the allocation.
        backend: &'static str,
        /// Bytes asked for.
        requested: usize,
        /// Bytes the device could still give at the time of the request.
        available: usize,
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

    /// Page-locking (pinning) host memory failed.
    #[error("could not page-lock {len} bytes: {source}; raise RLIMIT_MEMLOCK (`ulimit -l`) or open the device with pinning off")]
    Pin {
        /// Bytes that were to be locked.
        len: usize,
        /// The OS error.
        #[source]
        source: std::io::Error,
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

    /// A backend operation other than a transfer failed.
    #[error("{backend}: {op} failed: {reason}")]
    Device {
        /// Backend that failed.
        backend: &'static str,
        /// The operation (`"allocate"`, `"register host memory"`, ...).
        op: &'static str,
        /// What the backend reported.
        reason: String,
    },

    /// The backend is compiled in but cannot run here (no driver, no adapter, no GPU).
    #[error("{backend} backend unavailable: {reason}")]
    Unavailable {
        /// Backend name.
        backend: &'static str,
        /// Why it cannot run.
        reason: String,
    },

    /// The backend or feature is not implemented (yet); see the README's feature table.
    #[error("{backend}: not supported: {what}")]
    Unsupported {
        /// Backend name.
        backend: &'static str,
        /// What is not supported, and where it is tracked.
        what: String,
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
/// use swap_api::{check_range, Error};
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
