//! One swap file: its descriptors (buffered and, where supported, direct),
//! its checksum log, and the name it gives up as soon as it is open.

use std::any::Any;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::checksum::ChecksumLog;
use super::dio::DioSupport;
use super::folder::DirInner;
use crate::sys::fs::{fallocate, unlink_at};
use crate::{Error, Result};

/// A file in a [`SwapDir`](crate::SwapDir), kept open for its whole life.
///
/// Cheap to clone (a shared handle). In-flight requests hold a clone, so the
/// descriptors stay open until they complete. Unless its folder is kept, the
/// file is unlinked as soon as it is open: its bytes are reclaimed when the
/// last handle drops or the process dies, and [`SwapFile::path`] is the name
/// it had.
#[derive(Clone, Debug)]
pub struct SwapFile {
    inner: Arc<FileInner>,
}

#[derive(Debug)]
pub(super) struct FileInner {
    /// The swap folder, kept alive while its files are, so it is removed
    /// after them (`None` for a file the caller named).
    pub(super) _dir: Option<Arc<DirInner>>,
    /// Direct-I/O alignment, when `direct` is open.
    pub(super) dio: Option<DioSupport>,
    /// Writes record, and reads verify, CRCs.
    pub(super) checksummed: bool,
    pub(super) id: u64,
    pub(super) path: PathBuf,
    pub(super) buffered: File,
    pub(super) direct: Option<File>,
    pub(super) checksums: ChecksumLog,
    /// Backends' per-file state ([`SwapFile::attachment`]).
    pub(super) attachments: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
}

