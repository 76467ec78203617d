//! GPUDirect Storage through cuFile (the `gds` feature): swap files read
//! into and written from device memory with stream-ordered
//! `cuFileReadAsync` / `cuFileWriteAsync`, no host copy in between.
//!
//! - The cuFile driver is opened once per process, after checking that
//!   libcufile and every entry point we call are there (cudarc would panic).
//! - Each swap file is registered once, as an attachment of the file that
//!   is deregistered before its descriptor closes.
//! - Without the `nvidia-fs` kernel driver, cuFile runs in its compat mode
//!   (POSIX I/O through its own host buffers); [`mode`] says which.

mod library;
mod op;
mod registered;

use std::sync::{Arc, OnceLock};

use cudarc::cufile::result;
use cudarc::driver::CudaContext;
use tensorswap_core::{Error, Result, SwapFile};

pub(crate) use op::FileOp;
pub(crate) use registered::Registered;

/// The name GDS failures carry.
pub(crate) const BACKEND: &str = "gds";

/// How cuFile moves bytes here, once its driver is open.
#[derive(Debug, Clone)]
struct Driver {
    mode: String,
}

/// Opens the cuFile driver once per process (with `ctx` current).
fn driver(ctx: &CudaContext) -> Result<&'static Driver> {
    static DRIVER: OnceLock<std::result::Result<Driver, String>> = OnceLock::new();
    let opened = DRIVER.get_or_init(|| {
        library::check()?;
        ctx.bind_to_thread()
            .map_err(|e| format!("binding the context: {}", crate::driver::describe(&e)))?;
        result::driver_open().map_err(|e| format!("cuFileDriverOpen failed: {e:?}"))?;
        let props =
            result::driver_get_properties().map_err(|e| format!("cuFile properties: {e:?}"))?;
        let (major, minor) = (props.nvfs.major_version, props.nvfs.minor_version);
        let mode = if (major, minor) == (0, 0) {
            "cuFile compat mode: the nvidia-fs driver is not loaded, so cuFile moves the bytes \
             through host memory"
                .to_owned()
        } else {
            format!("GPUDirect Storage (nvidia-fs {major}.{minor})")
        };
        tracing::info!(%mode, "cuFile driver open");
        Ok(Driver { mode })
    });
    opened.as_ref().map_err(|reason| Error::Unavailable {
        component: BACKEND,
        reason: reason.clone(),
    })
}

/// How direct storage runs on this machine (opening cuFile if needed), or
/// why it cannot.
pub(crate) fn mode(ctx: &CudaContext) -> Result<String> {
    driver(ctx).map(|d| d.mode.clone())
}

/// `file`'s cuFile registration, made on first use.
pub(crate) fn register(ctx: &CudaContext, file: &SwapFile) -> Result<Arc<Registered>> {
    driver(ctx)?;
    file.attachment(Registered::new)
}
