//! [`PersistentStore`]: opening a store's folder, and the calls that need
//! no file request (lookups, listings, removal, flush, close).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tensorswap_core::{AnyEngine, DirectIo, IoEngine, NamedOptions, SwapFile};

use crate::commit_ticket::CommitTicket;
use crate::index::{Change, Index};
use crate::lock::WriterLock;
use crate::record::Head;
use crate::shared::{Msg, PendingPut, Shared, DATA_FILE};
use crate::signal::Signal;
use crate::space::{Extent, Space};
use crate::state::{Locked, State, Table};
use crate::{committer, marker, Entry, Stats, StoreError, StoreOptions};

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 4096;
/// Longest metadata blob, in bytes.
pub const MAX_META_LEN: usize = 64 * 1024;

/// Named values in a folder that outlive the process: KV-cache blocks,
/// checkpoints of swapped state, weights loaded again and again.
///
/// The persistent counterpart of the swappers' private, ephemeral
/// `SwapStore`. Values are written by an [`IoEngine`] into one data file
/// (`values.dat`, whole 4 KiB blocks, a CRC32C per block); a redb index
/// (`index.redb`) says which value each key holds, and is committed only
/// once the value is written. See the crate's documentation for the
/// guarantees.
///
/// Every call takes `&self`: share the store between threads with an `Arc`.
///
/// ```
/// use tensorswap_store::{PersistentStore, PutOptions, StoreOptions};
/// let folder = tempfile::tempdir()?;
/// let store = PersistentStore::open(folder.path(), StoreOptions::new(1 << 30))?;
/// store.put(b"layers.0.weight", vec![7u8; 10_000], &PutOptions::new().meta(b"u8 [10000]"))?.wait()?;
/// drop(store);
///
/// // After a restart (or a crash), the value is there, checked block by block.
/// let store = PersistentStore::open(folder.path(), StoreOptions::new(1 << 30))?;
/// let got = store.get(b"layers.0.weight", vec![0u8; 10_000])?.wait()?;
/// assert_eq!((got.len, got.buf[9_999]), (10_000, 7));
/// assert_eq!(store.count_present(&[&b"layers.0.weight"[..], b"other"]), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PersistentStore<E: IoEngine + 'static = AnyEngine> {
    pub(crate) shared: Arc<Shared<E>>,
    tx: Option<Sender<Msg>>,
    committer: Option<JoinHandle<Result<(), StoreError>>>,
    _lock: WriterLock,
}

impl PersistentStore {
    /// Opens the store in `folder`, creating the folder and the store when
    /// they do not exist, on the engine `options.engine`.
    ///
    /// Space no entry of the index points to (values being written when
    /// the last process died) is reclaimed. A folder open in another handle
    /// is [`StoreError::Locked`], naming the holder; a folder that holds
    /// other files is [`StoreError::NotAStore`].
    pub fn open(folder: impl AsRef<Path>, options: StoreOptions) -> Result<Self, StoreError> {
        let engine = AnyEngine::new(options.engine, &options.aio)?;
        Self::open_with_engine(folder, options, engine)
    }
}