impl SwapFile {
    pub(crate) fn open(dir: Arc<DirInner>, id: u64, create: bool) -> Result<Self> {
        let name = DirInner::file_name(id);
        let path = dir.path.join(name.to_string_lossy().as_ref());
        let err = |op: &'static str| {
            let path = path.clone();
            move |source: io::Error| Error::File {
                op,
                path,
                cause: source,
            }
        };
        let mut flags = libc::O_RDWR | libc::O_NOFOLLOW;
        if create {
            flags |= libc::O_CREAT | libc::O_EXCL;
        }
        let buffered =
            dir.open_at(&name, flags)
                .map_err(err(if create { "create" } else { "open" }))?;
        let direct = match dir.dio {
            Some(_) => dir
                .open_at(&name, libc::O_RDWR | libc::O_NOFOLLOW | libc::O_DIRECT)
                .map_err(err("open with O_DIRECT"))
                .and_then(|direct| {
                    same_file(&buffered, &direct).map_err(err("reopen"))?;
                    Ok(Some(direct))
                }),
            None => Ok(None),
        };
        if create && !dir.kept {
            // Both descriptors are open (or the second failed): the name is
            // no longer needed, and without it a crash leaves nothing.
            unlink_at(&dir.handle, &name).map_err(err("unlink"))?;
        }
        let direct = direct?;
        Ok(Self::from_inner(FileInner {
            dio: dir.dio,
            checksummed: dir.checksums,
            _dir: Some(dir),
            id,
            path,
            buffered,
            direct,
            checksums: ChecksumLog::default(),
            attachments: Mutex::default(),
        }))
    }

    pub(super) fn from_inner(inner: FileInner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The internal id the file is named after (0 for a file opened by the
    /// caller's name or descriptor, [`SwapFile::open_named`]).
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
        let cut = self.inner.buffered.set_len(len);
        let read = |at: u64, buf: &mut [u8]| self.read_block(at, buf);
        // Also after a failure: the length may have changed anyway.
        let recorded = self.inner.checksums.truncated(len, &read);
        cut.and(recorded)
            .map_err(|source| self.error("truncate", source))
    }

    /// Reads bytes from `offset` through the page cache until `buf` is full
    /// or the file ends: the count read. For the checksum log, which
    /// completes the blocks a request covers in part from the file.
    pub(crate) fn read_block(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self
                .inner
                .buffered
                .read_at(&mut buf[done..], offset + done as u64)
            {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
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

    /// A backend's state for this file (a GPUDirect Storage registration of
    /// its descriptor, say): the one of type `T` already attached, or the
    /// one `init` makes, attached from now on. Attachments are dropped with
    /// the file, before its descriptors close.
    ///
    /// `init` runs at most once per type; concurrent callers wait for it.
    /// Its error is returned and nothing is attached, so a later call tries
    /// again.
    pub fn attachment<T: Any + Send + Sync>(
        &self,
        init: impl FnOnce(&SwapFile) -> Result<T>,
    ) -> Result<Arc<T>> {
        let mut attached = self
            .inner
            .attachments
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = attached
            .iter()
            .find_map(|a| Arc::clone(a).downcast::<T>().ok())
        {
            return Ok(found);
        }
        let made = Arc::new(init(self)?);
        attached.push(Arc::clone(&made) as Arc<dyn Any + Send + Sync>);
        Ok(made)
    }

    /// Direct-I/O alignment (memory, offset) when the file uses direct I/O.
    pub(crate) fn dio_align(&self) -> Option<(usize, usize)> {
        self.inner.direct.as_ref()?;
        self.inner.dio.map(|d| (d.memory_align, d.offset_align))
    }

    /// True when writes record a CRC32C per 4 KiB block that reads verify.
    pub fn checksummed(&self) -> bool {
        self.inner.checksummed
    }

    pub(crate) fn checksums(&self) -> &ChecksumLog {
        &self.inner.checksums
    }

    pub(crate) fn error(&self, op: &'static str, source: io::Error) -> Error {
        Error::File {
            op,
            path: self.inner.path.clone(),
            cause: source,
        }
    }
}

impl Drop for FileInner {
    fn drop(&mut self) {
        // Attachments may refer to the descriptors, which close after this.
        self.attachments
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Fails unless both descriptors name the same inode.
pub(super) fn same_file(a: &File, b: &File) -> io::Result<()> {
    let (a, b) = (a.metadata()?, b.metadata()?);
    if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
        Ok(())
    } else {
        Err(io::Error::other(
            "the file was replaced while it was being opened",
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::SwapDir;

    /// Records, when dropped, whether the descriptor it watches was still open.
    struct Watch {
        fd: RawFd,
        open_at_drop: Arc<AtomicBool>,
    }

    impl Drop for Watch {
        fn drop(&mut self) {
            let open = crate::sys::fs::status_flags(self.fd).is_ok();
            self.open_at_drop.store(open, Ordering::SeqCst);
        }
    }

    #[test]
    fn an_attachment_is_made_once_retried_after_an_error_and_dropped_before_the_descriptors_close()
    {
        let parent = tempfile::tempdir().unwrap();
        let dir = SwapDir::create(parent.path()).unwrap();
        let file = dir.create_file().unwrap();

        let refused = file.attachment::<Watch>(|_| {
            Err(Error::Config {
                reason: "no".into(),
            })
        });
        assert!(matches!(refused, Err(Error::Config { .. })));

        let open_at_drop = Arc::new(AtomicBool::new(false));
        let make = |f: &SwapFile| {
            Ok(Watch {
                fd: f.descriptor(true).as_raw_fd(),
                open_at_drop: Arc::clone(&open_at_drop),
            })
        };
        let first = file.attachment(make).unwrap();
        let again = file
            .clone()
            .attachment::<Watch>(|_| panic!("made twice"))
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        // Another type gets its own slot.
        assert_eq!(*file.attachment(|_| Ok(7u32)).unwrap(), 7);

        drop((first, again));
        assert!(!open_at_drop.load(Ordering::SeqCst), "dropped early");
        drop(file);
        assert!(
            open_at_drop.load(Ordering::SeqCst),
            "descriptor closed first"
        );
    }
}
