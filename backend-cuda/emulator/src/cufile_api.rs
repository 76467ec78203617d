//! The cuFile entry points (`extern "C"`, the names and signatures cudarc
//! 0.19 looks up in libcufile), over [`Files`] and the emulated driver's
//! streams and device memory.
//!
//! `cuFileReadAsync` / `cuFileWriteAsync` check the handle, the stream,
//! the device pointer and its stream order when called, and read their
//! size and offsets when the stream reaches them (as cuFile does: those
//! are pointers so that earlier work on the stream may set them); the
//! outcome is written to `bytes_read_p` / `bytes_written_p` then.
//!
//! Faults armed for `cuFileReadAsync` / `cuFileWriteAsync` with a status
//! below 5000 are an `errno` the operation completes with (an I/O error
//! found when it runs); from 5000 up, a `CUfileOpError` the call returns.
//!
//! # Safety (for every function here)
//!
//! cuFile's own contract: out-pointers are valid for a write of their type;
//! the size and offset pointers of an asynchronous operation, and its
//! outcome pointer, stay valid until the operation has run.

#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_int, c_uint, c_void};

use crate::cufile::{refuse, FileError, FileStatus, Files, Op, Request};
use crate::driver::Driver;
use crate::faults;
use crate::result::Status;

type Handle = *mut c_void;

/// `CUfileDrvProps_t` of cuFile 12.2 and later.
#[repr(C)]
pub struct DriverProps {
    /// The `nvidia-fs` driver's part.
    pub nvfs: NvfsProps,
    /// Feature flags.
    pub fflags: c_uint,
    /// Limits, in KiB.
    pub max_device_cache_size: c_uint,
    /// Limits, in KiB.
    pub per_buffer_cache_size: c_uint,
    /// Limits, in KiB.
    pub max_device_pinned_mem_size: c_uint,
    /// Operations in one batch.
    pub max_batch_io_size: c_uint,
    /// Batch timeout.
    pub max_batch_io_timeout_msecs: c_uint,
}

/// The `nvfs` part of [`DriverProps`]; version 0.0 means no `nvidia-fs`
/// (compat mode).
#[repr(C)]
pub struct NvfsProps {
    /// `nvidia-fs` major version.
    pub major_version: c_uint,
    /// `nvidia-fs` minor version.
    pub minor_version: c_uint,
    /// Polling threshold, in KiB.
    pub poll_thresh_size: usize,
    /// Largest direct request, in KiB.
    pub max_direct_io_size: usize,
    /// Driver status flags.
    pub dstatusflags: c_uint,
    /// Driver control flags.
    pub dcontrolflags: c_uint,
}

/// `CUfileDescr_t`: what `cuFileHandleRegister` registers.
#[repr(C)]
pub struct FileDescr {
    /// `CU_FILE_HANDLE_TYPE_OPAQUE_FD` (1) is the one the emulator takes.
    pub kind: c_uint,
    /// The descriptor.
    pub handle: FileDescrHandle,
    /// File system callbacks (user-space file systems only).
    pub fs_ops: *const c_void,
}

/// The descriptor or Windows handle of a [`FileDescr`].
#[repr(C)]
pub union FileDescrHandle {
    /// A POSIX descriptor.
    pub fd: c_int,
    /// A Windows handle.
    pub handle: *mut c_void,
}

const OPAQUE_FD: c_uint = 1;

/// Runs a cuFile entry point unless a fault is armed for this call.
fn call(entry: &str, f: impl FnOnce(&'static Files) -> Result<(), FileError>) -> FileError {
    FileError::of(fault(entry).and_then(|()| f(Files::get())))
}

/// The armed fault of this call of `entry`, as cuFile's status.
fn fault(entry: &str) -> Result<(), FileError> {
    faults::check(entry).map_err(|s| FileError::file(FileStatus::known(s.0)))
}

/// `cuFileDriverOpen` (the module docs say what is checked).
#[no_mangle]
pub extern "C" fn cuFileDriverOpen() -> FileError {
    call("cuFileDriverOpen", |files| {
        files.open();
        Ok(())
    })
}

/// `cuFileDriverClose` (the module docs say what is checked).
#[no_mangle]
pub extern "C" fn cuFileDriverClose() -> FileError {
    call("cuFileDriverClose", Files::close)
}

/// `cuFileDriverClose_v2`, the name cufile.h maps `cuFileDriverClose` to.
#[no_mangle]
pub extern "C" fn cuFileDriverClose_v2() -> FileError {
    call("cuFileDriverClose_v2", Files::close)
}

/// `cuFileDriverGetProperties`: compat mode (no `nvidia-fs`).
#[no_mangle]
pub unsafe extern "C" fn cuFileDriverGetProperties(props: *mut DriverProps) -> FileError {
    call("cuFileDriverGetProperties", |files| {
        files.ready()?;
        if props.is_null() {
            return Err(refuse(
                FileStatus::INVALID_VALUE,
                format_args!("cuFileDriverGetProperties into a null pointer"),
            ));
        }
        let value = DriverProps {
            nvfs: NvfsProps {
                major_version: 0,
                minor_version: 0,
                poll_thresh_size: 4,
                max_direct_io_size: 16 << 10,
                dstatusflags: 0,
                dcontrolflags: 0,
            },
            fflags: 0,
            max_device_cache_size: 128 << 10,
            per_buffer_cache_size: 1 << 10,
            max_device_pinned_mem_size: 32 << 20,
            max_batch_io_size: 128,
            max_batch_io_timeout_msecs: 5,
        };
        // SAFETY: non-null and valid for the write (cuFile contract).
        unsafe { props.write(value) };
        Ok(())
    })
}

/// `cuFileHandleRegister` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuFileHandleRegister(
    fh: *mut Handle,
    descr: *const FileDescr,
) -> FileError {
    call("cuFileHandleRegister", |files| {
        files.ready()?;
        if fh.is_null() || descr.is_null() {
            return Err(refuse(
                FileStatus::INVALID_VALUE,
                format_args!("cuFileHandleRegister with a null pointer"),
            ));
        }
        // SAFETY: non-null and valid for a read (cuFile contract).
        let descr = unsafe { &*descr };
        if descr.kind != OPAQUE_FD {
            return Err(refuse(
                FileStatus::INVALID_FILE_TYPE,
                format_args!(
                    "registering a handle of type {} (only 1, a descriptor)",
                    descr.kind
                ),
            ));
        }
        // SAFETY: with type 1 the union holds a descriptor.
        let fd = unsafe { descr.handle.fd };
        let handle = files.register(fd)?;
        // SAFETY: non-null and valid for the write (cuFile contract).
        unsafe { fh.write(handle as Handle) };
        Ok(())
    })
}

