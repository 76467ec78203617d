//! The entry points as cudarc calls them, in one process: a context, two
//! streams ordered by an event, copies both ways, host registration rules,
//! and a bad device address turning into a sticky error (last: it stays).

use std::ffi::{c_void, CStr};
use std::ptr::null_mut;

use cuda_emulator::api::*;
use cuda_emulator::result::Status;

fn ok(status: Status) {
    assert_eq!(status, Status::SUCCESS);
}

#[test]
fn the_driver_api_end_to_end() {
    // SAFETY: every pointer below is valid for what each call writes or
    // reads, and host buffers outlive the copies (each stream is
    // synchronised before they drop).
    unsafe {
        let mut n = 0;
        assert_eq!(cuDeviceGetCount(&mut n), Status::NOT_INITIALIZED);
        ok(cuInit(0));
        ok(cuDeviceGetCount(&mut n));
        assert_eq!(n, 1);
        let mut dev = -1;
        ok(cuDeviceGet(&mut dev, 0));
        assert_eq!(cuDeviceGet(&mut dev, 1), Status::INVALID_DEVICE);
        let mut ctx = null_mut();
        ok(cuDevicePrimaryCtxRetain(&mut ctx, dev));
        let mut ptr = 0u64;
        assert_eq!(
            cuMemAlloc_v2(&mut ptr, 64),
            Status::INVALID_CONTEXT,
            "no context current yet"
        );
        ok(cuCtxSetCurrent(ctx));

        let (mut up, mut down, mut written) = (null_mut(), null_mut(), null_mut());
        ok(cuStreamCreate(&mut up, 0));
        ok(cuStreamCreate(&mut down, 0));
        ok(cuEventCreate(&mut written, 0));
        ok(cuMemAllocAsync(&mut ptr, 1 << 20, up));
        let src: Vec<u8> = (0..1 << 20).map(|i| (i * 7) as u8).collect();
        let mut back = vec![0u8; 1 << 20];
        ok(cuMemcpyHtoDAsync_v2(
            ptr,
            src.as_ptr().cast(),
            src.len(),
            up,
        ));
        ok(cuEventRecord(written, up));
        ok(cuStreamWaitEvent(down, written, 0));
        ok(cuMemcpyDtoHAsync_v2(
            back.as_mut_ptr().cast(),
            ptr,
            back.len(),
            down,
        ));
        ok(cuStreamSynchronize(down));
        assert!(
            back == src,
            "the download ordered after the upload saw its bytes"
        );

        let (mut free, mut total) = (0, 0);
        ok(cuMemGetInfo_v2(&mut free, &mut total));
        assert_eq!(total - free, 1 << 20);

        // Host registration: overlapping ranges and unknown starts refused.
        let host = vec![0u8; 3 * 4096];
        let base = host.as_ptr() as *mut c_void;
        ok(cuMemHostRegister_v2(base, 2 * 4096, 0));
        assert_eq!(
            cuMemHostRegister_v2(base.cast::<u8>().add(4096).cast(), 4096, 0),
            Status::HOST_MEMORY_ALREADY_REGISTERED
        );
        assert_eq!(
            cuMemHostUnregister(base.cast::<u8>().add(4096).cast()),
            Status::HOST_MEMORY_NOT_REGISTERED
        );
        ok(cuMemHostUnregister(base));
        let mut pinned = null_mut();
        ok(cuMemHostAlloc(&mut pinned, 10_000, 0));
        ok(cuMemFreeHost(pinned));
        assert_eq!(
            cuMemFreeHost(pinned),
            Status::INVALID_VALUE,
            "a double free"
        );

        // An entry point the emulator does not emulate says so.
        assert_eq!(
            cuda_emulator::unsupported::cuLaunchKernel(),
            Status::NOT_SUPPORTED
        );

        let mut name = null_mut::<std::ffi::c_char>().cast_const();
        ok(cuGetErrorName(700, &mut name));
        assert_eq!(
            CStr::from_ptr(name).to_str(),
            Ok("CUDA_ERROR_ILLEGAL_ADDRESS")
        );

        // Memory allocated on one stream, used on another with no wait in
        // between: refused when queued, whatever the timing.
        let mut other = 0u64;
        ok(cuMemAllocAsync(&mut other, 4096, up));
        assert_eq!(
            cuMemcpyDtoHAsync_v2(back.as_mut_ptr().cast(), other, 16, down),
            Status::INVALID_VALUE
        );
        ok(cuStreamSynchronize(up));
        ok(cuMemcpyDtoHAsync_v2(
            back.as_mut_ptr().cast(),
            other,
            16,
            down,
        ));
        ok(cuStreamSynchronize(down));

        // Freed on one stream while a copy queued on another is not
        // ordered before the free: refused; after a wait, accepted.
        ok(cuMemcpyDtoHAsync_v2(
            back.as_mut_ptr().cast(),
            other,
            16,
            down,
        ));
        assert_eq!(cuMemFreeAsync(other, up), Status::INVALID_VALUE);
        let mut copied = null_mut();
        ok(cuEventCreate(&mut copied, 0));
        ok(cuEventRecord(copied, down));
        ok(cuStreamWaitEvent(up, copied, 0));
        ok(cuMemFreeAsync(other, up));
        ok(cuStreamSynchronize(up));

        // A free on the stream, then a copy of the freed memory: the copy
        // fails when it runs, and the error sticks.
        ok(cuMemFreeAsync(ptr, up));
        ok(cuMemcpyDtoHAsync_v2(back.as_mut_ptr().cast(), ptr, 16, up));
        assert_eq!(cuStreamSynchronize(up), Status(700));
        assert_eq!(
            cuMemAlloc_v2(&mut ptr, 64),
            Status(700),
            "the error is sticky"
        );
    }
}
