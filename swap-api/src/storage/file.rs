//! One swap file: its descriptors (buffered and, where supported, direct),
//! its checksum log, and its removal on drop.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::checksum::ChecksumLog;
use super::dir::DirInner;
use crate::sys::fs::{fallocate, unlink_at};
use crate::{Error, Result};

/// A file in a [`SwapDir`](crate::SwapDir), kept open for its whole life.
///
/// Cheap to clone (a shared handle). In-flight requests hold a clone, so the
/// descriptors stay open until they complete. The file is removed when the
/// last handle drops, unless its folder is kept.
#[derive(Clone, Debug)]
pub struct SwapFile {
    inner: Arc<FileInner>,
}

#[derive(Debug)]
struct FileInner {
    dir: Arc<DirInner>,
    id: u64,
    name: CString,
    path: PathBuf,
    buffered: File,
    direct: Option<File>,
    checksums: ChecksumLog,
}

impl SwapFile {
    pub(crate) fn open(dir: Arc<DirInner>, id: u64, create: bool) -> Result<Self> {
        let name = DirInner::file_name(id);
        let path = dir.path.join(name.to_string_lossy().as_ref());
        let err = |op: &'static str| {
            let path = path.clone();
            move |source: io::Error| Error::File { op, path, source }
        };
        let mut flags = libc::O_RDWR | libc::O_NOFOLLOW;
        if create {
            flags |= libc::O_CREAT | libc::O_EXCL;
        }
        let buffered =
            dir.open_at(&name, flags)
                .map_err(err(if create { "create" } else { "open" }))?;
        let direct = match dir.dio {
            Some(_) => {
                let direct = dir
                    .open_at(&name, libc::O_RDWR | libc::O_NOFOLLOW | libc::O_DIRECT)
                    .map_err(err("open with O_DIRECT"))?;
                same_file(&buffered, &direct).map_err(err("reopen"))?;
                Some(direct)
            }
            None => None,
        };
        Ok(Self {
            inner: Arc::new(FileInner {
                dir,
                id,
                name,
                path,
                buffered,
                direct,
                checksums: ChecksumLog::default(),
            }),
        })
    }

    /// The internal id the file is named after.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The file's path (for messages; all access goes through open descriptors).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// True when aligned requests on this file bypass the page cache.
    pub fn is_direct(&self) -> bool {
        self.inner.direct.is_some()
    }

    /// Current length in bytes.
    pub fn len(&self) -> Result<u64> {
        self.inner
            .buffered
            .metadata()
            .map(|m| m.len())
            .map_err(|source| self.error("stat", source))
    }

    /// True when the file holds no bytes.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Truncates or extends (with zeros, sparse) the file to `len` bytes.
    pub fn set_len(&self, len: u64) -> Result<()> {
        self.inner
            .checksums
            .forget(len, u64::MAX.saturating_sub(len));
        self.inner
            .buffered
            .set_len(len)
            .map_err(|source| self.error("truncate", source))
    }

    /// Reserves disk space for the first `len` bytes (`fallocate`), so later
    /// writes cannot fail with `ENOSPC`. Returns `false` where the file system
    /// cannot preallocate (the file is then unchanged).
    pub fn preallocate(&self, len: u64) -> Result<bool> {
        match fallocate(&self.inner.buffered, len) {
            Ok(()) => Ok(true),
            Err(err) if err.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(false),
            Err(source) => Err(self.error("preallocate", source)),
        }
    }

    /// Descriptor for a piece: the `O_DIRECT` one when asked for and present.
    pub(crate) fn fd(&self, direct: bool) -> RawFd {
        self.descriptor(direct).as_raw_fd()
    }

    /// The file's descriptor for backends that do their own I/O on it
    /// (GPUDirect Storage registers it with its driver): the `O_DIRECT` one
    /// when `direct` is asked for and the file has one, else the buffered one.
    /// It stays open as long as any clone of this `SwapFile` lives.
    pub fn descriptor(&self, direct: bool) -> BorrowedFd<'_> {
        match (&self.inner.direct, direct) {
            (Some(file), true) => file.as_fd(),
            _ => self.inner.buffered.as_fd(),
        }
    }

    /// Direct-I/O alignment (memory, offset) when the file uses direct I/O.
    pub(crate) fn dio_align(&self) -> Option<(usize, usize)> {
        self.inner.direct.as_ref()?;
        self.inner.dir.dio.map(|d| (d.memory_align, d.offset_align))
    }

    /// True when writes record a CRC32C that reads of the same range verify.
    pub fn checksummed(&self) -> bool {
        self.inner.dir.checksums
    }

    pub(crate) fn checksums(&self) -> &ChecksumLog {
        &self.inner.checksums
    }

    pub(crate) fn error(&self, op: &'static str, source: io::Error) -> Error {
        Error::File {
            op,
            path: self.inner.path.clone(),
            source,
        }
    }
}

impl Drop for FileInner {
    fn drop(&mut self) {
        if self.dir.keep.load(Ordering::Relaxed) {
            return;
        }
        if let Err(err) = unlink_at(&self.dir.handle, &self.name) {
            if err.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), %err, "could not remove a swap file");
            }
        }
    }
}

/// Fails unless both descriptors name the same inode.
fn same_file(a: &File, b: &File) -> io::Result<()> {
    let (a, b) = (a.metadata()?, b.metadata()?);
    if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
        Ok(())
    } else {
        Err(io::Error::other(
            "the file was replaced while it was being opened",
        ))
    }
}
