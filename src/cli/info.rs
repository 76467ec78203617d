//! `tensorswap info`: what this build and this machine can do.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use tensorswap::sys::memlock::MemlockLimit;
use tensorswap::{Device, DioSupport, COMPILED_BACKENDS};

use super::size::show;

/// Options of `tensorswap info`.
#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// Folder whose direct-I/O support to report (a small probe file is created and removed).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    folder: PathBuf,
}

pub(crate) fn run(args: &InfoArgs, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "tensorswap {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(
        out,
        "backends compiled in: {}",
        COMPILED_BACKENDS.join(", ")
    )?;
    writeln!(out, "devices:")?;
    for &backend in COMPILED_BACKENDS {
        let dev = match tensorswap::open(backend) {
            Ok(dev) => dev,
            Err(error) => {
                writeln!(out, "  {backend}: not available: {error}")?;
                continue;
            }
        };
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
    }
    #[cfg(feature = "cuda")]
    match tensorswap::cuda::devices() {
        Ok(devices) => {
            writeln!(out, "cuda devices: {}", devices.len())?;
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
        }
        Err(error) => writeln!(out, "cuda devices: none: {error}")?,
    }
    #[cfg(feature = "wgpu")]
    {
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
    }
    let limit = MemlockLimit::current();
    let lockable = limit
        .lockable()
        .map_or("unlimited".to_string(), |b| format!("{b} bytes"));
    writeln!(
        out,
        "page-locking: {limit}; this process may lock: {lockable}"
    )?;
    #[cfg(target_os = "linux")]
    match tensorswap::UringEngine::available() {
        Ok(()) => writeln!(out, "io_uring: available")?,
        Err(reason) => writeln!(
            out,
            "io_uring: not available ({reason}); the thread-pool engine is used"
        )?,
    }
    let folder = args.folder.display();
    match DioSupport::probe(&args.folder) {
        Ok(dio) if dio.supported => writeln!(
            out,
            "direct I/O in {folder}: supported; alignment memory {} bytes, offset/length {} bytes ({})",
            dio.memory_align,
            dio.offset_align,
            if dio.source == "statx" { "statx STATX_DIOALIGN" } else { "not reported; 4096 assumed" }
        )?,
        Ok(_) => writeln!(out, "direct I/O in {folder}: not supported; buffered I/O is used")?,
        Err(error) => writeln!(out, "direct I/O in {folder}: unknown: {error}")?,
    }
    match tensorswap::open_best() {
        Ok(selection) => writeln!(out, "default device: {selection}")?,
        Err(error) => writeln!(out, "default device: none: {error}")?,
    }
    Ok(())
}
