//! Putting a value: space reserved (evicting the least recently used
//! values when full), the value written by the engine while its CRCs are
//! computed, the entry committed by the committer; [`PutTicket`].

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use tensorswap_core::sync::{Ticket, TicketFuture};
use tensorswap_core::{HostBuf, IoEngine, IoEngineExt, Rejected};

use crate::crc::block_crcs;
use crate::error::printable_key;
use crate::record::{Head, Record};
use crate::shared::{Msg, PendingPut};
use crate::signal::Signal;
use crate::space::{blocks_for, Extent};
use crate::window::WriteShare;
use crate::{Durability, PersistentStore, PutOptions, StoreError, MAX_KEY_LEN, MAX_META_LEN};

/// Space set aside for a put.
struct Reserved {
    extents: Vec<Extent>,
    id: u64,
    seq: u64,
}

impl<E: IoEngine + 'static> PersistentStore<E> {
    /// Starts putting `buf` as `key`'s value (replacing any value it has,
    /// atomically: a reader sees the old value or the new one whole).
    ///
    /// The value is invisible until the ticket completes; it is then
    /// durable as [`PutOptions::durability`] (or the store's) says. When
    /// the store is full, the least recently used unpinned values are
    /// evicted; with eviction off the put fails with
    /// [`StoreError::Full`]. A refused put hands `buf` back.
    pub fn put<B: HostBuf>(
        &self,
        key: &[u8],
        buf: B,
        options: &PutOptions,
    ) -> Result<PutTicket<B>, Rejected<B, StoreError>> {
        let len = buf.bytes_len() as u64;
        let reserved = match self
            .check_put(key, len, options)
            .and_then(|()| self.reserve(key, len))
        {
            Ok(reserved) => reserved,
            Err(error) => return Err(Rejected { error, value: buf }),
        };
        let share = WriteShare::new(buf);
        let mut tickets = Vec::with_capacity(reserved.extents.len());
        for (offset, range) in pieces(&reserved.extents, 0, len) {
            match self
                .shared
                .engine
                .write(&self.shared.file, offset, share.window(range))
            {
                Ok(ticket) => tickets.push(ticket),
                Err(refused) => {
                    drop(refused.value);
                    for ticket in tickets {
                        let _ = ticket.wait();
                    }
                    self.shared.locked.lock().space.release(&reserved.extents);
                    let value = share.into_inner().ok().expect("no window is left");
                    let error = StoreError::Value {
                        key: printable_key(key),
                        cause: refused.error,
                    };
                    return Err(Rejected { error, value });
                }
            }
        }
        // While the engine writes: the CRCs of the same bytes.
        let crcs = block_crcs(share.bytes());
        let record = Record {
            head: Head {
                id: reserved.id,
                len,
                seq: reserved.seq,
                pinned: options.pinned,
                extents: reserved.extents.into(),
            },
            meta: options.meta.clone(),
            crcs,
        };
        let now = Instant::now();
        let durable_by = match options.durability.unwrap_or(self.shared.options.durability) {
            Durability::Sync => Some(now),
            Durability::Within(interval) => Some(now + interval),
            Durability::Flush => None,
        };
        let done = Signal::new();
        self.send(Msg::Put(Box::new(PendingPut {
            key: key.to_vec(),
            record,
            io: Box::new(tickets),
            durable_by,
            done: Arc::clone(&done),
        })));
        Ok(PutTicket {
            share: Some(share),
            done,
        })
    }

    fn check_put(&self, key: &[u8], len: u64, options: &PutOptions) -> Result<(), StoreError> {
        if key.len() > MAX_KEY_LEN {
            return Err(StoreError::KeyTooLong {
                len: key.len(),
                max: MAX_KEY_LEN,
            });
        }
        if options.meta.len() > MAX_META_LEN {
            return Err(StoreError::MetaTooLong {
                key: printable_key(key),
                len: options.meta.len(),
                max: MAX_META_LEN,
            });
        }
        let capacity = self.shared.locked.lock().space.capacity();
        if blocks_for(len) > capacity {
            return Err(StoreError::TooLarge {
                key: printable_key(key),
                len,
                capacity,
            });
        }
        Ok(())
    }

    /// Space for `len` bytes: free space, or space made by evicting the
    /// least recently used values (a batch of them, reusable once their
    /// removal is durable: one sync for many puts).
    fn reserve(&self, key: &[u8], len: u64) -> Result<Reserved, StoreError> {
        let need = blocks_for(len);
        let eviction = self.shared.options.eviction;
        let mut state = self.shared.locked.lock();
        let mut last_free = None;
        loop {
            if let Some(reason) = &state.failed {
                return Err(self.shared.stopped(reason));
            }
            if let Some(extents) = state.space.allocate(len) {
                let id = state.new_id();
                let seq = state.table.next_seq();
                return Ok(Reserved { extents, id, seq });
            }
            let mut soon = state.space.free() + state.unsynced_bytes();
            if eviction {
                // Evict past the need, so the next puts find room too.
                let target = need + (state.space.capacity() / 64).min(256 << 20);
                while soon < target {
                    let Some(victim) = state.table.oldest() else {
                        break;
                    };
                    let Some(head) = state.table.remove_if(&victim, None) else {
                        break;
                    };
                    soon += head.extents.iter().map(|e| e.len).sum::<u64>();
                    state.evictions += 1;
                    self.send(Msg::Remove {
                        key: victim.to_vec(),
                        id: Some(head.id),
                        done: None,
                    });
                }
            }
            // Stuck: not enough space on its way back, or a sync brought none.
            let free = state.space.free();
            if soon < need || last_free == Some(free) {
                return Err(StoreError::Full {
                    key: printable_key(key),
                    needed: need,
                    free: soon,
                    capacity: state.space.capacity(),
                    eviction,
                });
            }
            last_free = Some(free);
            drop(state);
            let done = Signal::new();
            self.send(Msg::Sync {
                done: Arc::clone(&done),
            });
            done.take()?;
            state = self.shared.locked.lock();
        }
    }
}

