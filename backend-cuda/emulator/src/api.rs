//! The driver entry points (`extern "C"`, the names and signatures cudarc
//! 0.19 looks up), over [`Driver`]. Each checks its handles and pointers;
//! copies and stream-ordered frees run on their stream and check the device
//! memory when they run, leaving a sticky `CUDA_ERROR_ILLEGAL_ADDRESS` if it
//! went bad after they were queued.
//!
//! # Safety (for every function here)
//!
//! The CUDA driver API's own contract: out-pointers are valid for a write
//! of their type, host pointers for the stated length, and host memory of
//! an asynchronous copy stays valid until the copy has run.

#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};

use crate::driver::{Driver, CONTEXT, PRIMARY};
use crate::faults;
use crate::result::{refuse, Status};

type Handle = *mut c_void;

/// Runs entry point `entry` (unless a fault is armed for this call) and
/// turns its outcome into a status.
fn call(entry: &str, f: impl FnOnce(&'static Driver) -> Result<(), Status>) -> Status {
    Status::of(faults::check(entry).and_then(|()| f(Driver::get())))
}

/// The status of a call that answers through an out-pointer.
///
/// # Safety
///
/// As [`put`].
unsafe fn answer<T>(out: *mut T, value: Result<T, Status>) -> Status {
    match value {
        // SAFETY: forwarded from this function's contract.
        Ok(v) => Status::of(unsafe { put(out, v) }),
        Err(status) => status,
    }
}

/// Writes `value` through an out-pointer, refusing null.
///
/// # Safety
///
/// `out` is null or valid for a write of `T`.
unsafe fn put<T>(out: *mut T, value: T) -> Result<(), Status> {
    if out.is_null() {
        return Err(refuse(
            Status::INVALID_VALUE,
            format_args!("a null out-pointer"),
        ));
    }
    // SAFETY: non-null, and valid for a write by this function's contract.
    unsafe { out.write(value) };
    Ok(())
}

fn device(ordinal: c_int) -> Result<(), Status> {
    if ordinal == 0 {
        Ok(())
    } else {
        Err(refuse(
            Status::INVALID_DEVICE,
            format_args!("device {ordinal}: the emulator has one, 0"),
        ))
    }
}

/// The driver's `cuInit` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuInit(_flags: c_uint) -> Status {
    call("cuInit", |d| {
        d.init();
        Ok(())
    })
}

/// The driver's `cuDriverGetVersion` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuDriverGetVersion(out: *mut c_int) -> Status {
    let value = faults::check("cuDriverGetVersion").map(|()| 12060);
    // SAFETY: the driver contract (module docs).
    unsafe { answer(out, value) }
}

/// The driver's `cuDeviceGetCount` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetCount(out: *mut c_int) -> Status {
    let d = Driver::get();
    let value = faults::check("cuDeviceGetCount").and_then(|()| d.ready().map(|()| 1));
    // SAFETY: the driver contract (module docs).
    unsafe { answer(out, value) }
}

/// The driver's `cuDeviceGet` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGet(out: *mut c_int, ordinal: c_int) -> Status {
    let d = Driver::get();
    let value = faults::check("cuDeviceGet")
        .and_then(|()| d.ready().and_then(|()| device(ordinal)).map(|()| 0));
    // SAFETY: the driver contract (module docs).
    unsafe { answer(out, value) }
}

/// The driver's `cuDeviceGetName` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, dev: c_int) -> Status {
    const NAME: &[u8] = b"tensorswap emulated GPU (CPU)\0";
    call("cuDeviceGetName", |d| {
        d.ready()?;
        device(dev)?;
        if name.is_null() || len <= 0 {
            return Err(refuse(
                Status::INVALID_VALUE,
                format_args!("cuDeviceGetName into {len} bytes"),
            ));
        }
        let n = NAME.len().min(len as usize);
        // SAFETY: `name` is valid for `len` bytes (driver contract); the last
        // byte written is a NUL.
        unsafe {
            std::ptr::copy_nonoverlapping(NAME.as_ptr().cast::<c_char>(), name, n);
            *name.add(n - 1) = 0;
        }
        Ok(())
    })
}

