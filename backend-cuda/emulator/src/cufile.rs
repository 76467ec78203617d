//! cuFile (GPUDirect Storage) as its compat mode runs it, with no
//! `nvidia-fs` driver: file handles registered by descriptor, and reads
//! and writes between those files and device memory done with `pread` /
//! `pwrite` through host bounce buffers.
//!
//! What is checked, not assumed:
//! - every call but `cuFileDriverOpen` needs the driver open;
//! - a handle registers an open regular file's descriptor, once; a
//!   deregistration must come while the descriptor is still open (cuFile
//!   holds it), and an operation that runs after its handle was
//!   deregistered is refused;
//! - the device range of an operation lies inside one live allocation.
//!
//! Outcomes are the real ones: the bytes moved (fewer than asked for at the
//! end of the file: a short read is not an error), `-errno` where the
//! system call failed before moving anything, `-CUfileOpError` where cuFile
//! itself refuses.
//!
//! Descriptors opened with `O_DIRECT` take aligned requests (offset and
//! length multiples of 4 KiB) directly; cuFile serves unaligned ones
//! through its own buffered path, which the emulator does with a second,
//! buffered descriptor of the same file (`/proc/self/fd/N`).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::driver::CONTEXT;
use crate::heap::Heap;
use crate::result::{count_refusal, Status};

/// A cuFile status (`CUfileOpError`); 0 is success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct FileStatus(pub u32);

impl FileStatus {
    /// `CU_FILE_SUCCESS`.
    pub const SUCCESS: FileStatus = FileStatus(0);
    /// `CU_FILE_DRIVER_NOT_INITIALIZED`: a call before `cuFileDriverOpen`.
    pub const DRIVER_NOT_INITIALIZED: FileStatus = FileStatus(5001);
    /// `CU_FILE_IO_NOT_SUPPORTED`: an entry point the emulator lacks.
    pub const IO_NOT_SUPPORTED: FileStatus = FileStatus(5008);
    /// `CU_FILE_CUDA_DRIVER_ERROR`: the CUDA driver failed (its status in
    /// [`FileError::cu_err`]).
    pub const CUDA_DRIVER_ERROR: FileStatus = FileStatus(5011);
    /// `CU_FILE_CUDA_POINTER_INVALID`: not device memory.
    pub const CUDA_POINTER_INVALID: FileStatus = FileStatus(5012);
    /// `CU_FILE_CUDA_POINTER_RANGE_ERROR`: past the end of the allocation.
    pub const CUDA_POINTER_RANGE_ERROR: FileStatus = FileStatus(5014);
    /// `CU_FILE_INVALID_FILE_TYPE`: not a regular file.
    pub const INVALID_FILE_TYPE: FileStatus = FileStatus(5018);
    /// `CU_FILE_INVALID_VALUE`.
    pub const INVALID_VALUE: FileStatus = FileStatus(5022);
    /// `CU_FILE_HANDLE_NOT_REGISTERED`.
    pub const HANDLE_NOT_REGISTERED: FileStatus = FileStatus(5027);
    /// `CU_FILE_HANDLE_ALREADY_REGISTERED`.
    pub const HANDLE_ALREADY_REGISTERED: FileStatus = FileStatus(5028);
    /// `CU_FILE_INTERNAL_ERROR`.
    pub const INTERNAL_ERROR: FileStatus = FileStatus(5030);

    /// `code` if cuFile (12.2 to 12.9) defines it, else `INTERNAL_ERROR`:
    /// callers read the status as an enum, where an unknown value is
    /// undefined behaviour.
    pub fn known(code: u32) -> FileStatus {
        match code {
            0 | 5001..=5020 | 5022..=5031 | 5033..=5039 => FileStatus(code),
            _ => {
                eprintln!("cuda-emulator: {code} is not a CUfileOpError; INTERNAL_ERROR instead");
                FileStatus::INTERNAL_ERROR
            }
        }
    }
}

/// What cuFile calls return (`CUfileError_t`): cuFile's status, and the
/// CUDA driver's where that is what failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct FileError {
    /// cuFile's status.
    pub err: FileStatus,
    /// The driver's status, with [`FileStatus::CUDA_DRIVER_ERROR`].
    pub cu_err: Status,
}

