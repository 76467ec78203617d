//! [`GradientSwapper`]: gradients appended to pinned slabs and written
//! behind while the caller keeps producing, read back (and summed) at step
//! time.

use std::collections::{HashMap, VecDeque};

use bytemuck::Pod;

use crate::error::{Result, SwapError};
use crate::extent::Extent;
use crate::meta::TensorId;
use crate::store::SwapStore;
use tensorswap_core::storage::StripedTicket;
use tensorswap_core::{AnyEngine, Error, IoEngine, Parked, SlabPart};

/// Record starts within a slab are aligned to this (any element type fits).
const RECORD_ALIGN: usize = 64;

/// Where one piece of an appended gradient lives in the file.
#[derive(Debug, Clone, Copy)]
struct Piece {
    /// File offset of the piece.
    offset: u64,
    /// Bytes.
    len: usize,
    /// Offset of the piece within its record.
    at: usize,
    /// The slab extent holding it (reads stay inside it, aligned).
    slab: Extent,
}

/// The slab being filled.
struct Open {
    part: SlabPart,
    extent: Extent,
    used: usize,
}

/// A slab being written to its extent.
type Write<E> = (Extent, StripedTicket<<E as IoEngine>::Pending, SlabPart>);

/// Gradients written behind: [`append`](Self::append) copies into the
/// current pinned slab and, when it is full, starts writing it and carries
/// on in the next one; only when every slab is in flight does it wait
/// (back-pressure). [`sum_into`](Self::sum_into) and
/// [`read_into`](Self::read_into) read them back at step time;
/// [`clear`](Self::clear) starts the next accumulation.
///
/// A slab whose write fails stays in memory and is written again by the
/// next [`flush`](Self::flush) (which every read calls first), so no
/// gradient is lost to a transient error.
///
/// The slabs it holds between calls (the open one, writes whose tickets it
/// waits on its next call, failed ones) are [`Parked`]: a
/// [`Swapper`](super::Swapper) sharing the store whose lease could only wait
/// for them fails with [`Error::PoolStalled`] instead of waiting forever.
pub struct GradientSwapper<E: IoEngine = AnyEngine> {
    store: SwapStore<E>,
    open: Option<Parked<Open>>,
    writes: VecDeque<Parked<Write<E>>>,
    failed: Vec<Parked<(Extent, SlabPart)>>,
    records: HashMap<TensorId, Vec<Vec<Piece>>>,
    extents: Vec<Extent>,
}

impl<E: IoEngine> GradientSwapper<E> {
    /// Gradients staged through `store`'s slabs, written to its file.
    pub fn new(store: SwapStore<E>) -> Self {
        Self {
            store,
            open: None,
            writes: VecDeque::new(),
            failed: Vec::new(),
            records: HashMap::new(),
            extents: Vec::new(),
        }
    }

    /// Appends one gradient of `id` (appending the same id again adds
    /// another record, e.g. one per micro-batch).
    ///
    /// Fails only when every slab is held by a write that failed and fails
    /// again: then nothing of this gradient is recorded (append it again
    /// later) and the held slabs stay in memory for the next flush.
    pub fn append<T: Pod>(&mut self, id: TensorId, gradient: &[T]) -> Result<()> {
        let bytes: &[u8] = bytemuck::cast_slice(gradient);
        let mut pieces = Vec::new();
        let mut done = 0;
        while done < bytes.len() {
            let open = self.open_slab()?;
            let start = open.used.next_multiple_of(RECORD_ALIGN);
            if start >= open.part.len() {
                self.submit_open()?;
                continue;
            }
            let n = (bytes.len() - done).min(open.part.len() - start);
            open.part[start..start + n].copy_from_slice(&bytes[done..done + n]);
            pieces.push(Piece {
                offset: open.extent.offset + start as u64,
                len: n,
                at: done,
                slab: open.extent,
            });
            open.used = start + n;
            done += n;
            if open.used == open.part.len() {
                self.submit_open()?;
            }
        }
        self.records.entry(id).or_default().push(pieces);
        Ok(())
    }

    /// Records appended for `id` since the last `clear`.
    pub fn records(&self, id: TensorId) -> usize {
        self.records.get(&id).map_or(0, Vec::len)
    }

    /// Writes the partly filled slab and waits for every write (retrying
    /// slabs whose write failed before).
    pub fn flush(&mut self) -> Result<()> {
        if self.open.as_ref().is_some_and(|o| o.used > 0) {
            self.submit_open()?;
        }
        let mut first_error = None;
        while let Some(write) = self.writes.pop_front() {
            let (extent, ticket) = write.into_inner();
            if let Err(failed) = ticket.wait() {
                self.failed.push(self.park((extent, failed.value)));
                first_error.get_or_insert(failed.error);
            }
        }
        for held in std::mem::take(&mut self.failed) {
            let (extent, part) = held.into_inner();
            let result = match self.store.write(extent.offset, part) {
                Ok(ticket) => ticket.wait().map(drop),
                Err(failed) => Err(failed),
            };
            if let Err(failed) = result {
                self.failed.push(self.park((extent, failed.value)));
                first_error.get_or_insert(failed.error);
            }
        }
        first_error.map_or(Ok(()), |error| Err(error.into()))
    }

    /// Adds every record of `id` into `acc` (element-wise, f32), returning
    /// how many records there were. A record longer than `acc` is an error,
    /// and so is an `id` with no record since the last `clear`
    /// ([`SwapError::UnknownTensor`]).
    pub fn sum_into(&mut self, id: TensorId, acc: &mut [f32]) -> Result<usize> {
        let size = std::mem::size_of_val(acc);
        self.read_records(id, size, 4, |at, bytes| {
            let add: &[f32] = bytemuck::cast_slice(bytes);
            let start = at / 4;
            for (a, b) in acc[start..start + add.len()].iter_mut().zip(add) {
                *a += b;
            }
        })
    }

