//! A simulated power cut, in user space (this kernel has no device-mapper):
//! every write to the store's files since their last completed sync is
//! logged with the bytes it overwrote, and [`PowerCut::apply`] puts back
//! all of them, a random subset, or random 512-byte sectors of them, as
//! RocksDB's fault-injection file system does. It sits under the values
//! (an engine decorator, [`PowerCutEngine`]) and under the index (redb's
//! storage hook, [`PowerCutBackend`]); the store's data syncs go through
//! [`PowerCut::sync`].
//!
//! Feature `fault-injection`; for crash campaigns, not for production.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use redb::{BackendError, StorageBackend};
use tensorswap_core::storage::{IoRequest, Region};
use tensorswap_core::{AioConfig, HostBuffer, IoEngine, IoOp, Result as CoreResult};

/// What the cut does with writes not covered by a completed sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutMode {
    /// All are lost.
    DropAll,
    /// Each is lost or kept at random.
    KeepSome(u64),
    /// Each 512-byte sector of each is lost or kept at random.
    Torn(u64),
}

/// One file's writes since its last sync.
#[derive(Debug)]
struct Log {
    /// A descriptor to read the old bytes and put them back (the data
    /// file's is `O_DIRECT`: its requests are whole aligned blocks).
    file: File,
    direct: bool,
    /// (offset, bytes overwritten), oldest first.
    undo: Vec<(u64, Vec<u8>)>,
    /// The length at the last sync.
    synced_len: u64,
}

/// The cut: a shared log of unsynced writes.
#[derive(Debug)]
pub struct PowerCut {
    mode: CutMode,
    logs: Mutex<HashMap<PathBuf, Log>>,
    cut: AtomicBool,
}

impl PowerCut {
    /// A layer that will cut as `mode` says.
    pub fn new(mode: CutMode) -> Arc<Self> {
        Arc::new(Self {
            mode,
            logs: Mutex::new(HashMap::new()),
            cut: AtomicBool::new(false),
        })
    }

    fn logs(&self) -> MutexGuard<'_, HashMap<PathBuf, Log>> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts following `path` (its current length counts as synced).
    fn follow(&self, path: &Path, direct: bool) -> io::Result<()> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        if direct {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32);
        }
        let file = options.open(path)?;
        let synced_len = file.metadata()?.len();
        self.logs().insert(
            path.to_path_buf(),
            Log {
                file,
                direct,
                undo: Vec::new(),
                synced_len,
            },
        );
        Ok(())
    }

    /// Logs the bytes `len` bytes at `offset` of `path` hold before a write.
    fn before_write(
        logs: &mut HashMap<PathBuf, Log>,
        path: &Path,
        offset: u64,
        len: usize,
    ) -> io::Result<()> {
        let Some(log) = logs.get_mut(path) else {
            return Ok(());
        };
        let old = if log.direct {
            let mut buf = HostBuffer::new(len).map_err(io::Error::other)?;
            let n = read_fully(&log.file, &mut buf, offset)?;
            buf[n..].fill(0);
            buf.to_vec()
        } else {
            let mut buf = vec![0u8; len];
            let n = read_fully(&log.file, &mut buf, offset)?;
            buf[n..].fill(0);
            buf
        };
        log.undo.push((offset, old));
        Ok(())
    }

    /// A sync of `path`: runs it and forgets the writes it covers; after
    /// the cut, never returns (the power is off).
    pub fn sync(&self, path: &Path, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        self.park_if_cut();
        sync()?;
        let mut logs = self.logs();
        if let Some(log) = logs.get_mut(path) {
            log.undo.clear();
            log.synced_len = log.file.metadata()?.len();
        }
        Ok(())
    }

    fn park_if_cut(&self) {
        while self.cut.load(Ordering::SeqCst) {
            std::thread::park();
        }
    }

    /// From now on no sync completes: what is not synced yet never will be.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Puts back, as the mode says, what the writes since each file's last
    /// sync overwrote; later writes through the index backend wait forever.
    /// Returns how many writes were undone in whole or in part. Call it, then
    /// end the process at once.
    pub fn apply(&self) -> io::Result<usize> {
        self.cut();
        let mut logs = self.logs();
        let mut undone = 0;
        for (i, log) in logs.values_mut().enumerate() {
            let mut rng = match self.mode {
                CutMode::DropAll => 1,
                CutMode::KeepSome(seed) | CutMode::Torn(seed) => {
                    seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
                }
            };
            let mut coin = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng & 1 == 0
            };
            for (offset, old) in log.undo.iter().rev() {
                match self.mode {
                    CutMode::DropAll => write_back(log, *offset, old)?,
                    CutMode::KeepSome(_) => {
                        if coin() {
                            write_back(log, *offset, old)?;
                        } else {
                            continue;
                        }
                    }
                    CutMode::Torn(_) => {
                        // Sectors of the data file's whole blocks through a
                        // bounce of one block; the index's directly.
                        for (s, sector) in old.chunks(512).enumerate() {
                            if coin() {
                                write_sector(log, *offset, old, s * 512, sector.len())?;
                            }
                        }
                    }
                }
                undone += 1;
            }
            if self.mode == CutMode::DropAll && log.file.metadata()?.len() > log.synced_len {
                log.file.set_len(log.synced_len)?;
            }
            log.undo.clear();
            log.file.sync_all()?;
        }
        // Keep the lock: writes through the backend wait for ever.
        std::mem::forget(logs);
        Ok(undone)
    }
}