impl FileError {
    /// Success.
    pub const SUCCESS: FileError = FileError::file(FileStatus::SUCCESS);

    /// A cuFile failure.
    pub const fn file(err: FileStatus) -> Self {
        Self {
            err,
            cu_err: Status::SUCCESS,
        }
    }

    /// A CUDA driver failure under a cuFile call.
    pub fn driver(cu_err: Status) -> Self {
        Self {
            err: FileStatus::CUDA_DRIVER_ERROR,
            cu_err,
        }
    }

    /// The error of an outcome.
    pub fn of(outcome: Result<(), FileError>) -> FileError {
        outcome.err().unwrap_or(FileError::SUCCESS)
    }
}

/// Refuses a cuFile call: counted and said, as the driver's refusals are.
pub(crate) fn refuse(status: FileStatus, what: std::fmt::Arguments<'_>) -> FileError {
    count_refusal(status.0, what);
    FileError::file(status)
}

/// A read (file to device) or a write (device to file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `cuFileReadAsync`.
    Read,
    /// `cuFileWriteAsync`.
    Write,
}

/// One asynchronous operation, as its stream reaches it: `size` bytes
/// between the file of `handle` at `file_offset` and device memory at
/// `base + buf_offset`.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// Which way.
    pub op: Op,
    /// The registered file.
    pub handle: usize,
    /// The device buffer's base.
    pub base: u64,
    /// Bytes to move.
    pub size: usize,
    /// Where in the file.
    pub file_offset: i64,
    /// Where in the buffer, from `base`.
    pub buf_offset: i64,
}

/// Alignment `O_DIRECT` needs of offsets, lengths and host buffers.
const ALIGN: usize = 4096;
/// Bytes moved per system call at most (bounds the bounce buffer).
const CHUNK: usize = 4 << 20;

/// A registered file.
struct Registered {
    fd: RawFd,
    /// Device and inode of the file at registration: a descriptor number
    /// closed and reused for another file is told apart.
    file: (u64, u64),
    /// A buffered descriptor of the same file, for unaligned requests on
    /// an `O_DIRECT` one.
    buffered: Option<OwnedFd>,
}

impl Registered {
    /// The descriptor a request at `offset` of `len` bytes goes through.
    fn fd_for(&self, offset: u64, len: usize) -> RawFd {
        match &self.buffered {
            Some(fd) if offset % ALIGN as u64 != 0 || len % ALIGN != 0 => fd.as_raw_fd(),
            _ => self.fd,
        }
    }
}

/// The process's cuFile: its driver state and registered handles.
pub struct Files {
    opens: AtomicU64,
    next: AtomicUsize,
    handles: Mutex<HashMap<usize, Arc<Registered>>>,
}

