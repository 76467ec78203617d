//! What [`PersistentStore::stats`](crate::PersistentStore::stats) and
//! [`PersistentStore::list`](crate::PersistentStore::list) report.

/// Counts and sizes of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Keys holding a value.
    pub keys: u64,
    /// Of them, pinned against eviction.
    pub pinned_keys: u64,
    /// Bytes of the values.
    pub value_bytes: u64,
    /// Bytes of the data file they hold (whole 4 KiB blocks).
    pub held_bytes: u64,
    /// The capacity (whole blocks).
    pub capacity: u64,
    /// Bytes free now.
    pub free_bytes: u64,
    /// Bytes freed, reusable after the next durable commit or once the
    /// reads of them end.
    pub pending_free_bytes: u64,
    /// Value bytes written since open.
    pub bytes_written: u64,
    /// Value bytes read since open.
    pub bytes_read: u64,
    /// Values evicted since open.
    pub evictions: u64,
}

/// One key of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The key.
    pub key: Vec<u8>,
    /// The value's length.
    pub len: u64,
    /// The metadata put with it.
    pub meta: Vec<u8>,
    /// Pinned against eviction.
    pub pinned: bool,
}