/// The driver's `cuDeviceTotalMem_v2` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuDeviceTotalMem_v2(out: *mut usize, dev: c_int) -> Status {
    let d = Driver::get();
    let value = faults::check("cuDeviceTotalMem_v2").and_then(|()| {
        d.ready()
            .and_then(|()| device(dev))
            .map(|()| d.heap.capacity())
    });
    // SAFETY: the driver contract (module docs).
    unsafe { answer(out, value) }
}

/// The driver's `cuDeviceGetAttribute` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetAttribute(
    out: *mut c_int,
    attribute: c_int,
    dev: c_int,
) -> Status {
    let v = match attribute {
        75 => 9,  // compute capability major
        76 => 0,  // minor
        115 => 1, // memory pools supported: cuMemAllocAsync
        41 => 1,  // unified addressing
        40 => 2,  // copy engines
        _ => 0,   // PCI ids and everything else
    };
    let d = Driver::get();
    let value = faults::check("cuDeviceGetAttribute")
        .and_then(|()| d.ready().and_then(|()| device(dev)).map(|()| v));
    // SAFETY: the driver contract (module docs).
    unsafe { answer(out, value) }
}

/// The driver's `cuDevicePrimaryCtxRetain` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(out: *mut Handle, dev: c_int) -> Status {
    let d = Driver::get();
    let value = faults::check("cuDevicePrimaryCtxRetain").and_then(|()| {
        d.ready()
            .and_then(|()| device(dev))
            .map(|()| PRIMARY as Handle)
    });
    // SAFETY: the driver contract (module docs).
    unsafe { answer(out, value) }
}

/// The driver's `cuDevicePrimaryCtxRelease_v2` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxRelease_v2(dev: c_int) -> Status {
    call("cuDevicePrimaryCtxRelease_v2", |d| {
        d.ready().and_then(|()| device(dev))
    })
}

/// The driver's `cuCtxSetCurrent` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuCtxSetCurrent(ctx: Handle) -> Status {
    call("cuCtxSetCurrent", |d| {
        d.ready().and_then(|()| d.set_current(ctx as usize))
    })
}

/// The driver's `cuCtxGetCurrent` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuCtxGetCurrent(out: *mut Handle) -> Status {
    let d = Driver::get();
    let value =
        faults::check("cuCtxGetCurrent").and_then(|()| d.ready().map(|()| d.current() as Handle));
    // SAFETY: the driver contract (module docs).
    unsafe { answer(out, value) }
}

/// The driver's `cuCtxGetDevice` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuCtxGetDevice(out: *mut c_int) -> Status {
    let d = Driver::get();
    let value = faults::check("cuCtxGetDevice").and_then(|()| d.in_context().map(|()| 0));
    // SAFETY: the driver contract (module docs).
    unsafe { answer(out, value) }
}

/// The driver's `cuCtxSynchronize` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuCtxSynchronize() -> Status {
    call("cuCtxSynchronize", |d| {
        d.in_context()?;
        d.synchronize_all()?;
        d.host_synced_stream(None);
        d.ready()
    })
}

/// The driver's `cuStreamCreate` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuStreamCreate(out: *mut Handle, _flags: c_uint) -> Status {
    let d = Driver::get();
    let value = faults::check("cuStreamCreate").and_then(|()| {
        d.in_context()
            .and_then(|()| d.create_stream())
            .map(|h| h as Handle)
    });
    // SAFETY: the driver contract (module docs).
    unsafe { answer(out, value) }
}

/// The driver's `cuStreamDestroy_v2` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuStreamDestroy_v2(stream: Handle) -> Status {
    call("cuStreamDestroy_v2", |d| {
        d.ready().and_then(|()| d.destroy_stream(stream as usize))
    })
}

