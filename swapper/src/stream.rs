//! The pipelines: batches of chunks move between slab parts and the file
//! with as many requests in flight as the pool has slabs, so filling (or
//! draining) one slab overlaps the file I/O of the others.

use std::collections::VecDeque;

use crate::plan::Chunk;
use crate::store::SwapStore;
use tensorswap_core::pool::Stalled;
use tensorswap_core::storage::{StripedFile, StripedTicket};
use tensorswap_core::{IoEngine, PinnedPool, Result, Slab, SlabPart};

/// Where a write pipeline gets its bytes, and who hears how each chunk went.
pub(crate) trait WriteSource {
    /// Fills `part` (its length is `chunk.padded`) with the chunk's bytes,
    /// or returns `None` to leave the chunk out (the source has accounted
    /// for it).
    fn fill(&mut self, chunk: &Chunk, part: SlabPart) -> Option<SlabPart>;
    /// The write of a filled chunk finished.
    fn written(&mut self, chunk: &Chunk, result: Result<()>);
    /// True to stop submitting (requests in flight still finish).
    fn stopped(&self) -> bool {
        false
    }
}

/// Where a read pipeline delivers its bytes.
pub(crate) trait ReadSink {
    /// Whether to read `chunk` at all (`false`: the sink has accounted for it).
    fn wanted(&mut self, chunk: &Chunk) -> bool;
    /// The read of a chunk finished: its part (length `chunk.padded`), or the error.
    fn consume(&mut self, chunk: &Chunk, result: Result<SlabPart>);
    /// True to stop submitting (requests in flight still finish).
    fn stopped(&self) -> bool {
        false
    }
}

type Ticket<E> = StripedTicket<<E as IoEngine>::Pending, SlabPart>;
type InFlight<E> = VecDeque<(Chunk, Ticket<E>)>;

/// Writes every batch to `file` (the store's, or a benchmark's from
/// [`SwapStore::create_file`]), each through one slab of the store's pool,
/// in order.
pub(crate) fn write<E: IoEngine>(
    store: &SwapStore<E>,
    file: &StripedFile,
    batches: &[Vec<Chunk>],
    source: &mut impl WriteSource,
) {
    let mut inflight: InFlight<E> = VecDeque::new();
    let finish = |source: &mut dyn WriteSource, (chunk, ticket): (Chunk, StripedTicket<_, _>)| {
        source.written(&chunk, ticket.wait().map(drop).map_err(|f| f.error));
    };
    for (b, batch) in batches.iter().enumerate() {
        if source.stopped() {
            break;
        }
        let slab = match lease(store.pool(), &mut inflight, |front| finish(source, front)) {
            Ok(slab) => slab,
            Err(stalled) => {
                for chunk in batches[b..].iter().flatten() {
                    source.written(chunk, Err(stalled.into()));
                }
                break;
            }
        };
        let Some(parts) = split(slab, batch, |chunk, error| {
            source.written(chunk, Err(error))
        }) else {
            continue;
        };
        for (chunk, part) in batch.iter().zip(parts) {
            let Some(part) = source.fill(chunk, part) else {
                continue;
            };
            match store.write_to(file, chunk.file_offset, part) {
                Ok(ticket) => inflight.push_back((*chunk, ticket)),
                Err(failed) => source.written(chunk, Err(failed.error)),
            }
            while let Some(front) = pop_complete::<E>(&mut inflight) {
                finish(source, front);
            }
        }
    }
    for front in inflight {
        finish(source, front);
    }
}

/// Reads every batch from `file`, each into one slab of the store's pool,
/// delivering chunks in order.
pub(crate) fn read<E: IoEngine>(
    store: &SwapStore<E>,
    file: &StripedFile,
    batches: &[Vec<Chunk>],
    sink: &mut impl ReadSink,
) {
    let mut inflight: InFlight<E> = VecDeque::new();
    let finish = |sink: &mut dyn ReadSink, (chunk, ticket): (Chunk, StripedTicket<_, _>)| {
        sink.consume(
            &chunk,
            ticket.wait().map(|done| done.buf).map_err(|f| f.error),
        );
    };
    let mut stalled: Option<Stalled> = None;
    for batch in batches {
        if sink.stopped() {
            break;
        }
        let wanted: Vec<Chunk> = batch.iter().copied().filter(|c| sink.wanted(c)).collect();
        if wanted.is_empty() {
            continue;
        }
        if let Some(error) = stalled {
            wanted
                .iter()
                .for_each(|c| sink.consume(c, Err(error.into())));
            continue;
        }
        let slab = match lease(store.pool(), &mut inflight, |front| finish(sink, front)) {
            Ok(slab) => slab,
            Err(error) => {
                wanted
                    .iter()
                    .for_each(|c| sink.consume(c, Err(error.into())));
                stalled = Some(error);
                continue;
            }
        };
        let Some(parts) = split(slab, &wanted, |chunk, error| {
            sink.consume(chunk, Err(error))
        }) else {
            continue;
        };
        for (chunk, part) in wanted.iter().zip(parts) {
            match store.read_from(file, chunk.file_offset, part) {
                Ok(ticket) => inflight.push_back((*chunk, ticket)),
                Err(failed) => sink.consume(chunk, Err(failed.error)),
            }
        }
        while let Some(front) = pop_complete::<E>(&mut inflight) {
            finish(sink, front);
        }
    }
    for front in inflight {
        finish(sink, front);
    }
}

/// A free slab: when the pool is exhausted, finishes our oldest request
/// (returning its slab) before blocking on someone else's; fails when the
/// others' slabs are all parked and would never come back.
fn lease<T>(
    pool: &PinnedPool,
    inflight: &mut VecDeque<T>,
    mut finish: impl FnMut(T),
) -> std::result::Result<Slab, Stalled> {
    loop {
        if let Ok(slab) = pool.try_lease() {
            return Ok(slab);
        }
        match inflight.pop_front() {
            Some(front) => finish(front),
            None => return pool.lease_or_stall(),
        }
    }
}

/// The oldest request, if it has finished.
fn pop_complete<E: IoEngine>(inflight: &mut InFlight<E>) -> Option<(Chunk, Ticket<E>)> {
    if inflight.front()?.1.is_complete() {
        inflight.pop_front()
    } else {
        None
    }
}

/// Cuts a slab into one part per chunk. The plan sizes batches to the
/// pool's slabs; should a batch not fit, each chunk reports the error.
fn split(
    slab: Slab,
    chunks: &[Chunk],
    mut failed: impl FnMut(&Chunk, tensorswap_core::Error),
) -> Option<Vec<SlabPart>> {
    let lens: Vec<usize> = chunks.iter().map(|c| c.padded).collect();
    match slab.split(&lens) {
        Ok(parts) => Some(parts),
        Err(error) => {
            let reason = error.to_string();
            for chunk in chunks {
                failed(
                    chunk,
                    tensorswap_core::Error::Layout {
                        reason: reason.clone(),
                    },
                );
            }
            None
        }
    }
}
