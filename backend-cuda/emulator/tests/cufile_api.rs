//! The cuFile entry points as cudarc calls them, on the emulated driver's
//! streams and memory: a write from device memory, a read back, a short
//! read at the end of the file, an errno found when an operation runs, and
//! the refusals (a host pointer, a deregistered handle, no driver).

use std::ffi::c_void;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::ptr::null_mut;

use cuda_emulator::api::*;
use cuda_emulator::cufile::{FileError, FileStatus};
use cuda_emulator::cufile_api::*;
use cuda_emulator::result::Status;

fn ok(status: Status) {
    assert_eq!(status, Status::SUCCESS);
}

fn file_ok(status: FileError) {
    assert_eq!(status, FileError::SUCCESS);
}

/// The parameters of one asynchronous operation, where cuFile reads them
/// when the stream reaches it.
struct Io {
    size: usize,
    file_offset: i64,
    buf_offset: i64,
    done: isize,
}

impl Io {
    fn new(size: usize, file_offset: i64, buf_offset: i64) -> Box<Self> {
        Box::new(Io {
            size,
            file_offset,
            buf_offset,
            done: 0,
        })
    }
}

/// Queues `io` as a read (or a write) of `dev` on `stream`.
///
/// # Safety
///
/// `io` stays alive until the stream has run it.
unsafe fn queue(
    read: bool,
    fh: *mut c_void,
    dev: u64,
    io: &mut Io,
    stream: *mut c_void,
) -> FileError {
    let f = if read {
        cuFileReadAsync
    } else {
        cuFileWriteAsync
    };
    // SAFETY: the caller keeps `io` alive until the stream ran it.
    unsafe {
        f(
            fh,
            dev as *mut c_void,
            &mut io.size,
            &mut io.file_offset,
            &mut io.buf_offset,
            &mut io.done,
            stream,
        )
    }
}

#[test]
fn cufile_end_to_end() {
    let file = tempfile::tempfile().unwrap();
    // SAFETY: every pointer below is valid for what each call writes or
    // reads, and every `Io` outlives its operation (each stream is
    // synchronised before they drop).
    unsafe {
        let mut fh = null_mut();
        let descr = FileDescr {
            kind: 1,
            handle: FileDescrHandle {
                fd: file.as_raw_fd(),
            },
            fs_ops: std::ptr::null(),
        };
        assert_eq!(
            cuFileHandleRegister(&mut fh, &descr).err,
            FileStatus::DRIVER_NOT_INITIALIZED
        );
        file_ok(cuFileDriverOpen());
        let mut props = std::mem::zeroed::<DriverProps>();
        file_ok(cuFileDriverGetProperties(&mut props));
        assert_eq!(
            (props.nvfs.major_version, props.nvfs.minor_version),
            (0, 0),
            "compat mode: no nvidia-fs"
        );
        file_ok(cuFileHandleRegister(&mut fh, &descr));
        assert_eq!(
            cuFileHandleRegister(&mut fh, &descr).err,
            FileStatus::HANDLE_ALREADY_REGISTERED
        );

        ok(cuInit(0));
        let mut ctx = null_mut();
        ok(cuDevicePrimaryCtxRetain(&mut ctx, 0));
        ok(cuCtxSetCurrent(ctx));
        let mut stream = null_mut();
        ok(cuStreamCreate(&mut stream, 0));
        let mut dev = 0u64;
        ok(cuMemAlloc_v2(&mut dev, 10_000));
        let src: Vec<u8> = (0..10_000u32).map(|i| (i * 3) as u8).collect();
        ok(cuMemcpyHtoDAsync_v2(
            dev,
            src.as_ptr().cast(),
            src.len(),
            stream,
        ));

        // Device bytes 100.. to the file at 7, ordered after the upload.
        let mut write = Io::new(9_000, 7, 100);
        file_ok(queue(false, fh, dev, &mut write, stream));
        ok(cuStreamSynchronize(stream));
        assert_eq!(write.done, 9_000);
        let mut on_disk = vec![0u8; 9_000];
        file.read_exact_at(&mut on_disk, 7).unwrap();
        assert!(
            on_disk == src[100..9_100],
            "the file holds the device bytes"
        );

        // Back from the file, running off its end: a short read.
        let mut read = Io::new(5_000, 5_007, 0);
        file_ok(queue(true, fh, dev, &mut read, stream));
        let mut back = vec![0u8; 4_000];
        ok(cuMemcpyDtoHAsync_v2(
            back.as_mut_ptr().cast(),
            dev,
            4_000,
            stream,
        ));
        ok(cuStreamSynchronize(stream));
        assert_eq!(read.done, 4_000, "9,007 bytes in the file, 5,007 skipped");
        assert!(back == src[5_100..9_100]);

        // An I/O error found when the operation runs: -errno.
        assert!(cuda_emulator::api::tensorswap_emulator_arm_fault(
            c"cuFileReadAsync".as_ptr(),
            0,
            5
        ));
        let mut failing = Io::new(16, 0, 0);
        file_ok(queue(true, fh, dev, &mut failing, stream));
        ok(cuStreamSynchronize(stream));
        assert_eq!(failing.done, -5);

        // A host pointer is no device memory.
        let mut host = vec![0u8; 64];
        let mut wrong = Io::new(64, 0, 0);
        let status = queue(true, fh, host.as_mut_ptr() as u64, &mut wrong, stream);
        assert_eq!(status.err, FileStatus::CUDA_POINTER_INVALID);

        // A range past the end of the allocation fails when it runs.
        let mut past = Io::new(200, 0, 9_900);
        file_ok(queue(true, fh, dev, &mut past, stream));
        ok(cuStreamSynchronize(stream));
        assert_eq!(
            past.done,
            -(FileStatus::CUDA_POINTER_RANGE_ERROR.0 as isize)
        );

        // Not emulated: said, and a negative count.
        assert_eq!(
            cuda_emulator::unsupported::cuFileRead(),
            -(FileStatus::IO_NOT_SUPPORTED.0 as isize)
        );

        cuFileHandleDeregister(fh);
        let mut late = Io::new(16, 0, 0);
        assert_eq!(
            queue(true, fh, dev, &mut late, stream).err,
            FileStatus::HANDLE_NOT_REGISTERED
        );
        file_ok(cuFileDriverClose_v2());
        ok(cuMemFree_v2(dev));
        ok(cuStreamDestroy_v2(stream));
    }
}
