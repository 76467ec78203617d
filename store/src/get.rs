//! Getting a value or part of one into the caller's buffer (a `Vec`, a
//! pinned pool's slab, any `HostBufMut`), every byte checked against the
//! CRCs of its 4 KiB blocks; [`GetTicket`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tensorswap_core::buffer::bytes_mut;
use tensorswap_core::sync::{Ticket, TicketFuture};
use tensorswap_core::{HostBufMut, HostBuffer, IoEngine, IoEngineExt, Rejected};

use crate::crc;
use crate::error::printable_key;
use crate::inflight::Inflight;
use crate::put::pieces;
use crate::record::Record;
use crate::space::BLOCK;
use crate::state::ReadGuard;
use crate::window::ReadShare;
use crate::{PersistentStore, StoreError};

/// What a finished get gives.
#[derive(Debug)]
pub struct GetDone<B> {
    /// The caller's buffer, its first `len` bytes the value's (or the range's).
    pub buf: B,
    /// Bytes read.
    pub len: usize,
}

impl<E: IoEngine + 'static> PersistentStore<E> {
    /// Starts reading `key`'s whole value into the start of `buf`, which
    /// must hold at least [`value_len`](Self::value_len) bytes.
    ///
    /// A key without a value is [`StoreError::NotFound`] (the buffer back).
    pub fn get<B: HostBufMut>(
        &self,
        key: &[u8],
        buf: B,
    ) -> Result<GetTicket<B>, Rejected<B, StoreError>> {
        self.read(key, None, buf)
    }

    /// Starts reading `buf.bytes_len()` bytes of `key`'s value from
    /// `offset` into `buf`: a tensor's slice, one layer of a checkpoint.
    pub fn get_range<B: HostBufMut>(
        &self,
        key: &[u8],
        offset: u64,
        buf: B,
    ) -> Result<GetTicket<B>, Rejected<B, StoreError>> {
        self.read(key, Some(offset), buf)
    }

    /// Starts reading `key`'s whole value into a new page-aligned buffer of
    /// its length.
    pub fn get_owned(&self, key: &[u8]) -> Result<GetTicket<HostBuffer>, StoreError> {
        let (record, guard) = self.begin_read(key)?;
        let buf = HostBuffer::new(record.head.len as usize)?;
        self.read_entry(key, record, guard, None, buf)
            .map_err(Rejected::into_error)
    }

    fn read<B: HostBufMut>(
        &self,
        key: &[u8],
        offset: Option<u64>,
        buf: B,
    ) -> Result<GetTicket<B>, Rejected<B, StoreError>> {
        match self.begin_read(key) {
            Ok((record, guard)) => self.read_entry(key, record, guard, offset, buf),
            Err(error) => Err(Rejected { error, value: buf }),
        }
    }

    /// Reads the value of `record` (or `buf`'s length of it from `offset`).
    fn read_entry<B: HostBufMut>(
        &self,
        key: &[u8],
        record: Record,
        guard: ReadGuard,
        offset: Option<u64>,
        buf: B,
    ) -> Result<GetTicket<B>, Rejected<B, StoreError>> {
        let value_len = record.head.len;
        let (from, len) = match offset {
            None => (0, value_len),
            Some(at) => (at, buf.bytes_len() as u64),
        };
        let reason = if from.checked_add(len).is_none_or(|end| end > value_len) {
            Some(format!(
                "bytes {from}..+{len} are not inside its value of {value_len} bytes"
            ))
        } else if (buf.bytes_len() as u64) < len {
            Some(format!(
                "a buffer of {} bytes cannot hold its value of {len} bytes",
                buf.bytes_len()
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            let error = StoreError::Range {
                key: printable_key(key),
                reason,
            };
            return Err(Rejected { error, value: buf });
        }
        // Whole blocks are read (every request on the data file is whole,
        // aligned blocks: see `put`) and the value's bytes of them checked.
        let first = from / BLOCK * BLOCK;
        let last = (from + len).div_ceil(BLOCK) * BLOCK;
        let plan = Plan {
            key: key.to_vec(),
            first_block: (first / BLOCK) as usize,
            skip: (from - first) as usize,
            len: len as usize,
            checked: (last.min(value_len) - first) as usize,
        };
        let direct = buf.stable_ptr() as usize % BLOCK as usize == 0 && first + len == last;
        let ranges = pieces(&record.head.extents, first, last);
        let submitted = if direct {
            self.submit(ranges, buf)
                .map(|(share, io)| (Target::Direct(share), io))
        } else {
            match HostBuffer::new((last - first) as usize) {
                Ok(scratch) => match self.submit(ranges, scratch) {
                    Ok((share, io)) => Ok((Target::Staged { share, buf }, io)),
                    Err(Rejected { error, .. }) => Err(Rejected { error, value: buf }),
                },
                Err(cause) => Err(Rejected {
                    error: cause.into(),
                    value: buf,
                }),
            }
        };
        let (target, io) = match submitted {
            Ok(submitted) => submitted,
            Err(Rejected { error, value }) => {
                let error = match error {
                    StoreError::Core(cause) => StoreError::Value {
                        key: printable_key(key),
                        cause,
                    },
                    other => other,
                };
                return Err(Rejected { error, value });
            }
        };
        self.shared.read.fetch_add(len, Ordering::Relaxed);
        Ok(GetTicket {
            io: Some(io),
            target: Some(target),
            plan,
            crcs: record.crcs,
            _guard: guard,
        })
    }

    /// The key's entry, with its value protected from reuse until the
    /// guard drops.
    fn begin_read(&self, key: &[u8]) -> Result<(Record, ReadGuard), StoreError> {
        // The committer changes the index before the table: a lookup that
        // finds them apart retries.
        for _ in 0..1000 {
            let id = {
                let mut state = self.shared.locked.lock();
                let Some(head) = state.table.get(key) else {
                    return Err(StoreError::NotFound {
                        key: printable_key(key),
                    });
                };
                let id = head.id;
                state.table.touch(key);
                state.add_reader(id);
                id
            };
            let guard = ReadGuard {
                locked: Arc::clone(&self.shared.locked),
                id,
            };
            match self.shared.index.record(key)? {
                Some(record) if record.head.id == id => return Ok((record, guard)),
                _ => std::thread::yield_now(),
            }
        }
        Err(StoreError::IndexCorrupt {
            path: self.shared.index.path().to_path_buf(),
            reason: format!(
                "the index and the open store disagree on key {}",
                printable_key(key)
            ),
        })
    }

    /// Reads each (file offset, buffer range) into `buf`.
    fn submit<R: HostBufMut>(
        &self,
        ranges: Vec<(u64, std::ops::Range<usize>)>,
        buf: R,
    ) -> Result<Reading<R>, Rejected<R, StoreError>> {
        let spans: Vec<_> = ranges.iter().map(|(_, r)| r.clone()).collect();
        let (share, windows) = match ReadShare::split(buf, &spans) {
            Ok(split) => split,
            Err(value) => {
                let error = StoreError::Range {
                    key: String::new(),
                    reason: "its extents overlap".into(),
                };
                return Err(Rejected { error, value });
            }
        };
        let mut tickets = Vec::with_capacity(windows.len());
        for ((offset, _), window) in ranges.into_iter().zip(windows) {
            match self.shared.engine.read(&self.shared.file, offset, window) {
                Ok(ticket) => tickets.push(ticket),
                Err(refused) => {
                    drop(refused.value);
                    drop(tickets);
                    let value = share.into_inner().ok().expect("no window is left");
                    return Err(Rejected {
                        error: refused.error.into(),
                        value,
                    });
                }
            }
        }
        Ok((share, Box::new(tickets)))
    }
}

/// A buffer being filled, and the requests filling it.
type Reading<R> = (ReadShare<R>, Box<dyn Inflight>);

/// Where the bytes land.
enum Target<B: HostBufMut> {
    /// In the caller's buffer, at its start.
    Direct(ReadShare<B>),
    /// In whole blocks of a scratch buffer, copied to the caller's once checked.
    Staged {
        share: ReadShare<HostBuffer>,
        buf: B,
    },
}

/// What a get reads.
struct Plan {
    key: Vec<u8>,
    /// The value's block the read bytes start at.
    first_block: usize,
    /// Bytes of that block before the caller's range.
    skip: usize,
    /// Bytes the caller gets.
    len: usize,
    /// Bytes read that are the value's (the rest of the last block is not).
    checked: usize,
}

/// The ticket of a get: the caller's buffer back with the value's bytes,
/// each checked against its block's CRC32C.
///
/// Dropping it waits for the reads.
#[must_use = "a get must be waited to get the buffer and its bytes back"]
pub struct GetTicket<B: HostBufMut> {
    io: Option<Box<dyn Inflight>>,
    target: Option<Target<B>>,
    plan: Plan,
    crcs: Vec<u32>,
    _guard: ReadGuard,
}

impl<B: HostBufMut> GetTicket<B> {
    /// True once waiting would not block.
    pub fn is_complete(&self) -> bool {
        self.io.as_ref().is_none_or(|io| io.is_complete())
    }

    /// Blocks until the bytes are read and checked. A block that fails its
    /// CRC is [`StoreError::Checksum`], naming the key and the block; the
    /// buffer comes back either way.
    pub fn wait(mut self) -> Result<GetDone<B>, Rejected<B, StoreError>> {
        let io = self.io.take().expect("a ticket is waited once").wait();
        let target = self.target.take().expect("a ticket is waited once");
        let plan = &self.plan;
        let key = || printable_key(&plan.key);
        let (mut buf, staged) = match target {
            Target::Direct(share) => (share.into_inner().ok().expect("no window is left"), None),
            Target::Staged { share, buf } => (
                buf,
                Some(share.into_inner().ok().expect("no window is left")),
            ),
        };
        if let Err(cause) = io {
            return Err(Rejected {
                error: StoreError::Value { key: key(), cause },
                value: buf,
            });
        }
        let checked = match &staged {
            Some(scratch) => crc::check(&scratch[..plan.checked], plan.first_block, &self.crcs),
            None => crc::check(
                &bytes_mut(&mut buf)[..plan.len],
                plan.first_block,
                &self.crcs,
            ),
        };
        if let Err(m) = checked {
            let error = StoreError::Checksum {
                key: key(),
                offset: m.block as u64 * BLOCK,
                len: m.len as u64,
                expected: m.expected,
                actual: m.actual,
            };
            return Err(Rejected { error, value: buf });
        }
        if let Some(scratch) = staged {
            bytes_mut(&mut buf)[..plan.len]
                .copy_from_slice(&scratch[plan.skip..plan.skip + plan.len]);
        }
        Ok(GetDone { buf, len: plan.len })
    }
}

impl<B: HostBufMut> std::fmt::Debug for GetTicket<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetTicket")
            .field("key", &printable_key(&self.plan.key))
            .field("len", &self.plan.len)
            .field("complete", &self.is_complete())
            .finish()
    }
}

impl<B: HostBufMut> Ticket for GetTicket<B> {
    type Output = Result<GetDone<B>, Rejected<B, StoreError>>;

    fn is_complete(&self) -> bool {
        GetTicket::is_complete(self)
    }

    fn wait(self) -> Self::Output {
        GetTicket::wait(self)
    }
}

/// `ticket.await`, on any executor.
impl<B: HostBufMut> std::future::IntoFuture for GetTicket<B> {
    type Output = Result<GetDone<B>, Rejected<B, StoreError>>;
    type IntoFuture = TicketFuture<Self>;

    fn into_future(self) -> Self::IntoFuture {
        TicketFuture::new(self)
    }
}
