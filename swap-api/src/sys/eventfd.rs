//! A Linux `eventfd`: the doorbell that wakes an io_uring worker blocked in
//! the kernel when new work arrives.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

/// An `eventfd` counter, closed on drop.
#[derive(Debug)]
pub(crate) struct EventFd(File);

impl EventFd {
    /// Creates a close-on-exec eventfd with counter 0.
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes plain integers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by eventfd and is owned by nobody else.
        Ok(Self(unsafe { File::from_raw_fd(fd) }))
    }

    /// Adds one to the counter, waking whoever reads it.
    pub(crate) fn signal(&self) -> io::Result<()> {
        let one: u64 = 1;
        loop {
            // SAFETY: writes 8 bytes from a live u64, as eventfd requires.
            let n = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
            if n == 8 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// The raw descriptor, for an io_uring read.
    pub(crate) fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}