    /// Copies the one record of `id` into `out` (of exactly its length).
    pub fn read_into<T: Pod>(&mut self, id: TensorId, out: &mut [T]) -> Result<()> {
        let records = self.records(id);
        if records != 1 {
            return Err(Error::Layout {
                reason: format!("gradient {id} has {records} records; read_into needs exactly one (sum_into adds several)"),
            }.into());
        }
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
        let len = bytes.len();
        let exact = self
            .records
            .get(&id)
            .into_iter()
            .flatten()
            .flatten()
            .map(|p| p.len)
            .sum::<usize>();
        if exact != len {
            return Err(Error::Layout {
                reason: format!("gradient {id} has {exact} bytes, the buffer {len}"),
            }
            .into());
        }
        self.read_records(id, len, 1, |at, piece| {
            bytes[at..at + piece.len()].copy_from_slice(piece)
        })?;
        Ok(())
    }

    /// Forgets every record and frees the file space (after the writes in
    /// flight finish), ready for the next accumulation.
    pub fn clear(&mut self) -> Result<()> {
        self.flush()?;
        self.open = None;
        self.records.clear();
        for extent in self.extents.drain(..) {
            self.store.free(extent);
        }
        Ok(())
    }

    /// Reads each piece of each record of `id` (checking each record fits
    /// `limit` bytes and is whole `elem`-byte elements) and hands
    /// `(offset in record, bytes)` to `take`.
    fn read_records(
        &mut self,
        id: TensorId,
        limit: usize,
        elem: usize,
        mut take: impl FnMut(usize, &[u8]),
    ) -> Result<usize> {
        self.flush()?;
        let records = self
            .records
            .get(&id)
            .cloned()
            .ok_or(SwapError::UnknownTensor { id })?;
        for pieces in &records {
            let len: usize = pieces.iter().map(|p| p.len).sum();
            if len > limit || len % elem != 0 {
                return Err(Error::Layout {
                    reason: format!("gradient {id} has a record of {len} bytes, the buffer {limit} bytes of {elem}-byte elements"),
                }.into());
            }
            for piece in pieces {
                let align = self.store.alignment() as u64;
                let start = (piece.offset / align * align).max(piece.slab.offset);
                let end = (piece.offset + piece.len as u64)
                    .next_multiple_of(align)
                    .min(piece.slab.offset + piece.slab.len);
                let window = (end - start) as usize;
                let mut parts = self.store.pool().wait_lease()?.split(&[window])?;
                let part = parts.pop().ok_or_else(|| Error::Layout {
                    reason: "empty split".into(),
                })?;
                let part = self
                    .store
                    .read(start, part)
                    .map_err(|f| f.error)?
                    .wait()
                    .map_err(|f| f.error)?
                    .buf;
                let from = (piece.offset - start) as usize;
                take(piece.at, &part[from..from + piece.len]);
            }
        }
        Ok(records.len())
    }

    /// The slab being filled, leasing (and placing in the file) a new one
    /// when there is none.
    fn open_slab(&mut self) -> Result<&mut Open> {
        if self.open.is_none() {
            let slab = loop {
                if let Ok(slab) = self.store.pool().try_lease() {
                    break slab;
                }
                match self.writes.pop_front() {
                    Some(write) => self.settle(write),
                    // Our failed slabs hold the pool: write them again, or
                    // give up on this append rather than wait forever.
                    None if !self.failed.is_empty() => self.flush()?,
                    None => break self.store.pool().wait_lease()?,
                }
            };
            let len = slab.capacity();
            let part = slab.split(&[len])?.pop().ok_or_else(|| Error::Layout {
                reason: "empty split".into(),
            })?;
            let extent = self.store.alloc(len)?;
            self.extents.push(extent);
            self.open = Some(self.park(Open {
                part,
                extent,
                used: 0,
            }));
        }
        let open = self.open.as_mut().ok_or_else(|| Error::Layout {
            reason: "no open slab".into(),
        })?;
        Ok(open)
    }

    /// Starts writing the open slab (its used bytes, padded).
    fn submit_open(&mut self) -> Result<()> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let Open {
            mut part,
            extent,
            used,
        } = open.into_inner();
        let padded = self.store.padded(used)?.min(part.capacity());
        part[used..padded].fill(0);
        part.set_len(padded)?;
        match self.store.write(extent.offset, part) {
            Ok(ticket) => {
                let write = self.park((extent, ticket));
                self.writes.push_back(write);
            }
            Err(failed) => {
                let held = self.park((extent, failed.value));
                self.failed.push(held);
            }
        }
        while self.writes.front().is_some_and(|w| w.1.is_complete()) {
            if let Some(write) = self.writes.pop_front() {
                self.settle(write);
            }
        }
        Ok(())
    }

    /// Waits for one write; a failed one is kept for the next flush.
    fn settle(&mut self, write: Parked<Write<E>>) {
        let (extent, ticket) = write.into_inner();
        if let Err(failed) = ticket.wait() {
            tracing::warn!(error = %failed.error, "gradient slab write failed; flush retries it");
            let held = self.park((extent, failed.value));
            self.failed.push(held);
        }
    }

    /// Marks a value holding one of the store's slabs as held between calls.
    fn park<T>(&self, value: T) -> Parked<T> {
        self.store.pool().park(value)
    }
}