fn read_fully(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn write_back(log: &Log, offset: u64, old: &[u8]) -> io::Result<()> {
    if log.direct {
        let mut buf = HostBuffer::new(old.len()).map_err(io::Error::other)?;
        buf.copy_from_slice(old);
        log.file.write_all_at(&buf, offset)
    } else {
        log.file.write_all_at(old, offset)
    }
}

/// Puts back one sector of an undone write: for the `O_DIRECT` data file,
/// its 4 KiB block is read, patched and written whole.
fn write_sector(log: &Log, offset: u64, old: &[u8], at: usize, len: usize) -> io::Result<()> {
    if !log.direct {
        return log
            .file
            .write_all_at(&old[at..at + len], offset + at as u64);
    }
    let block = at / 4096 * 4096;
    let mut buf = HostBuffer::new(4096).map_err(io::Error::other)?;
    let n = read_fully(&log.file, &mut buf, offset + block as u64)?;
    buf[n..].fill(0);
    buf[at - block..at - block + len].copy_from_slice(&old[at..at + len]);
    log.file.write_all_at(&buf, offset + block as u64)
}

/// An engine whose writes are logged for the cut.
#[derive(Debug)]
pub struct PowerCutEngine<E> {
    inner: E,
    cut: Arc<PowerCut>,
}

impl<E: IoEngine> PowerCutEngine<E> {
    /// `inner`, its writes logged by `cut`.
    pub fn new(inner: E, cut: Arc<PowerCut>) -> Self {
        Self { inner, cut }
    }
}

#[deny(clippy::missing_trait_methods)]
impl<E: IoEngine> IoEngine for PowerCutEngine<E> {
    type Pending = E::Pending;

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn config(&self) -> &AioConfig {
        self.inner.config()
    }

    unsafe fn submit(&self, req: IoRequest) -> CoreResult<Self::Pending> {
        if req.op == IoOp::Write {
            let mut logs = self.cut.logs();
            if !logs.contains_key(req.file.path()) {
                drop(logs);
                self.cut
                    .follow(req.file.path(), req.file.is_direct())
                    .map_err(|e| file_error(&req, "follow for the power cut", e))?;
                logs = self.cut.logs();
            }
            PowerCut::before_write(&mut logs, req.file.path(), req.offset, req.len)
                .map_err(|e| file_error(&req, "log for the power cut", e))?;
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.submit(req) }
    }

    fn register_region(&self, region: Region) -> bool {
        self.inner.register_region(region)
    }
}

/// Error of a request the layer could not log.
fn file_error(req: &IoRequest, op: &'static str, cause: io::Error) -> tensorswap_core::Error {
    tensorswap_core::Error::File {
        op,
        path: req.file.path().to_path_buf(),
        cause,
    }
}

/// redb's storage on a plain file, every write logged for the cut.
#[derive(Debug)]
pub struct PowerCutBackend {
    file: File,
    path: PathBuf,
    cut: Arc<PowerCut>,
}

impl PowerCutBackend {
    /// Opens (or creates) the index file at `path`.
    pub fn open(path: &Path, cut: Arc<PowerCut>) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        cut.follow(path, false)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            cut,
        })
    }
}

impl StorageBackend for PowerCutBackend {
    fn len(&self) -> Result<u64, BackendError> {
        Ok(self.file.metadata().map_err(BackendError::Io)?.len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendError> {
        self.file
            .read_exact_at(out, offset)
            .map_err(BackendError::Io)
    }

    fn set_len(&self, len: u64) -> Result<(), BackendError> {
        let mut logs = self.cut.logs();
        let now = self.file.metadata().map_err(BackendError::Io)?.len();
        if len < now {
            PowerCut::before_write(&mut logs, &self.path, len, (now - len) as usize)
                .map_err(BackendError::Io)?;
        }
        self.file.set_len(len).map_err(BackendError::Io)
    }

    fn sync_data(&self) -> Result<(), BackendError> {
        self.cut
            .sync(&self.path, || self.file.sync_data())
            .map_err(BackendError::Io)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        // Logged and written under the lock, so nothing lands after `apply`.
        let mut logs = self.cut.logs();
        PowerCut::before_write(&mut logs, &self.path, offset, data.len())
            .map_err(BackendError::Io)?;
        self.file
            .write_all_at(data, offset)
            .map_err(BackendError::Io)
    }
}
