//! The index: key -> entry ([`Record`]) in a redb database, the one file
//! of the store that says which values exist. It is committed only after
//! the values it points to are written (and, for a durable commit, synced).

use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use crate::error::printable_key;
use crate::record::{Head, Record};
use crate::StoreError;

/// The index file's name in a store's folder.
pub(crate) const INDEX_FILE: &str = "index.redb";

const VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("values");
/// The store's settings that outlive a process: `capacity`.
const SETTINGS: TableDefinition<&str, u64> = TableDefinition::new("settings");
const CAPACITY: &str = "capacity";

/// One change of a commit.
#[derive(Debug)]
pub(crate) enum Change<'a> {
    /// Sets `key`'s entry.
    Put { key: &'a [u8], record: &'a [u8] },
    /// Removes `key`'s entry; with `id`, only while the entry is that value's.
    Remove { key: &'a [u8], id: Option<u64> },
}

/// The store's redb database.
#[derive(Debug)]
pub(crate) struct Index {
    db: Database,
    path: PathBuf,
}

impl Index {
    /// Opens (or creates) the index in `folder`.
    pub(crate) fn open(folder: &Path, options: &crate::StoreOptions) -> Result<Self, StoreError> {
        let path = folder.join(INDEX_FILE);
        let builder = Database::builder();
        #[cfg(feature = "fault-injection")]
        if let Some(cut) = &options.power_cut {
            let backend =
                crate::power_cut::PowerCutBackend::open(&path, std::sync::Arc::clone(cut))
                    .map_err(|e| StoreError::file(&path, "open the index", e))?;
            let db = builder
                .create_with_backend(backend)
                .map_err(|e| index_error(&path, "open", e))?;
            return Self::ready(db, path);
        }
        let _ = options;
        let db = builder
            .create(&path)
            .map_err(|e| index_error(&path, "open", e))?;
        Self::ready(db, path)
    }

    fn ready(db: Database, path: PathBuf) -> Result<Self, StoreError> {
        let index = Self { db, path };
        // The tables exist from the first open on, so readers find them.
        let txn = index
            .db
            .begin_write()
            .map_err(index.err("start a commit"))?;
        txn.open_table(VALUES)
            .map_err(index.err("open the table"))?;
        txn.open_table(SETTINGS)
            .map_err(index.err("open the table"))?;
        txn.commit().map_err(index.err("commit"))?;
        Ok(index)
    }

    /// The capacity the store was last opened with, if any.
    pub(crate) fn capacity(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(self.err("start reading"))?;
        let table = txn
            .open_table(SETTINGS)
            .map_err(self.err("open the table"))?;
        let found = table.get(CAPACITY).map_err(self.err("read"))?;
        Ok(found.map(|v| v.value()))
    }

