//! Direct-I/O policy and detection: `statx(STATX_DIOALIGN)`, then a probe.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use super::stale::PROBE_PREFIX;
use crate::sys::fs::{open_at, statx_dio, unlink_at, DioAlign};
use crate::{Error, Result};

/// Whether swap files are opened with `O_DIRECT` (bypassing the page cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectIo {
    /// Direct I/O where the file system supports it; buffered I/O with a
    /// warning (once per file system) where it does not (tmpfs on old
    /// kernels, overlayfs, some network file systems).
    #[default]
    Auto,
    /// Always buffered I/O, dropping written pages from the cache.
    Off,
    /// Direct I/O or an error.
    Required,
}

/// What a folder's file system offers for direct I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DioSupport {
    /// `O_DIRECT` opens succeed there.
    pub supported: bool,
    /// Alignment direct I/O needs for memory addresses, in bytes.
    pub memory_align: usize,
    /// Alignment direct I/O needs for file offsets and lengths, in bytes.
    pub offset_align: usize,
    /// How the alignment was found: `"statx"` (the kernel said so) or
    /// `"assumed"` (the kernel does not report it; 4096 is safe everywhere).
    pub source: &'static str,
}

/// Alignment assumed when the kernel does not report one.
const ASSUMED_ALIGN: usize = 4096;

impl DioSupport {
    /// Probes `folder` by creating, inspecting and removing a small file in it.
    ///
    /// `statx` reports direct-I/O alignment only for regular files, hence the
    /// probe file. Fails when the folder is missing or not writable.
    ///
    /// ```
    /// let dir = std::env::temp_dir();
    /// let dio = tensorswap_core::DioSupport::probe(&dir)?;
    /// if dio.supported {
    ///     assert!(dio.offset_align.is_power_of_two());
    /// }
    /// # Ok::<(), tensorswap_core::Error>(())
    /// ```
    pub fn probe(folder: &Path) -> Result<Self> {
        let dir = File::open(folder).map_err(|source| Error::File {
            op: "open folder",
            path: folder.to_path_buf(),
            cause: source,
        })?;
        Self::probe_in(&dir, folder)
    }

    pub(crate) fn probe_in(dir: &File, folder: &Path) -> Result<Self> {
        let name = probe_name();
        let path = folder.join(name.to_string_lossy().as_ref());
        let create = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let file = open_at(dir, &name, create, 0o600).map_err(|source| Error::File {
            op: "create probe file in",
            path: path.clone(),
            cause: source,
        })?;
        let result = Self::inspect(dir, &name, &path);
        drop(file);
        if let Err(err) = unlink_at(dir, &name) {
            tracing::warn!(path = %path.display(), %err, "could not remove the direct-I/O probe file");
        }
        result
    }

    fn inspect(dir: &File, name: &CString, path: &Path) -> Result<Self> {
        let reported = statx_dio(path).unwrap_or(None);
        let opened = open_at(
            dir,
            name,
            libc::O_RDWR | libc::O_DIRECT | libc::O_NOFOLLOW,
            0,
        );
        let supported = match opened {
            Ok(_) => true,
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => false,
            Err(source) => {
                return Err(Error::File {
                    op: "open with O_DIRECT",
                    path: path.to_path_buf(),
                    cause: source,
                })
            }
        };
        Ok(Self::from_statx(supported, reported))
    }

    /// What `statx` reported (when it did, with both alignments set), or the
    /// alignment assumed everywhere else.
    pub(super) fn from_statx(supported: bool, reported: Option<DioAlign>) -> Self {
        match reported {
            Some(a) if supported && a.memory > 0 && a.offset > 0 => Self {
                supported,
                memory_align: a.memory as usize,
                offset_align: a.offset as usize,
                source: "statx",
            },
            _ => Self {
                supported,
                memory_align: ASSUMED_ALIGN,
                offset_align: ASSUMED_ALIGN,
                source: "assumed",
            },
        }
    }

    /// The larger of the two alignments: what a buffer, offset and length
    /// should be aligned to for direct I/O.
    pub fn align(&self) -> usize {
        self.memory_align.max(self.offset_align)
    }
}

fn probe_name() -> CString {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    CString::new(format!("{PROBE_PREFIX}{}-{n}", std::process::id())).unwrap_or_default()
}

/// Applies `policy` to what a folder supports: `Some` when files there use
/// direct I/O.
pub(crate) fn decide(
    policy: DirectIo,
    support: DioSupport,
    folder: &Path,
    fs_id: u64,
) -> Result<Option<DioSupport>> {
    match (policy, support.supported) {
        (DirectIo::Off, _) => Ok(None),
        (_, true) => Ok(Some(support)),
        (DirectIo::Required, false) => Err(Error::File {
            op: "use O_DIRECT in",
            path: folder.to_path_buf(),
            cause: io::Error::new(
                io::ErrorKind::Unsupported,
                "the file system does not support direct I/O (DirectIo::Required)",
            ),
        }),
        (DirectIo::Auto, false) => {
            warn_once(fs_id, folder);
            Ok(None)
        }
    }
}

fn warn_once(fs_id: u64, folder: &Path) {
    static WARNED: OnceLock<Mutex<HashSet<u64>>> = OnceLock::new();
    let mut warned = WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if warned.insert(fs_id) {
        tracing::warn!(
            folder = %folder.display(),
            "O_DIRECT is not supported on this file system; using buffered I/O (written pages are dropped from the page cache)"
        );
    }
}
