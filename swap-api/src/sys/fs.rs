//! File-system calls that std does not wrap: `statx` direct-I/O alignment,
//! `openat` inside a directory handle, positional reads and writes on raw
//! pointers, `fallocate`, `posix_fadvise`, `flock`, a descriptor's status
//! flags and the effective user id.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Direct-I/O alignment requirements of a file system, as `statx` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DioAlign {
    /// Required alignment of the memory address, in bytes.
    pub(crate) memory: u32,
    /// Required alignment of file offsets and lengths, in bytes.
    pub(crate) offset: u32,
}

/// Asks `statx(STATX_DIOALIGN)` for the direct-I/O alignment of `path`.
///
/// `Ok(None)` means the kernel or file system does not report it (kernels
/// before 6.1, or file systems that do not fill it in); `Ok(Some)` with zero
/// fields means direct I/O is not supported on this file.
pub(crate) fn statx_dio(path: &Path) -> io::Result<Option<DioAlign>> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: an all-zero statx is a valid value (plain integers).
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and stx is a valid out-pointer for one statx.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::AT_STATX_SYNC_AS_STAT,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if stx.stx_mask & libc::STATX_DIOALIGN == 0 {
        return Ok(None);
    }
    Ok(Some(DioAlign {
        memory: stx.stx_dio_mem_align,
        offset: stx.stx_dio_offset_align,
    }))
}

/// Opens `name` relative to the directory `dir` (`openat`), close-on-exec.
pub(crate) fn open_at(
    dir: &File,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<File> {
    loop {
        // SAFETY: name is NUL-terminated; dir is an open descriptor; openat
        // does not retain the pointer.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                flags | libc::O_CLOEXEC,
                libc::c_uint::from(mode),
            )
        };
        if fd >= 0 {
            // SAFETY: fd was just returned by openat and is owned by nobody else.
            return Ok(unsafe { File::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Removes the file `name` from the directory `dir` (`unlinkat`).
pub(crate) fn unlink_at(dir: &File, name: &CStr) -> io::Result<()> {
    remove_at(dir, name, 0)
}

/// Removes the empty folder `name` from the directory `dir`
/// (`unlinkat(AT_REMOVEDIR)`).
pub(crate) fn rmdir_at(dir: &File, name: &CStr) -> io::Result<()> {
    remove_at(dir, name, libc::AT_REMOVEDIR)
}

fn remove_at(dir: &File, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: name is NUL-terminated and dir is an open directory descriptor.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Takes an exclusive `flock` on `file` without waiting: `Ok(false)` when
/// another open file description holds it. The lock goes when every
/// descriptor of this description closes, including when the process dies.
pub(crate) fn try_lock(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: flock takes an open descriptor and plain flags.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// The status flags of an open descriptor (`fcntl(F_GETFL)`: access mode,
/// `O_APPEND`, `O_DIRECT`, ...); an error for a descriptor that is not open.
pub(crate) fn status_flags(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFL only reads the descriptor's flags; any fd is allowed
    // (a closed one gives EBADF).
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags)
}

/// The process's effective user id.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Reads up to `len` bytes at `offset` into `buf` (`pread`).
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes and not accessed by anyone
/// else for the duration of the call.
pub(crate) unsafe fn pread(fd: RawFd, buf: *mut u8, len: usize, offset: u64) -> io::Result<usize> {
    let offset = to_off(offset)?;
    // SAFETY: the caller guarantees buf is writable for len bytes.
    let n = unsafe { libc::pread(fd, buf.cast(), len, offset) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Writes up to `len` bytes from `buf` at `offset` (`pwrite`).
///
/// # Safety
/// `buf` must be valid for reads of `len` bytes and not written by anyone
/// else for the duration of the call.
pub(crate) unsafe fn pwrite(
    fd: RawFd,
    buf: *const u8,
    len: usize,
    offset: u64,
) -> io::Result<usize> {
    let offset = to_off(offset)?;
    // SAFETY: the caller guarantees buf is readable for len bytes.
    let n = unsafe { libc::pwrite(fd, buf.cast(), len, offset) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

fn to_off(offset: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset too large"))
}

/// Reserves `len` bytes of disk space for `file` without changing its
/// contents (`fallocate`, mode 0). Fails with `Unsupported` where the file
/// system cannot.
pub(crate) fn fallocate(file: &File, len: u64) -> io::Result<()> {
    let len = to_off(len)?;
    if len == 0 {
        return Ok(());
    }
    // SAFETY: fallocate takes plain integers and an open descriptor.
    if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Tells the kernel the given range will not be needed again soon, so the
/// page cache can drop it once written back (`posix_fadvise(DONTNEED)`).
pub(crate) fn drop_cache(fd: RawFd, offset: u64, len: usize) {
    let (Ok(offset), Ok(len)) = (to_off(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: posix_fadvise takes plain integers and an open descriptor; it is advisory.
    let rc = unsafe { libc::posix_fadvise(fd, offset, len, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        tracing::debug!(
            rc,
            "posix_fadvise(DONTNEED) failed; the page cache keeps the data"
        );
    }
}