    /// Records the capacity, durably.
    pub(crate) fn set_capacity(&self, capacity: u64) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(self.err("start a commit"))?;
        {
            let mut table = txn
                .open_table(SETTINGS)
                .map_err(self.err("open the table"))?;
            table
                .insert(CAPACITY, capacity)
                .map_err(self.err("write"))?;
        }
        txn.commit().map_err(self.err("commit"))
    }

    /// The index file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn err<E: Into<redb::Error>>(&self, op: &'static str) -> impl FnOnce(E) -> StoreError + '_ {
        move |e| index_error(&self.path, op, e)
    }

    fn corrupt(&self, key: &[u8], reason: String) -> StoreError {
        StoreError::IndexCorrupt {
            path: self.path.clone(),
            reason: format!("the entry of key {}: {reason}", printable_key(key)),
        }
    }

    /// How many entries the index holds.
    pub(crate) fn len(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(self.err("start reading"))?;
        let table = txn.open_table(VALUES).map_err(self.err("open the table"))?;
        table.len().map_err(self.err("read"))
    }

    /// Calls `each` with every key and its entry's head, in key order.
    pub(crate) fn load(
        &self,
        mut each: impl FnMut(&[u8], Head) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(self.err("start reading"))?;
        let table = txn.open_table(VALUES).map_err(self.err("open the table"))?;
        for item in table.iter().map_err(self.err("read"))? {
            let (key, value) = item.map_err(self.err("read"))?;
            let head = Head::decode(value.value()).map_err(|r| self.corrupt(key.value(), r))?;
            each(key.value(), head)?;
        }
        Ok(())
    }

    /// `key`'s entry whole, if it has one.
    pub(crate) fn record(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        let txn = self.db.begin_read().map_err(self.err("start reading"))?;
        let table = txn.open_table(VALUES).map_err(self.err("open the table"))?;
        let Some(value) = table.get(key).map_err(self.err("read"))? else {
            return Ok(None);
        };
        Record::decode(value.value())
            .map(Some)
            .map_err(|r| self.corrupt(key, r))
    }

    /// Calls `each` with every entry whose key starts with `prefix`, in key
    /// order, until it returns false; an entry that does not decode is an
    /// error.
    pub(crate) fn scan(
        &self,
        prefix: &[u8],
        mut each: impl FnMut(&[u8], Record) -> bool,
    ) -> Result<(), StoreError> {
        let mut damaged = None;
        self.scan_raw(prefix, |key, record| match record {
            Ok(record) => each(key, record),
            Err(reason) => {
                damaged = Some(self.corrupt(key, reason));
                false
            }
        })?;
        damaged.map_or(Ok(()), Err)
    }

    /// Like [`Index::scan`], with each entry's decoding error given to `each`.
    pub(crate) fn scan_raw(
        &self,
        prefix: &[u8],
        mut each: impl FnMut(&[u8], Result<Record, String>) -> bool,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(self.err("start reading"))?;
        let table = txn.open_table(VALUES).map_err(self.err("open the table"))?;
        for item in table.range(prefix..).map_err(self.err("read"))? {
            let (key, value) = item.map_err(self.err("read"))?;
            let key = key.value();
            if !key.starts_with(prefix) {
                break;
            }
            if !each(key, Record::decode(value.value())) {
                break;
            }
        }
        Ok(())
    }

    /// Applies `changes` in order in one transaction, synced to disk when
    /// `durable`. Returns, per change, the head of the entry it replaced or
    /// removed (an entry that no longer decodes is logged and its space left
    /// to the next open's reclaim).
    pub(crate) fn commit(
        &self,
        changes: &[Change<'_>],
        durable: bool,
    ) -> Result<Vec<Option<Head>>, StoreError> {
        let mut txn = self.db.begin_write().map_err(self.err("start a commit"))?;
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        txn.set_durability(durability)
            .map_err(self.err("set the commit's durability"))?;
        let mut replaced = Vec::with_capacity(changes.len());
        {
            let mut table = txn.open_table(VALUES).map_err(self.err("open the table"))?;
            for change in changes {
                let (key, old) = match *change {
                    Change::Put { key, record } => {
                        let old = table.insert(key, record).map_err(self.err("write"))?;
                        (key, old.map(|g| Head::decode(g.value())))
                    }
                    Change::Remove { key, id } => {
                        let current = table
                            .get(key)
                            .map_err(self.err("read"))?
                            .map(|g| Head::decode(g.value()));
                        let matches = match (&current, id) {
                            (None, _) => false,
                            (Some(Ok(head)), Some(id)) => head.id == id,
                            _ => true,
                        };
                        if matches {
                            table.remove(key).map_err(self.err("remove"))?;
                        }
                        (key, current.filter(|_| matches))
                    }
                };
                replaced.push(match old {
                    Some(Ok(head)) => Some(head),
                    Some(Err(reason)) => {
                        tracing::error!(key = %printable_key(key), %reason, "replaced a damaged index entry");
                        None
                    }
                    None => None,
                });
            }
        }
        txn.commit().map_err(self.err("commit"))?;
        Ok(replaced)
    }
}

fn index_error(path: &Path, op: &'static str, e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(reason) => StoreError::IndexCorrupt {
            path: path.to_path_buf(),
            reason,
        },
        cause => StoreError::Index {
            path: path.to_path_buf(),
            op,
            cause,
        },
    }
}
