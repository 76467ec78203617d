//! The private folder swap files live in.

use std::ffi::CString;
use std::fs::{DirBuilder, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::dio::{self, DioSupport, DirectIo};
use super::file::SwapFile;
use super::folder::{remove_folder, DirInner};
use super::stale::{self, StaleSweep, FOLDER_PREFIX, KEPT_INFIX, LOCK_NAME};
use crate::sys::fs::{open_at, try_lock};
use crate::{Error, Result};

/// A private (`0700`) folder created for one user of the I/O engine, holding
/// its swap files.
///
/// - Files are named from internal ids, created `0600` with
///   `O_EXCL | O_NOFOLLOW` relative to a handle on the folder, so a planted
///   file or symlink makes creation fail instead of redirecting a write.
/// - Direct I/O is decided once per folder (see [`DirectIo`]).
/// - **Nothing is left behind, even by a crash.** A file is unlinked as soon
///   as its descriptors are open, so the kernel reclaims its bytes when the
///   last descriptor closes: on drop, or when the process dies, however it
///   dies (`SIGKILL`, the OOM killer). The folder, which must carry a name,
///   is removed when the last handle on it drops; a folder whose process died
///   first is removed by the next [`SwapDir::create`] in the same parent (see
///   [`SwapDir::remove_stale`]).
/// - The exception is a kept folder ([`DirOptions::keep`]): it is named
///   `tensorswap-kept-<pid>-<n>`, its files keep their names, and nothing
///   removes them.
///
/// ```
/// use tensorswap_core::SwapDir;
/// let parent = tempfile::tempdir()?;
/// let dir = SwapDir::create(parent.path())?;
/// let file = dir.create_file()?;
/// assert!(file.path().starts_with(dir.path()));
/// assert!(!file.path().exists(), "open, but already without a name");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SwapDir {
    inner: Arc<DirInner>,
}

/// How a [`SwapDir`] treats its files.
///
/// ```
/// use tensorswap_core::{DirOptions, DirectIo};
/// assert!(DirOptions::default().checksums, "integrity is the default");
/// let options = DirOptions::default().direct_io(DirectIo::Off).checksums(false);
/// assert!(!options.checksums);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirOptions {
    /// Direct-I/O policy (default [`DirectIo::Auto`]).
    pub direct_io: DirectIo,
    /// Record a CRC32C of every 4 KiB block written and verify every block a
    /// read returns bytes of, whole or in part, so flipped bytes on disk
    /// come back as [`Error::Checksum`](crate::Error::Checksum) instead of
    /// as data (default on; 6 bytes of memory per 4 KiB written). Bytes moved by
    /// direct storage (GPUDirect) bypass host memory and are not covered.
    pub checksums: bool,
    /// Leave the folder and its files on disk, with their names, when
    /// dropped and when the process dies (default off): for inspecting swap
    /// files after a run. Such folders are never removed by tensorswap.
    pub keep: bool,
}

impl Default for DirOptions {
    fn default() -> Self {
        Self {
            direct_io: DirectIo::Auto,
            checksums: true,
            keep: false,
        }
    }
}

impl DirOptions {
    /// Sets the direct-I/O policy.
    pub fn direct_io(mut self, policy: DirectIo) -> Self {
        self.direct_io = policy;
        self
    }

    /// Turns checksums on (the default) or off.
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
    /// (direct I/O where supported, checksums on, removed on drop).
    pub fn create(parent: impl AsRef<Path>) -> Result<Self> {
        Self::create_with(parent, DirOptions::default())
    }