/// The driver's `cuStreamSynchronize` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuStreamSynchronize(stream: Handle) -> Status {
    call("cuStreamSynchronize", |d| {
        d.ready()?;
        d.stream(stream as usize)?.synchronize()?;
        d.host_synced_stream(Some(stream as usize));
        d.ready()
    })
}

/// The driver's `cuStreamWaitEvent` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuStreamWaitEvent(
    stream: Handle,
    event: Handle,
    _flags: c_uint,
) -> Status {
    call("cuStreamWaitEvent", |d| {
        d.ready()?;
        let handle = event as usize;
        let event = d.event(handle)?;
        d.stream(stream as usize)?.wait_event(&event)?;
        d.waited(stream as usize, handle);
        Ok(())
    })
}

/// The driver's `cuEventCreate` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuEventCreate(out: *mut Handle, _flags: c_uint) -> Status {
    let d = Driver::get();
    let value = faults::check("cuEventCreate")
        .and_then(|()| d.in_context().map(|()| d.create_event() as Handle));
    // SAFETY: the driver contract (module docs).
    unsafe { answer(out, value) }
}

/// The driver's `cuEventRecord` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuEventRecord(event: Handle, stream: Handle) -> Status {
    call("cuEventRecord", |d| {
        d.ready()?;
        let handle = event as usize;
        let event = d.event(handle)?;
        d.stream(stream as usize)?.record(&event)?;
        d.recorded(handle, stream as usize);
        Ok(())
    })
}

/// The driver's `cuEventSynchronize` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuEventSynchronize(event: Handle) -> Status {
    call("cuEventSynchronize", |d| {
        d.ready()?;
        d.event(event as usize)?.synchronize();
        d.host_synced_event(event as usize);
        d.ready()
    })
}

/// The driver's `cuEventQuery` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuEventQuery(event: Handle) -> Status {
    call("cuEventQuery", |d| {
        d.ready()?;
        match d.event(event as usize)?.query() {
            Status::SUCCESS => {
                d.host_synced_event(event as usize);
                d.ready()
            }
            pending => Err(pending),
        }
    })
}

/// The driver's `cuEventDestroy_v2` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuEventDestroy_v2(event: Handle) -> Status {
    call("cuEventDestroy_v2", |d| {
        d.ready().and_then(|()| d.destroy_event(event as usize))
    })
}

/// The driver's `cuMemAlloc_v2` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuMemAlloc_v2(out: *mut u64, len: usize) -> Status {
    let d = Driver::get();
    let value = faults::check("cuMemAlloc_v2")
        .and_then(|()| d.in_context().and_then(|()| d.heap.alloc(CONTEXT, len)));
    // SAFETY: the driver contract (module docs).
    unsafe { answer(out, value) }
}

/// The driver's `cuMemFree_v2` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuMemFree_v2(ptr: u64) -> Status {
    call("cuMemFree_v2", |d| {
        d.in_context()?;
        d.synchronize_all()?;
        d.heap.free(CONTEXT, ptr)?;
        d.freed(ptr);
        Ok(())
    })
}

/// The driver's `cuMemAllocAsync` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuMemAllocAsync(out: *mut u64, len: usize, stream: Handle) -> Status {
    let d = Driver::get();
    let value = faults::check("cuMemAllocAsync").and_then(|()| {
        d.in_context()
            .and_then(|()| d.stream(stream as usize).map(drop))
            .and_then(|()| d.heap.alloc(CONTEXT, len))
            .inspect(|&base| d.allocated_on(base, stream as usize))
    });
    // SAFETY: the driver contract (module docs).
    unsafe { answer(out, value) }
}

/// The driver's `cuMemFreeAsync` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuMemFreeAsync(ptr: u64, stream: Handle) -> Status {
    call("cuMemFreeAsync", |d| {
        d.in_context()?;
        d.check_ordered(ptr, stream as usize)?;
        d.check_free(ptr, stream as usize)?;
        d.used(ptr, stream as usize);
        d.stream(stream as usize)?
            .enqueue(move || match d.heap.free(CONTEXT, ptr) {
                Ok(()) => d.freed(ptr),
                Err(status) => d.fail(status),
            })
    })
}