impl Files {
    /// The process's cuFile, made on first use.
    pub fn get() -> &'static Files {
        static FILES: OnceLock<Files> = OnceLock::new();
        FILES.get_or_init(Files::new)
    }

    /// A cuFile of its own, closed (the unit tests' each).
    fn new() -> Files {
        Files {
            opens: AtomicU64::new(0),
            next: AtomicUsize::new(1),
            handles: Mutex::new(HashMap::new()),
        }
    }

    fn handles(&self) -> MutexGuard<'_, HashMap<usize, Arc<Registered>>> {
        self.handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `cuFileDriverOpen` (counted: each open wants a close).
    pub fn open(&self) {
        if self.opens.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!("cuda-emulator: cuFile is EMULATED (compat mode: pread/pwrite through host buffers)");
        }
    }

    /// `cuFileDriverClose`.
    pub fn close(&self) -> Result<(), FileError> {
        self.ready()?;
        self.opens.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }

    /// Refuses calls while the driver is not open.
    pub fn ready(&self) -> Result<(), FileError> {
        if self.opens.load(Ordering::SeqCst) == 0 {
            return Err(refuse(
                FileStatus::DRIVER_NOT_INITIALIZED,
                format_args!("a cuFile call before cuFileDriverOpen"),
            ));
        }
        Ok(())
    }

    /// `cuFileHandleRegister` of descriptor `fd`: the new handle.
    pub fn register(&self, fd: RawFd) -> Result<usize, FileError> {
        self.ready()?;
        let flags = status_flags(fd).map_err(|e| {
            refuse(
                FileStatus::INVALID_VALUE,
                format_args!("registering descriptor {fd}: {e}"),
            )
        })?;
        let Some(file) = regular_file(fd) else {
            return Err(refuse(
                FileStatus::INVALID_FILE_TYPE,
                format_args!("registering descriptor {fd}, which is not a regular file"),
            ));
        };
        let mut handles = self.handles();
        if handles.values().any(|r| r.fd == fd) {
            return Err(refuse(
                FileStatus::HANDLE_ALREADY_REGISTERED,
                format_args!("descriptor {fd} is already registered"),
            ));
        }
        let buffered = if flags & libc::O_DIRECT != 0 {
            Some(reopen_buffered(fd, flags).map_err(|e| {
                eprintln!("cuda-emulator: a buffered twin of descriptor {fd}: {e}");
                FileError::file(FileStatus::INTERNAL_ERROR)
            })?)
        } else {
            None
        };
        let handle = 0x6000_0000 + 16 * self.next.fetch_add(1, Ordering::Relaxed);
        handles.insert(handle, Arc::new(Registered { fd, file, buffered }));
        Ok(handle)
    }

    /// `cuFileHandleDeregister`: refused (said, counted) for a handle that
    /// is not registered, or whose descriptor was closed first.
    pub fn deregister(&self, handle: usize) -> Result<(), FileError> {
        self.ready()?;
        let Some(registered) = self.handles().remove(&handle) else {
            return Err(refuse(
                FileStatus::HANDLE_NOT_REGISTERED,
                format_args!("deregistering handle {handle:#x}, which is not registered"),
            ));
        };
        if regular_file(registered.fd) != Some(registered.file) {
            return Err(refuse(
                FileStatus::INVALID_VALUE,
                format_args!(
                    "handle {handle:#x} deregistered after its descriptor {} was closed",
                    registered.fd
                ),
            ));
        }
        Ok(())
    }

    /// Whether `handle` is registered (refused, said, if not).
    pub fn check(&self, handle: usize) -> Result<(), FileError> {
        self.registered(handle).map(drop)
    }

    fn registered(&self, handle: usize) -> Result<Arc<Registered>, FileError> {
        self.handles().get(&handle).cloned().ok_or_else(|| {
            refuse(
                FileStatus::HANDLE_NOT_REGISTERED,
                format_args!("handle {handle:#x} is not registered"),
            )
        })
    }

    /// Runs an operation as its stream reaches it; gives what cuFile
    /// writes to `bytes_read_p` / `bytes_written_p`.
    pub fn run(&self, heap: &Heap, request: Request) -> isize {
        let Request {
            op,
            handle,
            base,
            size,
            file_offset,
            buf_offset,
        } = request;
        let invalid = |what: std::fmt::Arguments<'_>| {
            -(refuse(FileStatus::INVALID_VALUE, what).err.0 as isize)
        };
        let (Ok(offset), Ok(buf_offset)) = (u64::try_from(file_offset), u64::try_from(buf_offset))
        else {
            return invalid(format_args!(
                "cuFile {op:?} at file offset {file_offset}, buffer offset {buf_offset}"
            ));
        };
        if isize::try_from(size).is_err() {
            return invalid(format_args!("cuFile {op:?} of {size} bytes"));
        }
        let registered = match self.registered(handle) {
            Ok(r) => r,
            Err(e) => return -(e.err.0 as isize),
        };
        let Some(addr) = base.checked_add(buf_offset) else {
            return invalid(format_args!(
                "buffer offset {buf_offset} past the address space"
            ));
        };
        if heap.with_bytes(CONTEXT, addr, size, |_| ()).is_err() {
            return -(FileStatus::CUDA_POINTER_RANGE_ERROR.0 as isize);
        }
        let moved = transfer(op, &registered, heap, addr, size, offset);
        match moved {
            Ok(n) => n as isize,
            Err(Failure::Os(e)) => -(e.raw_os_error().unwrap_or(libc::EIO) as isize),
            Err(Failure::Device) => -(FileStatus::CUDA_POINTER_RANGE_ERROR.0 as isize),
        }
    }
}

/// Why an operation moved nothing.
enum Failure {
    /// The system call failed.
    Os(io::Error),
    /// The device memory went away while the operation ran.
    Device,
}

