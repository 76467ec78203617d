//! The cuda backend's error paths, run by making driver calls fail on the
//! emulated driver (`backend-cuda/emulator`): each failure is a typed error
//! that names what failed, hands the buffers back, and leaves the device
//! usable. Skipped with the reason without the emulator library, a failure
//! under `TENSORSWAP_REQUIRE=cuda-emulated`.

mod emulated;

use std::ffi::CStr;
use std::process::ExitCode;

use emulated::{on_emulator, Run};
use libtest_mimic::{Arguments, Failed, Trial};
use tensorswap_core::{Device, DeviceBuffer, DeviceExt, Error, PinnedPool, SwapDir, SwapFile};
use tensorswap_cuda::CudaDevice;

/// `CUDA_ERROR_OUT_OF_MEMORY` and `CUDA_ERROR_INVALID_VALUE`.
const OUT_OF_MEMORY: u32 = 2;
const INVALID_VALUE: u32 = 1;
/// `CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED`.
const HOST_MEMORY_ALREADY_REGISTERED: u32 = 712;
/// `CU_FILE_INTERNAL_ERROR`, and `EIO` (an I/O error when a cuFile
/// operation runs: the emulator's fault statuses below 5000).
const CU_FILE_INTERNAL_ERROR: u32 = 5030;
const EIO: u32 = 5;

/// Arms a fault: the next call of `entry` fails with `status`.
fn arm(entry: &CStr, status: u32) -> Result<(), Failed> {
    emulated::arm_fault(entry, status).map_err(Failed::from)
}

/// Runs `test`, failing it if the emulator refused a call meanwhile (a
/// refusal the backend only logged is still a bug).
fn strict(test: fn() -> Result<(), Failed>) -> Result<(), Failed> {
    let before = emulated::refusals()?;
    test()?;
    let after = emulated::refusals()?;
    if after > before {
        return Err(format!(
            "the emulator refused {} call(s) (see its log lines)",
            after - before
        )
        .into());
    }
    Ok(())
}

fn err(e: impl std::fmt::Display) -> Failed {
    e.to_string().into()
}

/// The device still moves bytes both ways after a failure.
fn still_works(dev: &CudaDevice) -> Result<(), Failed> {
    let mut host = dev.alloc_host(4096).map_err(err)?;
    host.fill(9);
    let done = dev
        .upload_blocking(host, dev.alloc(4096).map_err(err)?, 0)
        .map_err(err)?;
    let back = dev
        .download_blocking(done.device, 0, vec![0u8; 4096])
        .map_err(err)?;
    if back.host.iter().all(|&b| b == 9) {
        Ok(())
    } else {
        Err("after the failure the device moved the wrong bytes".into())
    }
}

fn allocation_failure_is_out_of_memory() -> Result<(), Failed> {
    let dev = CudaDevice::open().map_err(err)?;
    arm(c"cuMemAllocAsync", OUT_OF_MEMORY)?;
    match dev.alloc(1 << 20) {
        Err(Error::OutOfMemory {
            requested,
            available: Some(_),
            ..
        }) if requested == 1 << 20 => {}
        other => {
            return Err(format!("expected OutOfMemory with the free bytes, got {other:?}").into())
        }
    }
    still_works(&dev)
}

fn upload_failure_hands_the_buffers_back() -> Result<(), Failed> {
    let dev = CudaDevice::open().map_err(err)?;
    let mut host = dev.alloc_host(8192).map_err(err)?;
    host.fill(3);
    let buf = dev.alloc(8192).map_err(err)?;
    arm(c"cuMemcpyHtoDAsync_v2", INVALID_VALUE)?;
    match dev.upload(host, buf, 0) {
        Err(rejected) => {
            if !matches!(rejected.error, Error::Transfer { len: 8192, .. }) {
                return Err(format!("expected a Transfer error, got {}", rejected.error).into());
            }
            let host = rejected.value.host;
            if host.len() != 8192 || host.iter().any(|&b| b != 3) {
                return Err("the host buffer came back changed".into());
            }
        }
        Ok(_) => return Err("the upload succeeded although its copy failed".into()),
    }
    still_works(&dev)
}

fn event_failure_is_a_transfer_error() -> Result<(), Failed> {
    let dev = CudaDevice::open().map_err(err)?;
    let buf = dev.alloc(4096).map_err(err)?;
    arm(c"cuEventRecord", INVALID_VALUE)?;
    match dev.download(buf, 0, vec![0u8; 4096]) {
        Err(rejected)
            if matches!(
                rejected.error,
                Error::Device {
                    op: "record an event",
                    ..
                }
            ) => {}
        Err(rejected) => {
            return Err(format!("expected the event's error, got {}", rejected.error).into())
        }
        Ok(_) => return Err("the download succeeded although its event failed".into()),
    }
    still_works(&dev)
}

