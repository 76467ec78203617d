//! The committer thread: the one writer of the index. It takes messages in
//! the order they were sent, waits for each put's value to be written, and
//! commits every put, remove and sync that is ready in one transaction
//! (group commit); before a durable commit it syncs the data file, so the
//! durable index never points at bytes that are not on disk.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tensorswap_core::IoEngine;

use crate::error::printable_key;
use crate::index::Change;
use crate::record::Record;
use crate::shared::{Msg, PendingPut, Shared};
use crate::signal::Signal;
use crate::StoreError;

/// Starts the committer of `shared`, serving `rx` until every sender is
/// dropped; it then makes what it committed durable and returns.
pub(crate) fn spawn<E: IoEngine + 'static>(
    shared: Arc<Shared<E>>,
    rx: Receiver<Msg>,
) -> Result<JoinHandle<Result<(), StoreError>>, StoreError> {
    let committer = Committer {
        shared,
        rx,
        queue: VecDeque::new(),
        dirty: false,
        deadline: None,
    };
    std::thread::Builder::new()
        .name("tensorswap-store-commit".into())
        .spawn(move || committer.run())
        .map_err(|cause| {
            StoreError::Core(tensorswap_core::Error::ThreadStart {
                component: "the store's committer",
                cause,
            })
        })
}

struct Committer<E> {
    shared: Arc<Shared<E>>,
    rx: Receiver<Msg>,
    queue: VecDeque<Msg>,
    /// Commits since the last durable one changed the index or wrote data.
    dirty: bool,
    /// When the earliest `Durability::Within` put must be durable.
    deadline: Option<Instant>,
}

impl<E: IoEngine> Committer<E> {
    fn run(mut self) -> Result<(), StoreError> {
        loop {
            if self.queue.is_empty() {
                let next = match self.deadline {
                    Some(at) => {
                        match self
                            .rx
                            .recv_timeout(at.saturating_duration_since(Instant::now()))
                        {
                            Ok(msg) => Some(msg),
                            Err(RecvTimeoutError::Timeout) => None,
                            Err(RecvTimeoutError::Disconnected) => return self.finish(),
                        }
                    }
                    None => match self.rx.recv() {
                        Ok(msg) => Some(msg),
                        Err(_) => return self.finish(),
                    },
                };
                match next {
                    Some(msg) => self.queue.push_back(msg),
                    None => {
                        // The deadline passed with nothing else to do.
                        self.commit(Vec::new(), true);
                        continue;
                    }
                }
            }
            let batch = self.next_batch();
            let due = self.deadline.is_some_and(|at| at <= Instant::now());
            self.commit(batch, due);
        }
    }

    /// The oldest message (waiting for it if need be), then every following
    /// one that is ready, in order.
    fn next_batch(&mut self) -> Vec<Msg> {
        let mut batch = Vec::new();
        loop {
            self.queue.extend(self.rx.try_iter());
            match self.queue.front() {
                Some(front) if batch.is_empty() || front.ready() => {
                    batch.extend(self.queue.pop_front());
                }
                _ => return batch,
            }
        }
    }

    /// At the end: make everything committed durable.
    fn finish(mut self) -> Result<(), StoreError> {
        let failed = self.shared.locked.lock().failed.clone();
        if let Some(reason) = failed {
            return Err(self.shared.stopped(&reason));
        }
        if self.dirty {
            let done = Signal::new();
            self.commit(vec![Msg::Sync { done: done.clone() }], true);
            return done.take();
        }
        Ok(())
    }