/// An aligned bounce buffer of up to [`CHUNK`] bytes.
fn bounce(size: usize) -> (Vec<u8>, usize) {
    let store = vec![0u8; size.min(CHUNK) + ALIGN];
    let at = store.as_ptr().align_offset(ALIGN);
    (store, at)
}

/// File to device (a read) or device to file (a write), a chunk at a time
/// through the bounce buffer; stops early at the end of the file, or where
/// the file takes no more.
fn transfer(
    op: Op,
    r: &Registered,
    heap: &Heap,
    addr: u64,
    size: usize,
    offset: u64,
) -> Result<usize, Failure> {
    let (mut store, at) = bounce(size);
    let mut moved = 0;
    while moved < size {
        let n = (size - moved).min(CHUNK);
        let buf = &mut store[at..at + n];
        let (device, at_file) = (addr + moved as u64, offset + moved as u64);
        let fd = r.fd_for(at_file, n);
        if op == Op::Write {
            heap.with_bytes(CONTEXT, device, n, |dev| buf.copy_from_slice(dev))
                .map_err(|_| Failure::Device)?;
        }
        let done = match op {
            Op::Read => pread_all(fd, buf, at_file),
            Op::Write => pwrite_all(fd, buf, at_file),
        };
        let done = match done {
            Ok(done) => done,
            Err(e) if moved == 0 => return Err(Failure::Os(e)),
            Err(_) => break,
        };
        if op == Op::Read && done > 0 {
            heap.with_bytes(CONTEXT, device, done, |dev| {
                dev.copy_from_slice(&buf[..done]);
            })
            .map_err(|_| Failure::Device)?;
        }
        moved += done;
        if done < n {
            break;
        }
    }
    Ok(moved)
}

/// `pread` until `buf` is full, the file ends, or an error.
fn pread_all(fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let len = buf.len();
    all_of(len, |done| {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is valid for writes of its length.
        unsafe { libc::pread(fd, rest.as_mut_ptr().cast(), rest.len(), at(offset, done)) }
    })
}

/// `pwrite` until all of `buf` is written, the file takes no more (a
/// short write), or an error.
fn pwrite_all(fd: RawFd, buf: &[u8], offset: u64) -> io::Result<usize> {
    all_of(buf.len(), |done| {
        let rest = &buf[done..];
        // SAFETY: `rest` is valid for reads of its length.
        unsafe { libc::pwrite(fd, rest.as_ptr().cast(), rest.len(), at(offset, done)) }
    })
}

fn at(offset: u64, done: usize) -> libc::off_t {
    (offset + done as u64) as libc::off_t
}

/// Repeats `call(done)`, a system call moving the rest of `len` bytes from
/// `done` on, until all moved or one moves none; after an error, what moved
/// counts (as `read(2)` has it), and with nothing moved it is the error.
fn all_of(len: usize, mut call: impl FnMut(usize) -> isize) -> io::Result<usize> {
    let mut done = 0;
    while done < len {
        match call(done) {
            0 => break,
            n if n > 0 => done += n as usize,
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return if done > 0 { Ok(done) } else { Err(e) };
            }
        }
    }
    Ok(done)
}

/// The descriptor's status flags (`F_GETFL`): an error if it is not open.
fn status_flags(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFL reads the flags of any descriptor number, open or not.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(flags)
    }
}

/// The device and inode of a regular file's descriptor; `None` when the
/// descriptor is closed or not a regular file.
fn regular_file(fd: RawFd) -> Option<(u64, u64)> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `stat` is valid for the write fstat makes on success.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat succeeded, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    (stat.st_mode & libc::S_IFMT == libc::S_IFREG).then_some((stat.st_dev, stat.st_ino))
}