impl<E: IoEngine + 'static> PersistentStore<E> {
    /// Opens the store in `folder` on the caller's engine.
    pub fn open_with_engine(
        folder: impl AsRef<Path>,
        options: StoreOptions,
        engine: E,
    ) -> Result<Self, StoreError> {
        let folder = folder.as_ref().to_path_buf();
        if options.capacity.is_none() && !folder.join(marker::MARKER_FILE).is_file() {
            // Opening what exists: create nothing.
            return Err(StoreError::NotAStore {
                path: folder,
                reason: format!(
                    "there is no `{}` file (a new store needs a capacity)",
                    marker::MARKER_FILE
                ),
            });
        }
        std::fs::create_dir_all(&folder)
            .map_err(|e| StoreError::file(&folder, "create the folder", e))?;
        let lock = WriterLock::take(&folder)?;
        marker::check_or_create(&folder)?;
        let index = Index::open(&folder, &options)?;
        let data = folder.join(DATA_FILE);
        let named = NamedOptions::read_write()
            .create(true)
            .checksums(false)
            .direct_io(DirectIo::Auto);
        let file = SwapFile::open_named(&data, named)?;
        marker::sync_folder(&folder)?;

        let state = load(&folder, &index, &file, &options)?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            folder,
            options,
            engine,
            file,
            index,
            locked: Arc::new(Locked::new(state)),
            written: AtomicU64::new(0),
            read: AtomicU64::new(0),
        });
        let committer = committer::spawn(Arc::clone(&shared), rx)?;
        Ok(Self {
            shared,
            tx: Some(tx),
            committer: Some(committer),
            _lock: lock,
        })
    }

    /// The store's folder.
    pub fn folder(&self) -> &Path {
        &self.shared.folder
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.shared.options
    }

    /// The engine values move through.
    pub fn engine(&self) -> &E {
        &self.shared.engine
    }

    /// True when `key` holds a value.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.shared.locked.lock().table.get(key).is_some()
    }

    /// The length of `key`'s value, if it has one.
    pub fn value_len(&self, key: &[u8]) -> Option<u64> {
        self.shared.locked.lock().table.get(key).map(|h| h.len)
    }

    /// How many of `keys`, from the first, are present: the prefix lookup
    /// of KV-cache tiers (a request's blocks, in order, up to the first miss).
    pub fn count_present<K: AsRef<[u8]>>(&self, keys: &[K]) -> usize {
        let state = self.shared.locked.lock();
        keys.iter()
            .take_while(|key| state.table.get(key.as_ref()).is_some())
            .count()
    }

    /// `key`'s length, metadata and pinning, if it holds a value.
    pub fn entry(&self, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        let mut found = None;
        self.list_where(key, |k| k == key, &mut |entry| {
            found = Some(entry);
            false
        })?;
        Ok(found)
    }

    /// Every key that starts with `prefix`, in key order, with its length,
    /// metadata and pinning.
    pub fn list(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::new();
        self.list_where(prefix, |_| true, &mut |entry| {
            entries.push(entry);
            true
        })?;
        Ok(entries)
    }

    fn list_where(
        &self,
        prefix: &[u8],
        wanted: impl Fn(&[u8]) -> bool,
        each: &mut dyn FnMut(Entry) -> bool,
    ) -> Result<(), StoreError> {
        self.shared.index.scan(prefix, |key, record| {
            if !wanted(key) {
                return true;
            }
            // The index may still hold a value evicted a moment ago.
            let current = self
                .shared
                .locked
                .lock()
                .table
                .get(key)
                .is_some_and(|h| h.id == record.head.id);
            !current
                || each(Entry {
                    key: key.to_vec(),
                    len: record.head.len,
                    meta: record.meta,
                    pinned: record.head.pinned,
                })
        })
    }

    /// Removes `key`'s value: gone for every later reader at once; the
    /// ticket says whether the index held it, once the removal is committed
    /// (durable as the store's [`Durability`](crate::Durability) says).
    pub fn remove(&self, key: &[u8]) -> CommitTicket<bool> {
        self.shared.locked.lock().table.remove_if(key, None);
        let done = Signal::new();
        self.send(Msg::Remove {
            key: key.to_vec(),
            id: None,
            durable_by: self.shared.options.durability.deadline(Instant::now()),
            done: Some(Arc::clone(&done)),
        });
        CommitTicket::new(done)
    }

    /// Makes every put and remove before this call durable: the data file
    /// synced, the index committed to disk.
    pub fn flush(&self) -> CommitTicket<()> {
        let done = Signal::new();
        self.send(Msg::Sync {
            done: Arc::clone(&done),
        });
        CommitTicket::new(done)
    }

    /// Counts and sizes.
    pub fn stats(&self) -> Stats {
        let state = self.shared.locked.lock();
        Stats {
            keys: state.table.len() as u64,
            pinned_keys: state.table.pinned(),
            value_bytes: state.table.bytes(),
            held_bytes: state.table.held(),
            capacity: state.space.capacity(),
            free_bytes: state.space.free(),
            pending_free_bytes: state.pending(),
            bytes_written: self.shared.written.load(Ordering::Relaxed),
            bytes_read: self.shared.read.load(Ordering::Relaxed),
            evictions: state.evictions,
        }
    }

    /// Finishes every request, makes what was committed durable, and
    /// closes the folder; the error of that last sync, if any.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shut()
    }

    fn shut(&mut self) -> Result<(), StoreError> {
        drop(self.tx.take());
        match self.committer.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(self.shared.stopped("the committer thread panicked")),
            None => Ok(()),
        }
    }

    /// Hands `msg` to the committer; if it is gone, answers the message's
    /// ticket with the reason.
    pub(crate) fn send(&self, msg: Msg) {
        let Some(Err(mpsc::SendError(msg))) = self.tx.as_ref().map(|tx| tx.send(msg)) else {
            return;
        };
        let error = || self.shared.stopped("the committer thread is gone");
        match msg {
            Msg::Put(put) => {
                let PendingPut {
                    record, io, done, ..
                } = *put;
                let _ = io.wait();
                self.shared
                    .locked
                    .lock()
                    .put_ended(Some(&record.head.extents));
                done.set(Err(error()));
            }
            Msg::Remove { done, .. } => {
                if let Some(done) = done {
                    done.set(Err(error()));
                }
            }
            Msg::Sync { done } => done.set(Err(error())),
        }
    }
}

