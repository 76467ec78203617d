//! A swap file registered with cuFile, deregistered when the file drops.

use std::os::fd::AsRawFd;

use cudarc::cufile::{result, sys};
use tensorswap_core::{Error, Result, SwapFile};

use super::BACKEND;

/// The cuFile handle of one swap file's descriptor, kept as the file's
/// attachment ([`SwapFile::attachment`]) so that it is made once and
/// deregistered before the descriptor closes.
#[derive(Debug)]
pub(crate) struct Registered {
    handle: sys::CUfileHandle_t,
}

// SAFETY: a cuFile handle is an opaque token the thread-safe cuFile API
// accepts from any thread; we never dereference it.
unsafe impl Send for Registered {}
// SAFETY: as above; shared use only passes the token to cuFile.
unsafe impl Sync for Registered {}

impl Registered {
    /// Registers `file`'s `O_DIRECT` descriptor (its buffered one where the
    /// file system has no direct I/O; cuFile then works in compat mode).
    pub(crate) fn new(file: &SwapFile) -> Result<Self> {
        let descr = sys::CUfileDescr_t {
            type_: sys::CUfileFileHandleType::CU_FILE_HANDLE_TYPE_OPAQUE_FD,
            handle: sys::CUfileDescr_t__bindgen_ty_1 {
                fd: file.descriptor(true).as_raw_fd(),
            },
            fs_ops: std::ptr::null(),
        };
        let handle = result::handle_register(&descr).map_err(|e| Error::Unavailable {
            component: BACKEND,
            reason: format!(
                "cuFile cannot register {} ({}): {e:?}",
                file.path().display(),
                if file.is_direct() {
                    "O_DIRECT"
                } else {
                    "no O_DIRECT on this file system"
                }
            ),
        })?;
        Ok(Self { handle })
    }

    pub(crate) fn handle(&self) -> sys::CUfileHandle_t {
        self.handle
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        // SAFETY: the handle came from cuFileHandleRegister and is
        // deregistered once; the swap file drops this before closing the
        // descriptor, and in-flight operations hold the file.
        if let Err(err) = unsafe { result::handle_deregister(self.handle) } {
            tracing::warn!(?err, "cuFileHandleDeregister failed");
        }
    }
}