    fn commit(&mut self, batch: Vec<Msg>, force_durable: bool) {
        let now = Instant::now();
        let mut durable = force_durable;
        let mut ops = Vec::new();
        let mut syncs = Vec::new();
        for msg in batch {
            match msg {
                Msg::Put(put) => {
                    let PendingPut {
                        key,
                        record,
                        io,
                        durable_by,
                        done,
                    } = *put;
                    if let Err(cause) = io.wait() {
                        self.shared
                            .locked
                            .lock()
                            .put_ended(Some(&record.head.extents));
                        done.set(Err(StoreError::Value {
                            key: printable_key(&key),
                            cause,
                        }));
                        continue;
                    }
                    durable |= self.due(durable_by, now);
                    ops.push(Op::Put { key, record, done });
                }
                Msg::Remove {
                    key,
                    id,
                    durable_by,
                    done,
                } => {
                    durable |= self.due(durable_by, now);
                    ops.push(Op::Remove { key, id, done });
                }
                Msg::Sync { done } => {
                    durable = true;
                    syncs.push(done);
                }
            }
        }

        let result = self.apply(&ops, durable);
        self.shared.locked.space_freed.notify_all();
        let outcome =
            |r: &Result<(), String>| r.clone().map_err(|reason| self.shared.stopped(&reason));
        for op in ops {
            match op {
                Op::Put { record, done, .. } => {
                    if result.is_err() {
                        // Never in the index: free at once.
                        self.shared
                            .locked
                            .lock()
                            .put_ended(Some(&record.head.extents));
                    } else {
                        self.shared.locked.lock().put_ended(None);
                        self.shared
                            .written
                            .fetch_add(record.head.len, Ordering::Relaxed);
                    }
                    done.set(outcome(&result));
                }
                // `apply` answered each remove on success.
                Op::Remove {
                    done: Some(done), ..
                } if result.is_err() => {
                    done.set(outcome(&result).map(|()| false));
                }
                Op::Remove { .. } => {}
            }
        }
        for done in syncs {
            done.set(outcome(&result));
        }
    }

    /// True when a change that must be durable by `by` makes this commit
    /// durable; a later deadline is kept for the interval's commit.
    fn due(&mut self, by: Option<Instant>, now: Instant) -> bool {
        match by {
            Some(at) if at <= now => true,
            Some(at) => {
                self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
                false
            }
            None => false,
        }
    }

    /// Syncs the data (for a durable commit), commits the index, and
    /// updates the in-memory table. The reason the store stopped, if it did.
    fn apply(&mut self, ops: &[Op], durable: bool) -> Result<(), String> {
        if let Some(reason) = self.shared.locked.lock().failed.clone() {
            return Err(reason);
        }
        if ops.is_empty() && !(durable && self.dirty) {
            return Ok(());
        }
        let fail = |reason: String| {
            tracing::error!(folder = %self.shared.folder.display(), %reason, "the store stops");
            self.shared.locked.lock().failed = Some(reason.clone());
            reason
        };
        let wrote = ops.iter().any(|op| matches!(op, Op::Put { .. }));
        if durable && (self.dirty || wrote) {
            self.shared.sync_data().map_err(|cause| {
                fail(format!(
                    "syncing {} failed: {}",
                    self.shared.file.path().display(),
                    cause
                ))
            })?;
        }
        // A remove has no record; its slot stays empty.
        let records: Vec<Vec<u8>> = ops
            .iter()
            .map(|op| match op {
                Op::Put { record, .. } => record.encode(),
                Op::Remove { .. } => Vec::new(),
            })
            .collect();
        let changes: Vec<Change<'_>> = ops
            .iter()
            .zip(&records)
            .map(|(op, record)| match op {
                Op::Put { key, .. } => Change::Put { key, record },
                Op::Remove { key, id, .. } => Change::Remove { key, id: *id },
            })
            .collect();
        let replaced = self
            .shared
            .index
            .commit(&changes, durable)
            .map_err(|e| fail(e.to_string()))?;

        let mut state = self.shared.locked.lock();
        for (op, old) in ops.iter().zip(replaced) {
            match op {
                Op::Put { key, record, .. } => {
                    state.table.insert(key, record.head.clone());
                }
                Op::Remove { key, done, .. } => {
                    if let Some(old) = &old {
                        state.table.remove_if(key, Some(old.id));
                    }
                    if let Some(done) = done {
                        done.set(Ok(old.is_some()));
                    }
                }
            }
            if let Some(old) = old {
                state.free(old, durable);
            }
        }
        if durable {
            state.synced();
            self.dirty = false;
            self.deadline = None;
        } else {
            self.dirty = true;
        }
        Ok(())
    }
}

/// A change to commit, in the order it was asked for.
enum Op {
    Put {
        key: Vec<u8>,
        record: Record,
        done: Arc<Signal<Result<(), StoreError>>>,
    },
    Remove {
        key: Vec<u8>,
        id: Option<u64>,
        done: Option<Arc<Signal<Result<bool, StoreError>>>>,
    },
}
