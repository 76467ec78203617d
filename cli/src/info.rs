//! `tensorswap info`: what this build and this machine can do.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use tensorswap::{Device, DioSupport, COMPILED_BACKENDS};
use tensorswap_core::sys::aligned;
use tensorswap_core::sys::memlock::MemlockLimit;
use tensorswap_core::sys::volume::Volume;

use super::size::{show, show_approx};

/// Options of `tensorswap info`.
#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// Folder whose file system, free space and direct-I/O support to report
    /// (a small probe file is created and removed). Give it once per drive a
    /// striped store would use.
    #[arg(long = "folder", default_values_os_t = [std::env::temp_dir()])]
    folders: Vec<PathBuf>,
}

pub(crate) fn run(args: &InfoArgs, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "tensorswap {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(
        out,
        "backends compiled in: {}",
        COMPILED_BACKENDS.join(", ")
    )?;
    devices(out)?;
    #[cfg(feature = "cuda")]
    cuda_devices(out)?;
    #[cfg(feature = "wgpu")]
    wgpu_adapters(out)?;
    host(out)?;
    writeln!(out, "swap folders:")?;
    for folder in &args.folders {
        swap_folder(folder, out)?;
    }
    match tensorswap::open_best() {
        Ok(selection) => writeln!(out, "default device: {selection}")?,
        Err(error) => writeln!(out, "default device: none: {error}")?,
    }
    Ok(())
}

/// Each compiled-in backend's device and its capabilities, or why it does not open.
fn devices(out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "devices:")?;
    for &backend in COMPILED_BACKENDS {
        match tensorswap::open(backend) {
            Ok(dev) => device(backend, &dev, out)?,
            Err(error) => writeln!(out, "  {backend}: not available: {error}")?,
        }
    }
    Ok(())
}

fn device(backend: &str, dev: &impl Device, out: &mut impl Write) -> anyhow::Result<()> {
    let info = dev.info();
    let caps = dev.capabilities();
    let yes = |b: bool| if b { "yes" } else { "no" };
    writeln!(out, "  {backend}: {}", info.name)?;
    if let Some(capacity) = info.memory_capacity {
        writeln!(
            out,
            "    memory capacity:    {} ({capacity} bytes)",
            show(capacity)
        )?;
    }
    writeln!(out, "    pinned host memory: {}", yes(caps.pinned_host))?;
    writeln!(out, "    async transfers:    {}", yes(caps.async_transfers))?;
    writeln!(
        out,
        "    ordered transfers:  {}",
        yes(caps.ordered_transfers)
    )?;
    writeln!(out, "    direct storage:     {}", yes(caps.direct_storage))?;
    writeln!(out, "    max allocation:     {} bytes", caps.max_allocation)?;
    writeln!(out, "    host alignment:     {} bytes", caps.host_alignment)?;
    Ok(())
}

/// The CUDA devices with their PCIe links, and the GPUDirect Storage mode.
#[cfg(feature = "cuda")]
fn cuda_devices(out: &mut impl Write) -> anyhow::Result<()> {
    let devices = match tensorswap::cuda::devices() {
        Ok(devices) => devices,
        Err(error) => {
            writeln!(out, "cuda devices: none: {error}")?;
            return Ok(());
        }
    };
    writeln!(out, "cuda devices: {}", devices.len())?;
    if tensorswap::cuda::emulated::is_emulated() {
        writeln!(
            out,
            "  driver: EMULATED on the CPU (tensorswap's cuda-emulator, opted in by \
             TENSORSWAP_CUDA_EMULATOR): no GPU is in use"
        )?;
    }
    for device in &devices {
        writeln!(out, "  {device}")?;
    }
    #[cfg(feature = "gds")]
    if !devices.is_empty() {
        let mode = tensorswap::cuda::CudaDevice::open().and_then(|d| d.gds_mode());
        match mode {
            Ok(mode) => writeln!(out, "  GPUDirect Storage: {mode}")?,
            Err(error) => writeln!(
                out,
                "  GPUDirect Storage: unavailable ({error}); `use_gds` swaps through pinned memory"
            )?,
        }
    }
    Ok(())
}

/// The wgpu adapters, or how to get lavapipe.
#[cfg(feature = "wgpu")]
fn wgpu_adapters(out: &mut impl Write) -> anyhow::Result<()> {
    let adapters = tensorswap::wgpu::adapters(None);
    writeln!(out, "wgpu adapters: {}", adapters.len())?;
    for adapter in &adapters {
        writeln!(out, "  {adapter}")?;
    }
    if adapters.is_empty() {
        writeln!(
            out,
            "  (none: without a GPU, `apt-get install mesa-vulkan-drivers libvulkan1` \
             provides lavapipe)"
        )?;
    }
    Ok(())
}

/// The page-locking limit, huge pages and io_uring.
fn host(out: &mut impl Write) -> anyhow::Result<()> {
    let limit = MemlockLimit::current();
    let lockable = limit
        .lockable()
        .map_or("unlimited".to_string(), |b| format!("{b} bytes"));
    writeln!(
        out,
        "page-locking: {limit}; this process may lock: {lockable}"
    )?;
    match aligned::transparent_huge_pages().as_deref() {
        Some(mode @ ("always" | "madvise")) => writeln!(
            out,
            "huge pages: transparent huge pages {mode}; buffers of {} and more ask for them",
            show(aligned::HUGE_PAGE)
        )?,
        Some(mode) => writeln!(
            out,
            "huge pages: transparent huge pages {mode}; buffers stay in {}-byte pages \
             (direct-I/O requests split into more segments; `echo madvise > \
             /sys/kernel/mm/transparent_hugepage/enabled` as root)",
            tensorswap_core::sys::page_size()
        )?,
        None => writeln!(
            out,
            "huge pages: the kernel does not say (no transparent huge pages)"
        )?,
    }
    match tensorswap::UringEngine::available() {
        Ok(()) => writeln!(out, "io_uring: available")?,
        Err(reason) => writeln!(
            out,
            "io_uring: not available ({reason}); the thread-pool engine is used"
        )?,
    }
    Ok(())
}

/// A folder's file system, free space and direct I/O.
fn swap_folder(folder: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "  {}", folder.display())?;
    match Volume::of(folder) {
        Ok(v) => writeln!(
            out,
            "    file system: {}, {} free of {}",
            v.file_system,
            show_approx(v.available as usize),
            show_approx(v.total as usize)
        )?,
        Err(error) => writeln!(out, "    file system: unknown: {error}")?,
    }
    match DioSupport::probe(folder) {
        Ok(dio) if dio.supported => writeln!(
            out,
            "    direct I/O: supported; alignment memory {} bytes, offset/length {} bytes ({})",
            dio.memory_align,
            dio.offset_align,
            if dio.source == "statx" {
                "statx STATX_DIOALIGN"
            } else {
                "not reported; 4096 assumed"
            }
        )?,
        Ok(_) => writeln!(out, "    direct I/O: not supported; buffered I/O is used")?,
        Err(error) => writeln!(out, "    direct I/O: unknown: {error}")?,
    }
    Ok(())
}
