//! Files the caller names (a `.safetensors` model, a checkpoint, another
//! tool's file), opened by path or from a descriptor the caller lends, for
//! the same engines and tickets as swap files; never unlinked, never
//! truncated unless asked.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::checksum::ChecksumLog;
use super::dio::{DioSupport, DirectIo};
use super::file::{same_file, FileInner, SwapFile};
use crate::sys::fs::{status_flags, statx_dio};
use crate::{Error, Result};

/// How [`SwapFile::open_named`] and [`SwapFile::from_fd`] treat a file the
/// caller names.
///
/// ```
/// use tensorswap_core::{DirectIo, NamedOptions};
/// let read = NamedOptions::read_only();
/// assert!(!read.write && !read.create && !read.truncate);
/// let write = NamedOptions::read_write().create(true).direct_io(DirectIo::Off);
/// assert!(write.write && write.create && !write.truncate);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamedOptions {
    /// Open for writing too (default: read only).
    pub write: bool,
    /// Create the file when it is missing (needs `write`).
    pub create: bool,
    /// With `create`: fail with `AlreadyExists` unless the file is new
    /// (`O_EXCL`), so the caller knows the file is of its own making.
    pub exclusive: bool,
    /// Cut the file to zero length on opening (needs `write`; default off:
    /// an existing file keeps its bytes).
    pub truncate: bool,
    /// Direct-I/O policy (default [`DirectIo::Auto`]: direct where the file
    /// system allows, the page cache elsewhere and for unaligned parts).
    pub direct_io: DirectIo,
    /// Record a CRC32C of every 4 KiB block this process writes and check
    /// it on reads (default on). Bytes written by others have no CRC and are
    /// not checked.
    pub checksums: bool,
}

impl NamedOptions {
    /// Read only; the file must exist.
    pub fn read_only() -> Self {
        Self {
            write: false,
            create: false,
            exclusive: false,
            truncate: false,
            direct_io: DirectIo::Auto,
            checksums: true,
        }
    }

    /// Read and write; the file must exist unless [`create`](Self::create).
    pub fn read_write() -> Self {
        Self {
            write: true,
            ..Self::read_only()
        }
    }

    /// Creates the file when it is missing.
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// With [`create`](Self::create): only a new file; an existing one is
    /// an [`Error::File`] whose cause is `AlreadyExists`.
    pub fn exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// Cuts the file to zero length on opening.
    pub fn truncate(mut self, truncate: bool) -> Self {
        self.truncate = truncate;
        self
    }

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
}