impl<E: IoEngine + 'static> Drop for PersistentStore<E> {
    fn drop(&mut self) {
        if let Err(err) = self.shut() {
            tracing::error!(%err, "closing the store failed");
        }
    }
}

impl<E: IoEngine + 'static> std::fmt::Debug for PersistentStore<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentStore")
            .field("folder", &self.shared.folder)
            .field("engine", &self.shared.engine.name())
            .finish_non_exhaustive()
    }
}

/// Reads the index into memory, rebuilds the free space (everything no
/// entry points to is free), drops entries that lie beyond a smaller
/// capacity, and cuts the data file after the last used block.
fn load(
    folder: &Path,
    index: &Index,
    file: &SwapFile,
    options: &StoreOptions,
) -> Result<State, StoreError> {
    let stored = index.capacity()?;
    let capacity = match (options.capacity, stored) {
        (Some(asked), _) => asked / crate::space::BLOCK * crate::space::BLOCK,
        (None, Some(stored)) => stored,
        (None, None) => {
            return Err(StoreError::NotAStore {
                path: folder.to_path_buf(),
                reason: "its index records no capacity (a new store needs one)".into(),
            })
        }
    };

    let mut table = Table::default();
    let mut next_id = 0;
    let mut beyond: Vec<(Vec<u8>, Head)> = Vec::new();
    // Sized once: rehashing a million keys costs more than reading them.
    table.reserve(index.len()? as usize);
    index.load(|key, head| {
        next_id = next_id.max(head.id);
        if head.extents.iter().any(|e| e.end() > capacity) {
            beyond.push((key.to_vec(), head));
        } else {
            table.insert(key, head);
        }
        Ok(())
    })?;
    if !beyond.is_empty() {
        if !options.eviction {
            return Err(StoreError::CapacityTooSmall {
                path: folder.to_path_buf(),
                capacity,
                reason: format!("{} values lie beyond it and eviction is off", beyond.len()),
            });
        }
        tracing::info!(
            count = beyond.len(),
            capacity,
            "evicting values beyond the capacity"
        );
        let changes: Vec<Change<'_>> = beyond
            .iter()
            .map(|(key, head)| Change::Remove {
                key,
                id: Some(head.id),
            })
            .collect();
        index.commit(&changes, true)?;
    }
    let used: Vec<Extent> = table.extents().collect();
    let end = used.iter().map(Extent::end).max().unwrap_or(0);
    let space = Space::with_used(capacity, used).map_err(|extent| StoreError::IndexCorrupt {
        path: index.path().to_path_buf(),
        reason: format!(
            "two entries claim the data file's bytes {}..{}",
            extent.offset,
            extent.end()
        ),
    })?;
    if file.len()? > end {
        file.set_len(end)?;
    }
    if stored != Some(capacity) {
        index.set_capacity(capacity)?;
    }
    Ok(State::new(table, space, next_id))
}

// The handle is shared between threads.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<PersistentStore>();
};
