//! What the store knows in memory: the committed keys and their recency,
//! the free space, and space on its way back (freed by commits not yet
//! durable, or still being read).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::record::Head;
use crate::space::{Extent, Space};

/// The committed keys, in memory: the index's view, for lookups and LRU
/// eviction without touching the disk.
#[derive(Debug, Default)]
pub(crate) struct Table {
    keys: HashMap<Arc<[u8]>, Head>,
    /// Unpinned keys by recency, oldest first.
    lru: BTreeMap<u64, Arc<[u8]>>,
    next_seq: u64,
    /// Value bytes and bytes of whole blocks held.
    bytes: u64,
    held: u64,
    pinned: u64,
}

impl Table {
    /// Room for `n` more keys (a reopen knows how many it loads).
    pub(crate) fn reserve(&mut self, n: usize) {
        self.keys.reserve(n);
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&Head> {
        self.keys.get(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn held(&self) -> u64 {
        self.held
    }

    /// Keys that are pinned.
    pub(crate) fn pinned(&self) -> u64 {
        self.pinned
    }

    /// The next recency stamp.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Sets `key`'s entry; the one it replaced.
    pub(crate) fn insert(&mut self, key: &[u8], head: Head) -> Option<Head> {
        let old = self.remove(key);
        let key: Arc<[u8]> = key.into();
        self.next_seq = self.next_seq.max(head.seq);
        self.count(&head, true);
        if !head.pinned {
            self.lru.insert(head.seq, Arc::clone(&key));
        }
        self.keys.insert(key, head);
        old
    }

    /// Removes `key`'s entry (with `id`, only while it is that value's).
    pub(crate) fn remove_if(&mut self, key: &[u8], id: Option<u64>) -> Option<Head> {
        match self.keys.get(key) {
            Some(head) if id.is_none_or(|id| id == head.id) => self.remove(key),
            _ => None,
        }
    }

    fn remove(&mut self, key: &[u8]) -> Option<Head> {
        let head = self.keys.remove(key)?;
        if !head.pinned {
            self.lru.remove(&head.seq);
        }
        self.count(&head, false);
        Some(head)
    }

    fn count(&mut self, head: &Head, add: bool) {
        let held: u64 = head.extents.iter().map(|e| e.len).sum();
        let pinned = u64::from(head.pinned);
        if add {
            self.bytes += head.len;
            self.held += held;
            self.pinned += pinned;
        } else {
            self.bytes -= head.len;
            self.held -= held;
            self.pinned -= pinned;
        }
    }

    /// Marks `key` as just used (in memory; the index keeps the put's stamp).
    pub(crate) fn touch(&mut self, key: &[u8]) {
        let seq = self.next_seq();
        if let Some((k, head)) = self.keys.get_key_value(key) {
            if !head.pinned {
                self.lru.remove(&head.seq);
                self.lru.insert(seq, Arc::clone(k));
            }
        }
        if let Some(head) = self.keys.get_mut(key) {
            head.seq = seq;
        }
    }

    /// Every extent the entries hold.
    pub(crate) fn extents(&self) -> impl Iterator<Item = Extent> + '_ {
        self.keys.values().flat_map(|h| h.extents.iter().copied())
    }

    /// The least recently used unpinned key.
    pub(crate) fn oldest(&self) -> Option<Arc<[u8]>> {
        self.lru.values().next().cloned()
    }
}

/// Everything behind the store's lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) table: Table,
    pub(crate) space: Space,
    /// Gets in flight per value id.
    readers: HashMap<u64, u32>,
    /// Freed values still being read, and whether their freeing is durable.
    doomed: HashMap<u64, (Box<[Extent]>, bool)>,
    /// Freed by commits not yet durable: reused only after the next durable
    /// commit, so a crash that rolls the index back finds its values intact.
    unsynced: Vec<Extent>,
    pub(crate) next_id: u64,
    /// Puts between their space's reservation and their commit (or failure).
    pub(crate) writing: usize,
    /// Durable commits so far.
    pub(crate) synced: u64,
    /// Why the store stopped, once it has.
    pub(crate) failed: Option<String>,
    pub(crate) evictions: u64,
}

impl State {
    pub(crate) fn new(table: Table, space: Space, next_id: u64) -> Self {
        Self {
            table,
            space,
            readers: HashMap::new(),
            doomed: HashMap::new(),
            unsynced: Vec::new(),
            next_id,
            writing: 0,
            synced: 0,
            failed: None,
            evictions: 0,
        }
    }