fn refused_registration_falls_back_to_host_alloc() -> Result<(), Failed> {
    let dev = CudaDevice::open().map_err(err)?;
    arm(c"cuMemHostRegister_v2", INVALID_VALUE)?;
    let pool = PinnedPool::builder()
        .slab_size(1 << 16)
        .slabs(2)
        .build_for(&dev)
        .map_err(err)?;
    if !pool.is_pinned() {
        return Err("the pool is not pinned: no cuMemHostAlloc fallback".into());
    }
    still_works(&dev)
}

/// The driver finding a user's range registered already is
/// `AlreadyRegistered`, with the buffer handed back; once the driver
/// accepts it, the same buffer pins.
fn driver_refusing_a_registered_range_hands_the_buffer_back() -> Result<(), Failed> {
    let dev = CudaDevice::open().map_err(err)?;
    let words: Vec<u32> = (0..4096).collect();
    let at = words.as_ptr();
    arm(c"cuMemHostRegister_v2", HOST_MEMORY_ALREADY_REGISTERED)?;
    let refused = match dev.pin_memory(words) {
        Err(refused) => refused,
        Ok(_) => return Err("pinned although the driver refused the range".into()),
    };
    if !matches!(refused.error, Error::AlreadyRegistered { len: 16384 }) {
        return Err(format!("expected AlreadyRegistered, got {}", refused.error).into());
    }
    if refused.value.as_ptr() != at || refused.value != (0..4096).collect::<Vec<u32>>() {
        return Err("the refused Vec came back changed".into());
    }
    let pinned = dev.pin_memory(refused.value).map_err(err)?;
    if !pinned.is_pinned() {
        return Err("the driver pinned the Vec but the value says unpinned".into());
    }
    drop(pinned.unpin());
    still_works(&dev)
}

fn stream_failure_fails_opening_with_its_name() -> Result<(), Failed> {
    let first = CudaDevice::open().map_err(err)?;
    arm(c"cuStreamCreate", OUT_OF_MEMORY)?;
    match CudaDevice::from_context(first.context().clone()) {
        Err(Error::Device {
            op: "create a stream",
            ..
        }) => {}
        other => return Err(format!("expected the stream's error, got {other:?}").into()),
    }
    still_works(&first)
}

/// A swap file of its own, in a folder that goes with it.
fn scratch_file() -> Result<(SwapFile, SwapDir, tempfile::TempDir), Failed> {
    let parent = tempfile::tempdir().map_err(err)?;
    let dir = SwapDir::create(parent.path()).map_err(err)?;
    Ok((dir.create_file().map_err(err)?, dir, parent))
}

/// `len` bytes of `byte` in device memory.
fn device_filled(
    dev: &CudaDevice,
    len: usize,
    byte: u8,
) -> Result<DeviceBuffer<CudaDevice>, Failed> {
    let mut host = dev.alloc_host(len).map_err(err)?;
    host.fill(byte);
    let done = dev
        .upload_blocking(host, dev.alloc(len).map_err(err)?, 0)
        .map_err(err)?;
    Ok(done.device)
}

/// Fails unless the device memory holds `len` bytes of `byte`.
fn expect_device(
    dev: &CudaDevice,
    buf: DeviceBuffer<CudaDevice>,
    byte: u8,
    what: &str,
) -> Result<DeviceBuffer<CudaDevice>, Failed> {
    let len = buf.len();
    let back = dev.download_blocking(buf, 0, vec![0u8; len]).map_err(err)?;
    if back.host.iter().any(|&b| b != byte) {
        return Err(format!("{what}: the device memory came back changed").into());
    }
    Ok(back.device)
}

/// A refused cuFile registration is `Unavailable` naming the file; the
/// next try registers it.
fn cufile_registration_failure_is_unavailable() -> Result<(), Failed> {
    let dev = CudaDevice::open().map_err(err)?;
    let (file, _dir, _parent) = scratch_file()?;
    arm(c"cuFileHandleRegister", CU_FILE_INTERNAL_ERROR)?;
    match dev.open_direct(&file) {
        Err(e) if e.is_unavailable() && e.to_string().contains("cuFile cannot register") => {}
        other => {
            return Err(format!("expected Unavailable from the registration, got {other:?}").into())
        }
    }
    dev.open_direct(&file).map_err(err)?;
    let buf = device_filled(&dev, 4096, 6)?;
    dev.write_direct(buf, 0, 4096, &file, 0)
        .map_err(err)?
        .wait()
        .map_err(err)?;
    still_works(&dev)
}