/// The same file opened again without `O_DIRECT`, with the same access.
fn reopen_buffered(fd: RawFd, flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = std::ffi::CString::new(format!("/proc/self/fd/{fd}"))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let access = flags & libc::O_ACCMODE;
    // SAFETY: a valid C string; the flags ask for no creation.
    let twin = unsafe { libc::open(path.as_ptr(), access | libc::O_CLOEXEC) };
    if twin < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just opened, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(twin) })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    use super::*;

    fn req(
        op: Op,
        handle: usize,
        base: u64,
        size: usize,
        file_offset: i64,
        buf_offset: i64,
    ) -> Request {
        Request {
            op,
            handle,
            base,
            size,
            file_offset,
            buf_offset,
        }
    }

    fn file_with(bytes: &[u8]) -> std::fs::File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn reads_stop_at_the_end_of_the_file_and_writes_land() {
        let files = Files::new();
        files.open();
        let heap = Heap::new(1 << 20);
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let f = file_with(&data);
        let h = files.register(f.as_raw_fd()).unwrap();
        let dev = heap.alloc(CONTEXT, 20_000).unwrap();

        // Past the end: a short read, not an error.
        assert_eq!(
            files.run(&heap, req(Op::Read, h, dev, 8_000, 3_000, 100)),
            7_000
        );
        let got = heap
            .with_bytes(CONTEXT, dev + 100, 7_000, |b| b.to_vec())
            .unwrap();
        assert_eq!(got, &data[3_000..]);
        assert_eq!(files.run(&heap, req(Op::Read, h, dev, 10, 20_000, 0)), 0);

        assert_eq!(files.run(&heap, req(Op::Write, h, dev + 100, 5, 1, 0)), 5);
        let mut back = [0u8; 7];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut back, 0).unwrap();
        assert_eq!(back, [0, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 6]);
        files.deregister(h).unwrap();
    }

    #[test]
    fn nothing_works_before_the_driver_opens() {
        let files = Files::new();
        let f = file_with(b"abc");
        let closed = Err(FileError::file(FileStatus::DRIVER_NOT_INITIALIZED));
        assert_eq!(files.register(f.as_raw_fd()).map(drop), closed);
        assert_eq!(files.close(), closed);
        files.open();
        files.close().unwrap();
        assert_eq!(files.register(f.as_raw_fd()).map(drop), closed);
    }

    #[test]
    fn every_wrong_use_is_refused() {
        let files = Files::new();
        files.open();
        let heap = Heap::new(1 << 20);
        let f = file_with(b"abc");
        let fd = f.as_raw_fd();
        let h = files.register(fd).unwrap();
        assert_eq!(
            files.register(fd),
            Err(FileError::file(FileStatus::HANDLE_ALREADY_REGISTERED))
        );
        let dev = heap.alloc(CONTEXT, 64).unwrap();
        let range = -(FileStatus::CUDA_POINTER_RANGE_ERROR.0 as isize);
        assert_eq!(files.run(&heap, req(Op::Read, h, dev, 65, 0, 0)), range);
        assert_eq!(files.run(&heap, req(Op::Read, h, dev, 8, 0, 60)), range);
        let invalid = -(FileStatus::INVALID_VALUE.0 as isize);
        assert_eq!(files.run(&heap, req(Op::Read, h, dev, 1, -1, 0)), invalid);
        let dir = std::fs::File::open("/").unwrap();
        assert_eq!(
            files.register(dir.as_raw_fd()),
            Err(FileError::file(FileStatus::INVALID_FILE_TYPE))
        );
        files.deregister(h).unwrap();
        let gone = -(FileStatus::HANDLE_NOT_REGISTERED.0 as isize);
        assert_eq!(files.run(&heap, req(Op::Read, h, dev, 1, 0, 0)), gone);
        assert_eq!(
            files.deregister(h),
            Err(FileError::file(FileStatus::HANDLE_NOT_REGISTERED))
        );
        // Deregistering after the descriptor closed is a bug cuFile would
        // trip over.
        let f = file_with(b"x");
        let h = files.register(f.as_raw_fd()).unwrap();
        drop(f);
        assert_eq!(
            files.deregister(h),
            Err(FileError::file(FileStatus::INVALID_VALUE))
        );
    }

    #[test]
    fn an_os_failure_is_minus_errno() {
        let files = Files::new();
        files.open();
        let heap = Heap::new(1 << 20);
        let path = tempfile::NamedTempFile::new().unwrap();
        let ro = std::fs::File::open(path.path()).unwrap();
        let h = files.register(ro.as_raw_fd()).unwrap();
        let dev = heap.alloc(CONTEXT, 64).unwrap();
        let ebadf = -(libc::EBADF as isize);
        assert_eq!(files.run(&heap, req(Op::Write, h, dev, 64, 0, 0)), ebadf);
        files.deregister(h).unwrap();
    }
}