    /// Creates a new private folder inside `parent` with `options`, after
    /// removing the folders there that dead processes left
    /// ([`SwapDir::remove_stale`]).
    pub fn create_with(parent: impl AsRef<Path>, options: DirOptions) -> Result<Self> {
        let parent = parent.as_ref();
        if let Err(err) = Self::remove_stale(parent) {
            tracing::debug!(%err, "no sweep for abandoned swap folders");
        }
        let (path, handle, lock) = make_private_dir(parent, options.keep)?;
        let fs_id = handle.metadata().map(|m| m.dev()).unwrap_or(0);
        let decided = DioSupport::probe_in(&handle, &path)
            .and_then(|support| dio::decide(options.direct_io, support, &path, fs_id));
        let dio = match decided {
            Ok(dio) => dio,
            Err(err) => {
                remove_folder(&path, &handle, lock.is_some());
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
                kept: options.keep,
                lock,
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

    /// Whether an engine splitting requests into `block_size` pieces keeps
    /// every piece on direct I/O here. When it does not (the block size is
    /// not a multiple of the direct-I/O alignment), a warning says so: each
    /// piece's unaligned part then goes through the page cache.
    ///
    /// ```
    /// let parent = tempfile::tempdir()?;
    /// let dir = tensorswap_core::SwapDir::create(parent.path())?;
    /// assert!(dir.check_block_size(1 << 20));
    /// assert_eq!(dir.check_block_size(3), dir.direct_io().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_block_size(&self, block_size: usize) -> bool {
        let Some(dio) = self.inner.dio else {
            return true;
        };
        let aligned = block_size % dio.align() == 0;
        if !aligned {
            tracing::warn!(
                block_size,
                alignment = dio.align(),
                folder = %self.inner.path.display(),
                "the block size is not a multiple of the direct-I/O alignment: every piece's unaligned part goes through the page cache"
            );
        }
        aligned
    }

    /// Where the file with id `id` lives (whether or not it exists).
    pub fn file_path(&self, id: u64) -> PathBuf {
        self.inner
            .path
            .join(DirInner::file_name(id).to_string_lossy().as_ref())
    }

    /// Fails with [`Error::Config`] when two of `folders` are the same
    /// folder (`A` and `A/`, or a symlink to it): striping over one drive
    /// twice only splits its bandwidth. Folders that cannot be looked up are
    /// left to the error of creating a swap folder in them.
    ///
    /// ```
    /// use tensorswap_core::{Error, SwapDir};
    /// let a = tempfile::tempdir()?;
    /// let again = a.path().join(".");
    /// let refused = SwapDir::check_distinct(&[a.path(), &again]);
    /// assert!(matches!(refused, Err(Error::Config { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_distinct<P: AsRef<Path>>(folders: &[P]) -> Result<()> {
        let mut seen: Vec<((u64, u64), &Path)> = Vec::with_capacity(folders.len());
        for folder in folders {
            let folder = folder.as_ref();
            let Ok(meta) = std::fs::metadata(folder) else {
                continue;
            };
            let id = (meta.dev(), meta.ino());
            if let Some((_, first)) = seen.iter().find(|(other, _)| *other == id) {
                return Err(Error::Config {
                    reason: format!(
                        "{} and {} are the same folder; give each folder (each drive) once",
                        first.display(),
                        folder.display()
                    ),
                });
            }
            seen.push((id, folder));
        }
        Ok(())
    }

    /// Removes the swap folders directly inside `parent` whose processes
    /// died without removing them, and says what it did. Called by every
    /// [`SwapDir::create`]; public for tools that clean a drive.
    ///
    /// Only folders named like this type names them, owned by this user,
    /// not in use (their lock file's `flock` can be taken) and holding
    /// nothing but what tensorswap writes are removed. Kept folders, live
    /// folders (of any process, in any PID namespace) and anything else are
    /// never touched. Fails only when `parent` cannot be listed.
    ///
    /// ```
    /// use tensorswap_core::SwapDir;
    /// let parent = tempfile::tempdir()?;
    /// let live = SwapDir::create(parent.path())?;
    /// let sweep = SwapDir::remove_stale(parent.path())?;
    /// assert_eq!(sweep.removed, 0);
    /// assert!(live.path().exists(), "a live folder is never removed");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_stale(parent: impl AsRef<Path>) -> Result<StaleSweep> {
        stale::remove_stale(parent.as_ref())
    }

    /// Creates a new, empty swap file with the next internal id.
    pub fn create_file(&self) -> Result<SwapFile> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        SwapFile::open(self.inner.clone(), id, true)
    }

    /// Opens the existing swap file with id `id` of a kept folder (files
    /// elsewhere have no names once created). A missing file is
    /// [`Error::File`] with `ENOENT`.
    pub fn open_file(&self, id: u64) -> Result<SwapFile> {
        SwapFile::open(self.inner.clone(), id, false)
    }
}

/// Creates `parent/tensorswap-<pid>-<n>` (`tensorswap-kept-<pid>-<n>` when
/// kept) with mode 0700, never reusing an existing entry, and opens it. A
/// folder that is not kept gets its lock file, locked.
fn make_private_dir(parent: &Path, kept: bool) -> Result<(PathBuf, File, Option<File>)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let infix = if kept { KEPT_INFIX } else { "" };
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!("{FOLDER_PREFIX}{infix}{}-{n}", std::process::id()));
        let error = |op: &'static str, cause: io::Error| Error::File {
            op,
            path: path.clone(),
            cause,
        };
        match DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(cause) => return Err(error("create swap folder", cause)),
        }
        let handle = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(handle) => handle,
            // A sweep took the new, still unlocked folder for abandoned.
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(cause) => {
                // Still empty: nothing but its name to take back.
                if let Err(err) = std::fs::remove_dir(&path) {
                    tracing::warn!(path = %path.display(), %err, "could not remove a swap folder that could not be opened");
                }
                return Err(error("open", cause));
            }
        };
        if kept {
            return Ok((path, handle, None));
        }
        match lock_folder(&handle) {
            Ok(Some(lock)) => return Ok((path, handle, Some(lock))),
            Ok(None) => continue,
            Err(cause) => {
                remove_folder(&path, &handle, false);
                return Err(error("create the lock file in", cause));
            }
        }
    }
}

/// Creates and locks the folder's lock file: `None` when a sweep removed the
/// folder meanwhile. Where the file system has no `flock` the folder goes
/// unlocked, which later sweeps (that cannot lock it either) leave alone.
fn lock_folder(handle: &File) -> io::Result<Option<File>> {
    let name = CString::new(LOCK_NAME).unwrap_or_default();
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let lock = match open_at(handle, &name, flags, 0o600) {
        Ok(lock) => lock,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    match try_lock(&lock) {
        Ok(true) => {}
        // A sweep holds it and is removing the folder.
        Ok(false) => return Ok(None),
        Err(err) => {
            tracing::debug!(%err, "no flock here; the swap folder is left unlocked");
            return Ok(Some(lock));
        }
    }
    // Unlinked before the lock was ours: a sweep removed the folder.
    Ok((lock.metadata()?.nlink() > 0).then_some(lock))
}
