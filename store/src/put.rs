//! Putting a value: space reserved (evicting the least recently used
//! values when full), the value written by the engine while its CRCs are
//! computed, the entry committed by the committer; [`PutTicket`].

use std::ops::Range;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tensorswap_core::sync::{Ticket, TicketFuture};
use tensorswap_core::{HostBuf, HostBuffer, IoEngine, IoEngineExt, Rejected};

use crate::crc::block_crcs;
use crate::error::printable_key;
use crate::inflight::Inflight;
use crate::record::{Head, Record};
use crate::shared::{Msg, PendingPut};
use crate::signal::Signal;
use crate::space::{blocks_for, Extent, BLOCK};
use crate::window::{host_bytes, WriteShare};
use crate::{PersistentStore, PutOptions, StoreError, MAX_KEY_LEN, MAX_META_LEN};

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
        // Every request on the data file is whole, aligned blocks, so the
        // engine moves all of them with O_DIRECT (where the file system has
        // it): direct and buffered writes of neighbouring blocks at once
        // make the kernel fail to drop its cache and mark the file with
        // EIO. An unaligned buffer or length goes through a padded copy.
        let aligned = buf.stable_ptr() as usize % BLOCK as usize == 0 && len % BLOCK == 0;
        let (io, crcs, held) = if aligned {
            let share = WriteShare::new(buf);
            let io = self.write_blocks(&share, &reserved.extents, len);
            (io, block_crcs(share.bytes()), Held::Shared(share))
        } else {
            let crcs = block_crcs(host_bytes(&buf));
            let io = padded_copy(&buf).and_then(|copy| {
                self.write_blocks(&WriteShare::new(copy), &reserved.extents, blocks_for(len))
            });
            (io, crcs, Held::Copied(buf))
        };
        let io = match io {
            Ok(io) => io,
            Err(cause) => {
                self.shared.locked.lock().put_ended(Some(&reserved.extents));
                let error = StoreError::Value {
                    key: printable_key(key),
                    cause,
                };
                return Err(Rejected {
                    error,
                    value: held.into_inner(),
                });
            }
        };
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
        let durability = options.durability.unwrap_or(self.shared.options.durability);
        let done = Signal::new();
        self.send(Msg::Put(Box::new(PendingPut {
            key: key.to_vec(),
            record,
            io,
            durable_by: durability.deadline(Instant::now()),
            done: Arc::clone(&done),
        })));
        Ok(PutTicket {
            held: Some(held),
            done,
        })
    }

    /// Writes the first `len` bytes of `share` over `extents`; on a refusal,
    /// waits for what was submitted and returns the error.
    fn write_blocks<S: HostBuf>(
        &self,
        share: &WriteShare<S>,
        extents: &[Extent],
        len: u64,
    ) -> Result<Box<dyn Inflight>, tensorswap_core::Error> {
        let mut tickets = Vec::with_capacity(extents.len());
        for (offset, range) in pieces(extents, 0, len) {
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
                    return Err(refused.error);
                }
            }
        }
        Ok(Box::new(tickets))
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
    /// removal is durable: one sync for many puts), or space that puts and
    /// gets in flight hold for a moment.
    fn reserve(&self, key: &[u8], len: u64) -> Result<Reserved, StoreError> {
        let need = blocks_for(len);
        let eviction = self.shared.options.eviction;
        let mut state = self.shared.locked.lock();
        let mut waited = Duration::ZERO;
        loop {
            if let Some(reason) = &state.failed {
                return Err(self.shared.stopped(reason));
            }
            if let Some(extents) = state.space.allocate(len) {
                state.writing += 1;
                let id = state.new_id();
                let seq = state.table.next_seq();
                return Ok(Reserved { extents, id, seq });
            }
            let mut evicted = 0;
            if eviction {
                // Evict past the need, so the next puts find room too.
                let target = need + (state.space.capacity() / 64).min(256 << 20);
                while state.space.free() + state.unsynced_bytes() + evicted < target {
                    let Some(victim) = state.table.oldest() else {
                        break;
                    };
                    let Some(head) = state.table.remove_if(&victim, None) else {
                        break;
                    };
                    evicted += head.extents.iter().map(|e| e.len).sum::<u64>();
                    state.evictions += 1;
                    self.send(Msg::Remove {
                        key: victim.to_vec(),
                        id: Some(head.id),
                        durable_by: None,
                        done: None,
                    });
                }
            }
            if state.unsynced_bytes() + evicted > 0 {
                // Freed space comes back with a durable commit.
                drop(state);
                let done = Signal::new();
                self.send(Msg::Sync {
                    done: Arc::clone(&done),
                });
                done.take()?;
                state = self.shared.locked.lock();
            } else if (state.writing > 0 || state.pending() > 0) && waited < MAX_WAIT {
                // Puts in flight free what they replace when they commit;
                // gets free what was removed under them when they end.
                let start = Instant::now();
                state = self
                    .shared
                    .locked
                    .space_freed
                    .wait_timeout(state, Duration::from_millis(100))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                waited += start.elapsed();
            } else {
                return Err(StoreError::Full {
                    key: printable_key(key),
                    needed: need,
                    free: state.space.free(),
                    capacity: state.space.capacity(),
                    eviction,
                });
            }
        }
    }
}

/// Longest a put waits for space that requests in flight hold.
const MAX_WAIT: Duration = Duration::from_secs(30);

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
    held: Option<Held<B>>,
    done: Arc<Signal<Result<(), StoreError>>>,
}

/// The caller's buffer while its put runs.
enum Held<B: HostBuf> {
    /// Shared with the file requests that write it.
    Shared(WriteShare<B>),
    /// Copied: the requests write the copy.
    Copied(B),
}

impl<B: HostBuf> Held<B> {
    /// The buffer, once no request holds it: the committer drops the file
    /// requests (and their windows) before it answers, and a refused put
    /// waited for those it had submitted.
    fn into_inner(self) -> B {
        match self {
            Self::Shared(share) => share.into_inner().ok().expect("no window is left"),
            Self::Copied(buf) => buf,
        }
    }
}

/// `buf`'s bytes in a page-aligned buffer of whole blocks, zero-padded.
fn padded_copy<B: HostBuf>(buf: &B) -> Result<HostBuffer, tensorswap_core::Error> {
    let len = buf.bytes_len();
    let mut copy = HostBuffer::new(blocks_for(len as u64) as usize)?;
    copy[..len].copy_from_slice(host_bytes(buf));
    Ok(copy)
}

impl<B: HostBuf> PutTicket<B> {
    /// True once waiting would not block.
    pub fn is_complete(&self) -> bool {
        self.done.is_set()
    }

    /// Blocks until the value is committed (and durable, if the put's
    /// durability is [`Durability::Sync`](crate::Durability::Sync)); the buffer back.
    pub fn wait(mut self) -> Result<B, Rejected<B, StoreError>> {
        let result = self.done.take();
        let buf = self
            .held
            .take()
            .expect("a ticket is waited once")
            .into_inner();
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