/// `cuFileHandleDeregister`: it returns nothing, so a wrong one is only
/// refused (said and counted).
#[no_mangle]
pub unsafe extern "C" fn cuFileHandleDeregister(fh: Handle) {
    let _ = call("cuFileHandleDeregister", |files| {
        files.deregister(fh as usize)
    });
}

/// What an asynchronous operation reads and writes when it runs.
#[derive(Clone, Copy)]
struct Params {
    size: usize,
    file_offset: usize,
    buf_offset: usize,
    done: usize,
}

/// Queues a read or a write on `stream` (the module docs say what is
/// checked when).
fn queue_io(
    entry: &str,
    op: Op,
    fh: Handle,
    base: *mut c_void,
    params: Params,
    stream: Handle,
) -> FileError {
    let queued = (|| {
        // An errno fault is an outcome, found when the operation runs.
        let injected = match faults::check(entry) {
            Ok(()) => None,
            Err(Status(errno)) if errno < 5000 => Some(errno as isize),
            Err(Status(code)) => return Err(FileError::file(FileStatus::known(code))),
        };
        let files = Files::get();
        files.ready()?;
        files.check(fh as usize)?;
        if [
            params.size,
            params.file_offset,
            params.buf_offset,
            params.done,
        ]
        .contains(&0)
        {
            return Err(refuse(
                FileStatus::INVALID_VALUE,
                format_args!("{entry} with a null size, offset or outcome pointer"),
            ));
        }
        let d = Driver::get();
        d.in_context().map_err(FileError::driver)?;
        let on = d.stream(stream as usize).map_err(FileError::driver)?;
        let base = base as u64;
        if d.heap.base_of(base).is_none() {
            return Err(refuse(
                FileStatus::CUDA_POINTER_INVALID,
                format_args!("{entry} at {base:#x}, which is not device memory"),
            ));
        }
        d.check_ordered(base, stream as usize)
            .map_err(FileError::driver)?;
        d.used(base, stream as usize);
        let handle = fh as usize;
        on.enqueue(move || {
            // SAFETY: the pointers stay valid until the operation has run
            // (cuFile contract), and it runs now.
            let (size, file_offset, buf_offset) = unsafe {
                (
                    (params.size as *const usize).read(),
                    (params.file_offset as *const i64).read(),
                    (params.buf_offset as *const i64).read(),
                )
            };
            let outcome = match injected {
                Some(errno) => {
                    eprintln!("cuda-emulator: injected fault: {op:?} completes with -{errno}");
                    -errno
                }
                None => files.run(
                    &d.heap,
                    Request {
                        op,
                        handle,
                        base,
                        size,
                        file_offset,
                        buf_offset,
                    },
                ),
            };
            // SAFETY: as above, for the outcome.
            unsafe { (params.done as *mut isize).write(outcome) };
        })
        .map_err(FileError::driver)
    })();
    FileError::of(queued)
}

/// `cuFileReadAsync` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuFileReadAsync(
    fh: Handle,
    base: *mut c_void,
    size_p: *mut usize,
    file_offset_p: *mut i64,
    buf_offset_p: *mut i64,
    bytes_read_p: *mut isize,
    stream: Handle,
) -> FileError {
    let params = Params {
        size: size_p as usize,
        file_offset: file_offset_p as usize,
        buf_offset: buf_offset_p as usize,
        done: bytes_read_p as usize,
    };
    queue_io("cuFileReadAsync", Op::Read, fh, base, params, stream)
}

/// `cuFileWriteAsync` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuFileWriteAsync(
    fh: Handle,
    base: *mut c_void,
    size_p: *mut usize,
    file_offset_p: *mut i64,
    buf_offset_p: *mut i64,
    bytes_written_p: *mut isize,
    stream: Handle,
) -> FileError {
    let params = Params {
        size: size_p as usize,
        file_offset: file_offset_p as usize,
        buf_offset: buf_offset_p as usize,
        done: bytes_written_p as usize,
    };
    queue_io("cuFileWriteAsync", Op::Write, fh, base, params, stream)
}