    /// A fresh value id.
    pub(crate) fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Bytes freed but not yet reusable (waiting for a durable commit or
    /// for reads to end).
    pub(crate) fn pending(&self) -> u64 {
        let doomed: u64 = self
            .doomed
            .values()
            .flat_map(|(e, _)| e.iter())
            .map(|e| e.len)
            .sum();
        self.unsynced_bytes() + doomed
    }

    /// Bytes freed by commits not yet durable (a durable commit frees them).
    pub(crate) fn unsynced_bytes(&self) -> u64 {
        self.unsynced.iter().map(|e| e.len).sum()
    }

    /// A put is over: committed (`None`), or failed, its space never in the
    /// index and free at once.
    pub(crate) fn put_ended(&mut self, failed: Option<&[Extent]>) {
        self.writing -= 1;
        if let Some(extents) = failed {
            self.space.release(extents);
        }
    }

    /// A value's space, no longer in the index (as of a commit that was
    /// `durable` or not).
    pub(crate) fn free(&mut self, head: Head, durable: bool) {
        if self.readers.contains_key(&head.id) {
            self.doomed.insert(head.id, (head.extents, durable));
        } else if durable {
            self.space.release(&head.extents);
        } else {
            self.unsynced.extend_from_slice(&head.extents);
        }
    }

    /// After a durable commit: everything freed before it is reusable.
    pub(crate) fn synced(&mut self) {
        let unsynced = std::mem::take(&mut self.unsynced);
        self.space.release(&unsynced);
        for (_, durable) in self.doomed.values_mut() {
            *durable = true;
        }
        self.synced += 1;
    }

    pub(crate) fn add_reader(&mut self, id: u64) {
        *self.readers.entry(id).or_default() += 1;
    }

    pub(crate) fn drop_reader(&mut self, id: u64) {
        let Some(count) = self.readers.get_mut(&id) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.readers.remove(&id);
            if let Some((extents, durable)) = self.doomed.remove(&id) {
                if durable {
                    self.space.release(&extents);
                } else {
                    self.unsynced.extend_from_slice(&extents);
                }
            }
        }
    }
}

/// The state and the condition a put waits on for space.
#[derive(Debug)]
pub(crate) struct Locked {
    state: Mutex<State>,
    /// Signalled after every durable commit and every ended read.
    pub(crate) space_freed: Condvar,
}

impl Locked {
    pub(crate) fn new(state: State) -> Self {
        Self {
            state: Mutex::new(state),
            space_freed: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A get in flight on a value: its space is not reused until dropped.
#[derive(Debug)]
pub(crate) struct ReadGuard {
    pub(crate) locked: Arc<Locked>,
    pub(crate) id: u64,
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        self.locked.lock().drop_reader(self.id);
        self.locked.space_freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::BLOCK;

    fn head(id: u64, seq: u64, offset: u64, pinned: bool) -> Head {
        Head {
            id,
            len: 100,
            seq,
            pinned,
            extents: vec![Extent { offset, len: BLOCK }].into(),
        }
    }

    #[test]
    fn eviction_order_follows_use_and_skips_pinned_keys() {
        let mut table = Table::default();
        table.insert(b"a", head(1, 1, 0, false));
        table.insert(b"b", head(2, 2, BLOCK, true));
        table.insert(b"c", head(3, 3, 2 * BLOCK, false));
        assert_eq!(table.oldest().as_deref(), Some(&b"a"[..]));
        table.touch(b"a");
        assert_eq!(table.oldest().as_deref(), Some(&b"c"[..]));
        assert_eq!(
            (table.len(), table.held(), table.pinned()),
            (3, 3 * BLOCK, 1)
        );
        assert!(table.remove_if(b"c", Some(99)).is_none());
        assert!(table.remove_if(b"c", Some(3)).is_some());
        assert_eq!(table.oldest().as_deref(), Some(&b"a"[..]));
    }

    #[test]
    fn space_freed_while_read_or_before_a_durable_commit_waits() {
        let space = Space::with_used(
            4 * BLOCK,
            [Extent {
                offset: 0,
                len: 2 * BLOCK,
            }],
        )
        .unwrap();
        let mut state = State::new(Table::default(), space, 0);
        state.add_reader(1);
        state.free(head(1, 1, 0, false), true);
        state.free(head(2, 2, BLOCK, false), false);
        assert_eq!(
            (state.space.free(), state.pending()),
            (2 * BLOCK, 2 * BLOCK)
        );
        state.synced();
        assert_eq!(state.space.free(), 3 * BLOCK, "the unread one is back");
        state.drop_reader(1);
        assert_eq!((state.space.free(), state.pending()), (4 * BLOCK, 0));
    }
}
