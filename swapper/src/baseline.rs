//! The engine-only baseline of a swap: the file requests a swap makes, run
//! without its device copies, for benchmarks to hold swaps against. Behind
//! the `baseline` feature: a measuring tool (`tensorswap bench` and the
//! conformance suite use it), not part of the swappers' API.

use crate::error::Result;
use crate::meta::TensorId;
use crate::plan::{self, Chunk, Span};
use crate::stream::{self, ReadSink, WriteSource};
use crate::table::Home;
use crate::tensor_swapper::Swapper;
use tensorswap_core::storage::StripedFile;
use tensorswap_core::{Device, IoEngine, IoOp, SlabPart};

impl<D: Device, E: IoEngine> Swapper<D, E> {
    /// Makes the file requests a swap of `ids` makes (the same chunks, the
    /// same slabs, as many in flight), on `file` (from
    /// [`SwapStore::create_file`](super::SwapStore::create_file), striped
    /// like the store's) instead of the store's file, with no device copy: what the engine alone takes to move a
    /// swap's bytes. `tensorswap bench` compares swaps with it.
    ///
    /// Writes send whatever the slabs hold; reads discard what they read.
    /// Each tensor needs its place in the store's file (swapped out to the
    /// file once); others are [`SwapError::InvalidState`](super::SwapError::InvalidState).
    ///
    /// Only with the `baseline` feature, and hidden from the docs: a
    /// measuring tool, not API.
    #[doc(hidden)]
    pub fn file_io_only(&self, ids: &[TensorId], op: IoOp, file: &StripedFile) -> Result<()> {
        let spans = {
            let table = self.shared.lock();
            let mut spans = Vec::with_capacity(ids.len());
            for (item, &id) in ids.iter().enumerate() {
                let entry = table.entry(id)?;
                let Home::File(extent) = entry.home else {
                    return Err(entry.refuse(
                        id,
                        "file_io_only",
                        "; it has no place in the store's file: swap it out once first",
                    ));
                };
                spans.push(Span {
                    item,
                    file_offset: extent.offset,
                    logical: entry.logical,
                    padded: entry.padded,
                });
            }
            spans
        };
        let store = self.store();
        let batches = plan::batches(&spans, store.pool().slab_size());
        let mut outcome = Outcome(Ok(()));
        match op {
            IoOp::Write => stream::write(store, file, &batches, &mut outcome),
            IoOp::Read => stream::read(store, file, &batches, &mut outcome),
        }
        Ok(outcome.0?)
    }
}

/// Keeps the first failure of a baseline pass; the bytes go nowhere.
struct Outcome(tensorswap_core::Result<()>);

impl Outcome {
    fn keep(&mut self, result: tensorswap_core::Result<()>) {
        if self.0.is_ok() {
            self.0 = result;
        }
    }
}

impl WriteSource for Outcome {
    fn fill(&mut self, _: &Chunk, part: SlabPart) -> Option<SlabPart> {
        Some(part)
    }

    fn written(&mut self, _: &Chunk, result: tensorswap_core::Result<()>) {
        self.keep(result);
    }
}

impl ReadSink for Outcome {
    fn wanted(&mut self, _: &Chunk) -> bool {
        true
    }

    fn consume(&mut self, _: &Chunk, result: tensorswap_core::Result<SlabPart>) {
        self.keep(result.map(drop));
    }
}