/// The file pieces of value bytes `from..to`: (file offset, range of the
/// buffer that holds value bytes `from..`).
pub(crate) fn pieces(extents: &[Extent], from: u64, to: u64) -> Vec<(u64, Range<usize>)> {
    let mut out = Vec::new();
    let mut base = 0;
    for extent in extents {
        let (start, end) = (from.max(base), to.min(base + extent.len));
        if start < end {
            let range = (start - from) as usize..(end - from) as usize;
            out.push((extent.offset + (start - base), range));
        }
        base += extent.len;
    }
    out
}

/// The ticket of a [`put`](PersistentStore::put): the buffer back once the
/// value is committed.
///
/// Dropping it does not cancel the put, which completes in the background.
#[must_use = "the ticket gives the buffer back and says whether the put was committed"]
pub struct PutTicket<B: HostBuf> {
    share: Option<WriteShare<B>>,
    done: Arc<Signal<Result<(), StoreError>>>,
}

impl<B: HostBuf> PutTicket<B> {
    /// True once waiting would not block.
    pub fn is_complete(&self) -> bool {
        self.done.is_set()
    }

    /// Blocks until the value is committed (and durable, if the put's
    /// durability is [`Durability::Sync`]); the buffer back.
    pub fn wait(mut self) -> Result<B, Rejected<B, StoreError>> {
        let result = self.done.take();
        let share = self.share.take().expect("a ticket is waited once");
        // The committer drops the file requests (and their windows) before
        // it answers.
        let buf = share.into_inner().ok().expect("no window is left");
        match result {
            Ok(()) => Ok(buf),
            Err(error) => Err(Rejected { error, value: buf }),
        }
    }
}

impl<B: HostBuf> std::fmt::Debug for PutTicket<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutTicket")
            .field("complete", &self.is_complete())
            .finish()
    }
}

impl<B: HostBuf> Ticket for PutTicket<B> {
    type Output = Result<B, Rejected<B, StoreError>>;

    fn is_complete(&self) -> bool {
        PutTicket::is_complete(self)
    }

    fn wait(self) -> Self::Output {
        PutTicket::wait(self)
    }
}

/// `ticket.await`, on any executor.
impl<B: HostBuf> std::future::IntoFuture for PutTicket<B> {
    type Output = Result<B, Rejected<B, StoreError>>;
    type IntoFuture = TicketFuture<Self>;

    fn into_future(self) -> Self::IntoFuture {
        TicketFuture::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::BLOCK;

    #[test]
    fn pieces_map_value_ranges_onto_extents() {
        let extents = [
            Extent {
                offset: 10 * BLOCK,
                len: 2 * BLOCK,
            },
            Extent {
                offset: 3 * BLOCK,
                len: BLOCK,
            },
        ];
        let all = pieces(&extents, 0, 2 * BLOCK + 100);
        assert_eq!(
            all,
            vec![
                (10 * BLOCK, 0..2 * BLOCK as usize),
                (3 * BLOCK, 2 * BLOCK as usize..2 * BLOCK as usize + 100)
            ]
        );
        let mid = pieces(&extents, BLOCK, 2 * BLOCK + 10);
        assert_eq!(
            mid,
            vec![
                (11 * BLOCK, 0..BLOCK as usize),
                (3 * BLOCK, BLOCK as usize..BLOCK as usize + 10)
            ]
        );
    }
}
