//! An open swap folder, shared by its [`SwapDir`](crate::SwapDir) and its
//! files: the descriptor files are opened at, the options they follow, and
//! the folder's removal when the last of them is dropped.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use super::dio::DioSupport;
use super::stale::LOCK_NAME;
use crate::sys::fs::{open_at, unlink_at};

/// An open swap folder: its descriptor, path and options, shared by the
/// [`SwapDir`](crate::SwapDir) and its files; the folder is removed (unless
/// kept) when the last of them goes.
#[derive(Debug)]
pub(crate) struct DirInner {
    /// The folder's path.
    pub(crate) path: PathBuf,
    pub(crate) handle: File,
    pub(crate) dio: Option<DioSupport>,
    pub(crate) checksums: bool,
    /// Files keep their names and nothing is removed.
    pub(crate) kept: bool,
    /// The `flock`ed lock file that marks a folder that is not kept as in use.
    pub(crate) lock: Option<File>,
    /// The id of the next file created.
    pub(crate) next_id: AtomicU64,
}

impl DirInner {
    pub(crate) fn file_name(id: u64) -> CString {
        CString::new(format!("{id:08}.swap")).unwrap_or_default()
    }

    pub(crate) fn open_at(&self, name: &CString, flags: libc::c_int) -> io::Result<File> {
        open_at(&self.handle, name, flags, 0o600)
    }
}

impl Drop for DirInner {
    fn drop(&mut self) {
        if !self.kept {
            remove_folder(&self.path, &self.handle, self.lock.is_some());
        }
    }
}

/// Removes a folder that is not kept: its lock file (when it has one), then
/// the folder, which holds nothing else by then.
pub(super) fn remove_folder(path: &Path, handle: &File, locked: bool) {
    let lock = CString::new(LOCK_NAME).unwrap_or_default();
    if locked {
        if let Err(err) = unlink_at(handle, &lock) {
            tracing::warn!(path = %path.display(), %err, "could not remove the swap folder's lock file");
        }
    }
    match std::fs::remove_dir(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), %err, "could not remove the swap folder");
        }
        _ => {}
    }
}