/// The driver's `cuMemGetInfo_v2` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> Status {
    call("cuMemGetInfo_v2", |d| {
        d.in_context()?;
        let total_bytes = d.heap.capacity();
        // SAFETY: the driver contract (module docs).
        unsafe {
            put(free, total_bytes - d.heap.used())?;
            put(total, total_bytes)
        }
    })
}

/// A host pointer carried into a stream's work (the driver contract keeps
/// the memory valid until the work has run).
#[derive(Clone, Copy)]
struct HostPtr(usize);

/// Queues a copy between host memory and device memory on `stream`:
/// handles and stream order are checked now, the device range when it runs.
fn queue_copy(
    entry: &str,
    stream: Handle,
    device: u64,
    host: HostPtr,
    len: usize,
    to_device: bool,
) -> Status {
    call(entry, |d| {
        d.in_context()?;
        if host.0 == 0 && len > 0 {
            return Err(refuse(
                Status::INVALID_VALUE,
                format_args!("a copy with a null host pointer"),
            ));
        }
        d.check_ordered(device, stream as usize)?;
        d.used(device, stream as usize);
        d.stream(stream as usize)?.enqueue(move || {
            let copied = d.heap.with_bytes(CONTEXT, device, len, |bytes| {
                let host = host.0 as *mut u8;
                // SAFETY: the host range is valid for `len` bytes until this
                // copy has run (driver contract); the device bytes are the
                // heap's own, borrowed for the call.
                unsafe {
                    if to_device {
                        std::ptr::copy_nonoverlapping(host.cast_const(), bytes.as_mut_ptr(), len);
                    } else {
                        std::ptr::copy_nonoverlapping(bytes.as_ptr(), host, len);
                    }
                }
            });
            if copied.is_err() {
                d.fail(crate::driver::ILLEGAL_ADDRESS);
            }
        })
    })
}

/// The driver's `cuMemcpyHtoDAsync_v2` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuMemcpyHtoDAsync_v2(
    dst: u64,
    src: *const c_void,
    len: usize,
    stream: Handle,
) -> Status {
    queue_copy(
        "cuMemcpyHtoDAsync_v2",
        stream,
        dst,
        HostPtr(src as usize),
        len,
        true,
    )
}

/// The driver's `cuMemcpyDtoHAsync_v2` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoHAsync_v2(
    dst: *mut c_void,
    src: u64,
    len: usize,
    stream: Handle,
) -> Status {
    queue_copy(
        "cuMemcpyDtoHAsync_v2",
        stream,
        src,
        HostPtr(dst as usize),
        len,
        false,
    )
}

/// The driver's `cuMemHostRegister_v2` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuMemHostRegister_v2(
    ptr: *mut c_void,
    len: usize,
    _flags: c_uint,
) -> Status {
    call("cuMemHostRegister_v2", |d| {
        d.in_context()
            .and_then(|()| d.register_host(ptr as usize, len))
    })
}

/// The driver's `cuMemHostUnregister` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuMemHostUnregister(ptr: *mut c_void) -> Status {
    call("cuMemHostUnregister", |d| {
        d.in_context()
            .and_then(|()| d.unregister_host(ptr as usize))
    })
}

/// The driver's `cuMemHostAlloc` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuMemHostAlloc(
    ptr: *mut *mut c_void,
    len: usize,
    _flags: c_uint,
) -> Status {
    call("cuMemHostAlloc", |d| {
        d.in_context()?;
        let layout = std::alloc::Layout::from_size_align(len.max(1), 4096).map_err(|_| {
            refuse(
                Status::INVALID_VALUE,
                format_args!("cuMemHostAlloc of {len} bytes"),
            )
        })?;
        // SAFETY: a non-zero size with a valid alignment.
        let block = unsafe { std::alloc::alloc_zeroed(layout) };
        if block.is_null() {
            return Err(Status::OUT_OF_MEMORY);
        }
        d.add_host_block(block as usize, len.max(1));
        // SAFETY: the driver contract (module docs).
        unsafe { put(ptr, block.cast()) }
    })
}