/// A cuFile operation refused when queued fails its submission, handing the
/// memory back intact.
fn cufile_refused_operation_hands_the_memory_back() -> Result<(), Failed> {
    let dev = CudaDevice::open().map_err(err)?;
    let (file, _dir, _parent) = scratch_file()?;
    let buf = device_filled(&dev, 8192, 4)?;
    arm(c"cuFileWriteAsync", CU_FILE_INTERNAL_ERROR)?;
    let buf = match dev.write_direct(buf, 0, 8192, &file, 0) {
        Err(refused) if matches!(refused.error, Error::Transfer { len: 8192, .. }) => {
            refused.value.device
        }
        Err(refused) => {
            return Err(format!("expected a Transfer error, got {}", refused.error).into())
        }
        Ok(_) => return Err("the write was queued although cuFile refused it".into()),
    };
    let buf = expect_device(&dev, buf, 4, "after a refused write")?;
    dev.write_direct(buf, 0, 8192, &file, 0)
        .map_err(err)?
        .wait()
        .map_err(err)?;
    still_works(&dev)
}

/// An I/O error found when the operation runs is `Io` with its errno; the
/// memory comes back and the next read works.
fn cufile_io_error_is_its_errno() -> Result<(), Failed> {
    let dev = CudaDevice::open().map_err(err)?;
    let (file, _dir, _parent) = scratch_file()?;
    let buf = device_filled(&dev, 8192, 8)?;
    dev.write_direct(buf, 0, 8192, &file, 0)
        .map_err(err)?
        .wait()
        .map_err(err)?;
    // Another buffer, of other bytes: the read must bring the file's.
    let buf = device_filled(&dev, 8192, 1)?;
    arm(c"cuFileReadAsync", EIO)?;
    let ticket = dev.read_direct(&file, 0, buf, 0, 8192).map_err(err)?;
    let buf = match ticket.wait() {
        Err(failed) => match &failed.error {
            Error::Io {
                cause, len: 8192, ..
            } if cause.raw_os_error() == Some(EIO as i32) => failed.value.device,
            other => return Err(format!("expected Io with EIO, got {other}").into()),
        },
        Ok(_) => return Err("the read succeeded although cuFile failed it".into()),
    };
    let done = dev
        .read_direct(&file, 0, buf, 0, 8192)
        .map_err(err)?
        .wait()
        .map_err(err)?;
    expect_device(&dev, done.device, 8, "read after the failure")?;
    still_works(&dev)
}

/// One test of the error paths.
type Test = fn() -> Result<(), Failed>;

fn main() -> ExitCode {
    let tests: [(&str, Test); 9] = [
        (
            "allocation_failure_is_out_of_memory",
            allocation_failure_is_out_of_memory,
        ),
        (
            "upload_failure_hands_the_buffers_back",
            upload_failure_hands_the_buffers_back,
        ),
        (
            "event_failure_is_a_transfer_error",
            event_failure_is_a_transfer_error,
        ),
        (
            "refused_registration_falls_back_to_host_alloc",
            refused_registration_falls_back_to_host_alloc,
        ),
        (
            "driver_refusing_a_registered_range_hands_the_buffer_back",
            driver_refusing_a_registered_range_hands_the_buffer_back,
        ),
        (
            "stream_failure_fails_opening_with_its_name",
            stream_failure_fails_opening_with_its_name,
        ),
        (
            "cufile_registration_failure_is_unavailable",
            cufile_registration_failure_is_unavailable,
        ),
        (
            "cufile_refused_operation_hands_the_memory_back",
            cufile_refused_operation_hands_the_memory_back,
        ),
        ("cufile_io_error_is_its_errno", cufile_io_error_is_its_errno),
    ];
    let mut args = Arguments::from_args();
    // One at a time: an armed fault is for the next call in the process.
    args.test_threads = Some(1);
    let required = std::env::var("TENSORSWAP_REQUIRE")
        .is_ok_and(|v| v.split(',').any(|n| n.trim() == "cuda-emulated"));
    let trials: Vec<Trial> = match on_emulator() {
        Ok(Run::Done(code)) => return code,
        Ok(Run::Here) => tests
            .into_iter()
            .map(|(name, test)| {
                Trial::test(format!("cuda-emulated::faults::{name}"), move || {
                    strict(test)
                })
            })
            .collect(),
        Err(reason) if required => {
            vec![Trial::test("cuda-emulated::faults", move || {
                Err(reason.into())
            })]
        }
        Err(reason) => {
            eprintln!("skipped: the emulated cuda fault tests: {reason}");
            tests
                .into_iter()
                .map(|(name, _)| {
                    Trial::test(format!("cuda-emulated::faults::{name}"), || Ok(()))
                        .with_ignored_flag(true)
                })
                .collect()
        }
    };
    libtest_mimic::run(&args, trials).exit_code()
}
