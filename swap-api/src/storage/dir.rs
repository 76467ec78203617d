//! The private folder swap files live in.

use std::ffi::CString;
use std::fs::{DirBuilder, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::dio::{self, DioSupport, DirectIo};
use super::file::SwapFile;
use crate::sys::fs::open_at;
use crate::{Error, Result};

/// A private (`0700`) folder created for one user of the I/O engine, holding
/// its swap files.
///
/// - Files are named from internal ids, created `0600` with
///   `O_EXCL | O_NOFOLLOW` relative to a handle on the folder, so a planted
///   file or symlink makes creation fail instead of redirecting a write.
/// - Direct I/O is decided once per folder (see [`DirectIo`]).
/// - Files are removed when their last [`SwapFile`] handle drops, and the
///   folder when the last handle on it drops, unless [`SwapDir::keep`] is set.
///
/// ```
/// use swap_api::SwapDir;
/// let parent = tempfile::tempdir()?;
/// let dir = SwapDir::create(parent.path())?;
/// let file = dir.create_file()?;
/// assert!(file.path().starts_with(dir.path()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SwapDir {
    inner: Arc<DirInner>,
}

#[derive(Debug)]
pub(crate) struct DirInner {
    pub(crate) path: PathBuf,
    pub(crate) handle: File,
    pub(crate) dio: Option<DioSupport>,
    pub(crate) checksums: bool,
    pub(crate) keep: AtomicBool,
    next_id: AtomicU64,
}

/// How a [`SwapDir`] treats its files.
///
/// ```
/// use swap_api::{DirOptions, DirectIo};
/// let options = DirOptions::default().direct_io(DirectIo::Off).checksums(true);
/// assert!(options.checksums);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirOptions {
    /// Direct-I/O policy (default [`DirectIo::Auto`]).
    pub direct_io: DirectIo,
    /// Record a CRC32C per write and verify it when exactly that range is
    /// read back (default off).
    pub checksums: bool,
    /// Leave the folder and its files on disk when dropped (default off).
    pub keep: bool,
}

impl DirOptions {
    /// Sets the direct-I/O policy.
    pub fn direct_io(mut self, policy: DirectIo) -> Self {
        self.direct_io = policy;
        self
    }

    /// Turns checksums on or off.
    pub fn checksums(mut self, on: bool) -> Self {
        self.checksums = on;
        self
    }

    /// Keeps the files after the handles drop.
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }
}

impl SwapDir {
    /// Creates a new private folder inside `parent` with default options
    /// (direct I/O where supported, no checksums, removed on drop).
    pub fn create(parent: impl AsRef<Path>) -> Result<Self> {
        Self::create_with(parent, DirOptions::default())
    }

    /// Creates a new private folder inside `parent` with `options`.
    pub fn create_with(parent: impl AsRef<Path>, options: DirOptions) -> Result<Self> {
        let parent = parent.as_ref();
        let path = make_private_dir(parent)?;
        let handle = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| Error::File {
                op: "open",
                path: path.clone(),
                cause: source,
            })?;
        let fs_id = handle.metadata().map(|m| m.dev()).unwrap_or(0);
        let decided = DioSupport::probe_in(&handle, &path)
            .and_then(|support| dio::decide(options.direct_io, support, &path, fs_id));
        let dio = match decided {
            Ok(dio) => dio,
            Err(err) => {
                let _ = std::fs::remove_dir(&path);
                return Err(err);
            }
        };
        tracing::debug!(path = %path.display(), ?dio, "swap folder created");
        Ok(Self {
            inner: Arc::new(DirInner {
                path,
                handle,
                dio,
                checksums: options.checksums,
                keep: AtomicBool::new(options.keep),
                next_id: AtomicU64::new(0),
            }),
        })
    }

    /// The folder's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The direct-I/O alignment files here use, or `None` for buffered I/O.
    pub fn direct_io(&self) -> Option<DioSupport> {
        self.inner.dio
    }

    /// Alignment that buffers, offsets and lengths should have so that every
    /// byte goes through direct I/O (at least the page size).
    pub fn alignment(&self) -> usize {
        self.inner
            .dio
            .map_or(1, |d| d.align())
            .max(crate::sys::page_size())
    }

    /// Where the file with id `id` lives (whether or not it exists).
    pub fn file_path(&self, id: u64) -> PathBuf {
        self.inner
            .path
            .join(DirInner::file_name(id).to_string_lossy().as_ref())
    }

    /// Keeps the folder and its files on disk after the handles drop.
    pub fn keep(&self, keep: bool) {
        self.inner.keep.store(keep, Ordering::Relaxed);
    }

    /// Creates a new, empty swap file with the next internal id.
    pub fn create_file(&self) -> Result<SwapFile> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        SwapFile::open(self.inner.clone(), id, true)
    }

    /// Opens the existing swap file with id `id` (one this folder created
    /// earlier). A missing file is [`Error::File`] with `ENOENT`.
    pub fn open_file(&self, id: u64) -> Result<SwapFile> {
        SwapFile::open(self.inner.clone(), id, false)
    }
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
        if self.keep.load(Ordering::Relaxed) {
            return;
        }
        if let Err(err) = std::fs::remove_dir(&self.path) {
            tracing::warn!(path = %self.path.display(), %err, "could not remove the swap folder");
        }
    }
}

/// Creates `parent/tensorswap-<pid>-<n>` with mode 0700, never reusing an
/// existing entry.
fn make_private_dir(parent: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!("tensorswap-{}-{n}", std::process::id()));
        match DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(Error::File {
                    op: "create swap folder",
                    path,
                    cause: source,
                })
            }
        }
    }
}