/// The driver's `cuMemFreeHost` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuMemFreeHost(ptr: *mut c_void) -> Status {
    call("cuMemFreeHost", |d| {
        d.ready()?;
        let len = d.take_host_block(ptr as usize)?;
        let layout =
            std::alloc::Layout::from_size_align(len, 4096).map_err(|_| Status::INVALID_VALUE)?;
        // SAFETY: `ptr` came from `cuMemHostAlloc` with this layout and is
        // freed once (its record was just taken).
        unsafe { std::alloc::dealloc(ptr.cast(), layout) };
        Ok(())
    })
}

/// Names and descriptions of the statuses the emulator returns.
fn describe(status: u32) -> Option<(&'static CStr, &'static CStr)> {
    Some(match status {
        0 => (c"CUDA_SUCCESS", c"no error"),
        1 => (c"CUDA_ERROR_INVALID_VALUE", c"invalid argument"),
        2 => (c"CUDA_ERROR_OUT_OF_MEMORY", c"out of memory"),
        3 => (c"CUDA_ERROR_NOT_INITIALIZED", c"initialization error"),
        101 => (c"CUDA_ERROR_INVALID_DEVICE", c"invalid device ordinal"),
        201 => (c"CUDA_ERROR_INVALID_CONTEXT", c"invalid device context"),
        400 => (c"CUDA_ERROR_INVALID_HANDLE", c"invalid resource handle"),
        600 => (c"CUDA_ERROR_NOT_READY", c"device not ready"),
        700 => (
            c"CUDA_ERROR_ILLEGAL_ADDRESS",
            c"an illegal memory access was encountered",
        ),
        712 => (
            c"CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED",
            c"part or all of the requested memory range is already mapped",
        ),
        713 => (
            c"CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED",
            c"pointer does not correspond to a registered memory region",
        ),
        801 => (
            c"CUDA_ERROR_NOT_SUPPORTED",
            c"operation not supported (by tensorswap's CUDA emulator)",
        ),
        _ => return None,
    })
}

/// The driver's `cuGetErrorName` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuGetErrorName(status: u32, name: *mut *const c_char) -> Status {
    match describe(status) {
        // SAFETY: the driver contract (module docs).
        Some((n, _)) => Status::of(unsafe { put(name, n.as_ptr()) }),
        None => Status::INVALID_VALUE,
    }
}

/// The driver's `cuGetErrorString` (the module docs say what is checked).
#[no_mangle]
pub unsafe extern "C" fn cuGetErrorString(status: u32, text: *mut *const c_char) -> Status {
    match describe(status) {
        // SAFETY: the driver contract (module docs).
        Some((_, t)) => Status::of(unsafe { put(text, t.as_ptr()) }),
        None => Status::INVALID_VALUE,
    }
}

/// Arms a fault (tensorswap's own entry point, not the driver's): after
/// `after` more calls of the entry point named `entry` succeed, the next
/// one fails with `status`. Returns false for a name that is not UTF-8.
///
/// # Safety
///
/// `entry` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn tensorswap_emulator_arm_fault(
    entry: *const c_char,
    after: u64,
    status: u32,
) -> bool {
    if entry.is_null() {
        return false;
    }
    // SAFETY: a NUL-terminated string, by the contract above.
    match unsafe { CStr::from_ptr(entry) }.to_str() {
        Ok(name) => {
            faults::arm(name, after, Status(status));
            true
        }
        Err(_) => false,
    }
}

/// How many calls the emulator refused so far in this process
/// (tensorswap's own entry point; see [`crate::result::refused`]).
#[no_mangle]
pub extern "C" fn tensorswap_emulator_refusals() -> u64 {
    crate::result::refused()
}