impl SwapFile {
    /// Opens the file at `path` for the engines: the same requests, tickets
    /// and direct-I/O handling as a swap file. It is never unlinked, and
    /// never truncated unless [`NamedOptions::truncate`] asks.
    ///
    /// Direct I/O is probed on the file itself (`statx(STATX_DIOALIGN)` and
    /// an `O_DIRECT` open), so read-only folders work and no probe file is
    /// made.
    ///
    /// ```
    /// use tensorswap_core::{IoEngineExt, NamedOptions, SwapFile, ThreadEngine};
    /// let folder = tempfile::tempdir()?;
    /// let path = folder.path().join("weights.bin");
    /// std::fs::write(&path, vec![7u8; 10_000])?;
    /// let engine = ThreadEngine::new(&Default::default())?;
    /// let file = SwapFile::open_named(&path, NamedOptions::read_only())?;
    /// let back = engine.read(&file, 4096, vec![0u8; 5000])?.wait()?;
    /// assert!(back.buf.iter().all(|&b| b == 7));
    /// drop(file);
    /// assert_eq!(std::fs::metadata(&path)?.len(), 10_000, "untouched");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_named(path: impl AsRef<Path>, options: NamedOptions) -> Result<Self> {
        let path = path.as_ref();
        let error = |op: &'static str| {
            move |cause: io::Error| Error::File {
                op,
                path: path.to_path_buf(),
                cause,
            }
        };
        if (options.create || options.truncate) && !options.write {
            return Err(Error::Config {
                reason: format!(
                    "opening {}: create and truncate need NamedOptions::read_write()",
                    path.display()
                ),
            });
        }
        let buffered = OpenOptions::new()
            .read(true)
            .write(options.write)
            .create(options.create)
            .create_new(options.create && options.exclusive)
            .truncate(options.truncate)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(error(if options.create { "create" } else { "open" }))?;
        named(buffered, path.to_path_buf(), path.to_path_buf(), options)
    }

    /// Like [`open_named`](Self::open_named), on a descriptor the caller
    /// lends: it is duplicated, so the caller's descriptor stays theirs and
    /// is never closed here. `options.write` must match how it was opened;
    /// `create` and `truncate` do not apply. A descriptor opened with
    /// `O_APPEND`, or for reading only, is refused for writing (Linux
    /// appends every positional write to the first, whatever its offset).
    /// An `O_DIRECT` descriptor is fine: unaligned parts go through a
    /// buffered descriptor of the same file, opened with the same access.
    pub fn from_fd(fd: BorrowedFd<'_>, options: NamedOptions) -> Result<Self> {
        let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let flags = status_flags(fd.as_raw_fd()).unwrap_or(-1);
        if options.write && flags >= 0 && flags & libc::O_APPEND != 0 {
            return Err(Error::Config {
                reason: format!(
                    "{}: the descriptor was opened with O_APPEND, which makes every positional write an append; open it without O_APPEND to write through the engines",
                    path.display()
                ),
            });
        }
        let access = flags & libc::O_ACCMODE;
        if options.write && flags >= 0 && access == libc::O_RDONLY {
            return Err(Error::Config {
                reason: format!(
                    "{}: the descriptor is open for reading only; writing through the engines needs one opened for writing",
                    path.display()
                ),
            });
        }
        if options.checksums && flags >= 0 && access == libc::O_WRONLY {
            return Err(Error::Config {
                reason: format!(
                    "{}: the descriptor is open for writing only; checksums complete the blocks a request covers in part by reading the file, so open it for reading and writing, or turn checksums off",
                    path.display()
                ),
            });
        }
        let buffered = if flags >= 0 && flags & libc::O_DIRECT != 0 {
            // The caller's descriptor takes only aligned requests; the
            // buffered one must take any, so the file is opened again
            // without O_DIRECT, with the descriptor's own access.
            OpenOptions::new()
                .read(access != libc::O_WRONLY)
                .write(access != libc::O_RDONLY)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
                .map_err(|cause| Error::File {
                    op: "reopen without O_DIRECT",
                    path: path.clone(),
                    cause,
                })?
        } else {
            fd.try_clone_to_owned()
                .map(File::from)
                .map_err(|cause| Error::File {
                    op: "duplicate the descriptor of",
                    path: path.clone(),
                    cause,
                })?
        };
        // Reopening our duplicate (not the caller's number) gets the
        // O_DIRECT descriptor of the same file.
        let reopen = PathBuf::from(format!("/proc/self/fd/{}", buffered.as_raw_fd()));
        named(
            buffered,
            path,
            reopen,
            options.create(false).exclusive(false).truncate(false),
        )
    }
}

/// The rest of opening a named file: it must be a regular file; then its
/// direct descriptor, where the policy and the file system allow.
fn named(
    buffered: File,
    path: PathBuf,
    reopen: PathBuf,
    options: NamedOptions,
) -> Result<SwapFile> {
    let error = |op: &'static str, cause: io::Error| Error::File {
        op,
        path: path.clone(),
        cause,
    };
    let meta = buffered.metadata().map_err(|e| error("stat", e))?;
    if !meta.is_file() {
        return Err(error(
            "open",
            io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    let (direct, dio) = match options.direct_io {
        DirectIo::Off => (None, None),
        policy => {
            let opened = OpenOptions::new()
                .read(true)
                .write(options.write)
                .custom_flags(libc::O_DIRECT | libc::O_CLOEXEC)
                .open(&reopen);
            match opened {
                Ok(direct) => {
                    same_file(&buffered, &direct).map_err(|e| error("reopen", e))?;
                    (
                        Some(direct),
                        Some(DioSupport::from_statx(
                            true,
                            statx_dio(&reopen).unwrap_or(None),
                        )),
                    )
                }
                Err(cause) if policy == DirectIo::Required => {
                    return Err(error("open with O_DIRECT", cause))
                }
                Err(cause) => {
                    tracing::debug!(path = %path.display(), %cause, "no direct I/O for this file; buffered");
                    (None, None)
                }
            }
        }
    };
    Ok(SwapFile::from_inner(FileInner {
        _dir: None,
        dio,
        checksummed: options.checksums,
        id: 0,
        path,
        buffered,
        direct,
        checksums: ChecksumLog::default(),
        attachments: Mutex::default(),
    }))
}
