//! The swapper's worker thread: runs queued swaps one job at a time, each
//! job pipelined through the store's slabs, and records every tensor's
//! outcome in the table as soon as that tensor is done.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use crate::direct::{self, DirectMove};
use crate::error::{Result, SwapError, SwapOp};
use crate::extent::Extent;
use crate::meta::TensorId;
use crate::plan::{self, Chunk, Span};
use crate::shared::Shared;
use crate::stream::{self, ReadSink, WriteSource};
use crate::table::{Home, Slot};
use crate::ticket::SwapTicket;
use tensorswap_core::{
    Device, DeviceBuffer, DeviceExt, HostBuffer, IoEngine, IoOp, SlabPart, Transfer,
};

/// Which way a job moves tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    Out,
    In,
}

impl Way {
    fn op(self) -> SwapOp {
        match self {
            Way::Out => SwapOp::SwapOut,
            Way::In => SwapOp::SwapIn,
        }
    }
}

/// One `swap_out`/`swap_in`/`prefetch` call.
pub(crate) struct Job<D: Device> {
    pub(crate) way: Way,
    pub(crate) items: Vec<Item<D>>,
    pub(crate) ticket: Option<SwapTicket>,
}

/// One tensor of a job, with everything the job owns of it.
pub(crate) struct Item<D: Device> {
    pub(crate) id: TensorId,
    pub(crate) logical: usize,
    pub(crate) padded: usize,
    /// Out: the tensor's memory. In: allocated by the job.
    pub(crate) buf: Option<DeviceBuffer<D>>,
    pub(crate) place: Option<Place>,
}

/// Where a job writes a tensor to or reads it from.
pub(crate) enum Place {
    File(Extent),
    Host(Option<HostBuffer>),
}

/// Runs jobs until the swapper drops its sender; jobs queued after the
/// swapper started closing are cancelled (their tensors keep their state).
pub(crate) fn run<D: Device, E: IoEngine>(shared: &Shared<D, E>, jobs: Receiver<Job<D>>) {
    for job in jobs {
        let cancel = shared.closing.load(Ordering::SeqCst);
        Run::new(shared, job).execute(cancel);
    }
}

/// A job being executed.
struct Run<'a, D: Device, E: IoEngine> {
    shared: &'a Shared<D, E>,
    way: Way,
    items: Vec<Item<D>>,
    errors: Vec<Option<SwapError>>,
    /// Chunks of each item not yet accounted for.
    remaining: Vec<usize>,
    finished: Vec<bool>,
    ticket: Option<SwapTicket>,
}

impl<'a, D: Device, E: IoEngine> Run<'a, D, E> {
    fn new(shared: &'a Shared<D, E>, job: Job<D>) -> Self {
        let n = job.items.len();
        Self {
            shared,
            way: job.way,
            items: job.items,
            errors: (0..n).map(|_| None).collect(),
            remaining: vec![0; n],
            finished: vec![false; n],
            ticket: job.ticket,
        }
    }

    fn execute(mut self, cancel: bool) {
        if !cancel {
            self.move_host_items();
            self.move_file_items();
        }
        for i in 0..self.items.len() {
            if !self.finished[i] {
                self.record(
                    i,
                    SwapError::Closed {
                        what: self.way.op().as_str(),
                    },
                );
                self.finish(i);
            }
        }
    }

    /// Host-tier tensors: one device copy each, straight to or from their buffer.
    fn move_host_items(&mut self) {
        for i in 0..self.items.len() {
            if let Some(Place::Host(host)) = self.items[i].place.as_mut() {
                let host = host.take();
                let host = self.move_host(i, host);
                self.items[i].place = Some(Place::Host(host));
                self.finish(i);
            }
        }
    }

    fn move_host(&mut self, i: usize, host: Option<HostBuffer>) -> Option<HostBuffer> {
        let device = &self.shared.device;
        let logical = self.items[i].logical;
        match self.way {
            Way::Out => {
                let buf = self.items[i].buf.take()?;
                let host = match host {
                    Some(host) => host,
                    None => match device.alloc_host(logical) {
                        Ok(host) => host,
                        Err(err) => {
                            tracing::warn!(%err, "host tier: unregistered memory");
                            match HostBuffer::new(logical) {
                                Ok(host) => host,
                                Err(err) => {
                                    self.items[i].buf = Some(buf);
                                    self.record(i, err);
                                    return None;
                                }
                            }
                        }
                    },
                };
                let (outcome, host, buf) =
                    done(device.download(buf, 0, host).and_then(Transfer::wait));
                self.items[i].buf = Some(buf);
                if let Err(err) = outcome {
                    self.record(i, err);
                }
                Some(host)
            }
            Way::In => {
                let host = host?;
                let buf = match device.alloc(logical) {
                    Ok(buf) => buf,
                    Err(err) => {
                        self.record(i, err);
                        return Some(host);
                    }
                };
                let (outcome, host, buf) =
                    done(device.upload(host, buf, 0).and_then(Transfer::wait));
                self.items[i].buf = Some(buf);
                if let Err(err) = outcome {
                    self.record(i, err);
                }
                Some(host)
            }
        }
    }

    /// File tensors: pipelined through the store's slabs.
    fn move_file_items(&mut self) {
        let spans: Vec<Span> = (0..self.items.len())
            .filter_map(|i| match &self.items[i].place {
                Some(Place::File(extent)) => Some(Span {
                    item: i,
                    file_offset: extent.offset,
                    logical: self.items[i].logical,
                    padded: self.items[i].padded,
                }),
                _ => None,
            })
            .collect();
        if spans.is_empty() {
            return;
        }
        if self.shared.path.is_direct() {
            return self.move_direct(&spans);
        }
        let batches = plan::batches(&spans, self.shared.store.pool().slab_size());
        for chunk in batches.iter().flatten() {
            self.remaining[chunk.item] += 1;
        }
        for span in &spans {
            if self.remaining[span.item] == 0 {
                if self.way == Way::In {
                    self.allocate(span.item);
                }
                self.finish(span.item);
            }
        }
        let store = self.shared.store.clone();
        match self.way {
            Way::Out => {
                self.shared
                    .wait_for_readers(self.items.iter().map(|it| it.id));
                stream::write(&store, store.striped_file(), &batches, self);
            }
            Way::In => stream::read(&store, store.striped_file(), &batches, self),
        }
    }

    /// File tensors on the direct path: each whole tensor straight between
    /// its device memory and the file, several in flight.
    fn move_direct(&mut self, spans: &[Span]) {
        let shared = self.shared;
        let op = match self.way {
            Way::Out => {
                shared.wait_for_readers(self.items.iter().map(|it| it.id));
                IoOp::Write
            }
            Way::In => IoOp::Read,
        };
        let mut moves = Vec::with_capacity(spans.len());
        for span in spans {
            let i = span.item;
            if self.way == Way::In && !self.allocate(i) {
                self.finish(i);
                continue;
            }
            match self.items[i].buf.take() {
                Some(buf) if span.logical > 0 => moves.push(DirectMove {
                    item: i,
                    buf,
                    file_offset: span.file_offset,
                    len: span.logical,
                }),
                buf => {
                    self.items[i].buf = buf;
                    self.finish(i);
                }
            }
        }
        let depth = shared.store.engine().config().queue_depth;
        let stopped = || shared.closing.load(Ordering::Relaxed);
        direct::run(
            &shared.device,
            shared.store.file(),
            op,
            moves,
            depth,
            stopped,
            |i, buf, outcome| {
                self.items[i].buf = Some(buf);
                let item = &self.items[i];
                // The padding is written too, so that the extent reads back
                // whole on the pinned path (`swap_into`).
                let outcome = outcome.and_then(|()| match (op, &item.place) {
                    (IoOp::Write, Some(Place::File(extent))) => Ok(shared.store.zero(
                        extent.offset + item.logical as u64,
                        item.padded - item.logical,
                    )?),
                    _ => Ok(()),
                });
                if let Err(err) = outcome {
                    self.record(i, err);
                }
                self.finish(i);
            },
        );
    }

    /// Allocates the device memory a swap-in fills; false if that failed.
    fn allocate(&mut self, i: usize) -> bool {
        if self.items[i].buf.is_some() {
            return true;
        }
        match self.shared.device.alloc(self.items[i].logical) {
            Ok(buf) => {
                self.items[i].buf = Some(buf);
                true
            }
            Err(err) => {
                self.record(i, err);
                false
            }
        }
    }

    fn record(&mut self, i: usize, error: impl Into<SwapError>) {
        if self.errors[i].is_none() {
            self.errors[i] = Some(error.into());
        }
    }

    /// One chunk of item `i` is done with; the last one finishes the item.
    fn account(&mut self, i: usize) {
        self.remaining[i] = self.remaining[i].saturating_sub(1);
        if self.remaining[i] == 0 {
            self.finish(i);
        }
    }

    /// Records the item's outcome in the table and on the ticket.
    fn finish(&mut self, i: usize) {
        if std::mem::replace(&mut self.finished[i], true) {
            return;
        }
        let item = &mut self.items[i];
        let failure = self.errors[i].take().map(Arc::new);
        let buf = item.buf.take();
        let home = match item.place.take() {
            Some(Place::File(extent)) => Home::File(extent),
            Some(Place::Host(host)) => Home::Host(host),
            None => Home::Unassigned,
        };
        // A failed swap-out leaves the tensor resident with no stored copy:
        // its home is released.
        let (slot, clean_up, keep_home) = match (self.way, &failure, buf) {
            (Way::Out, None, buf) => (Slot::Stored, buf, true),
            (Way::In, None, Some(buf)) => (Slot::resident(buf, true), None, true),
            (Way::Out, Some(_), Some(buf)) => (Slot::resident(buf, false), None, false),
            (_, _, buf) => (Slot::Stored, buf, true),
        };
        self.shared.settle(
            item.id,
            slot,
            (home, keep_home),
            self.way.op(),
            failure.clone(),
        );
        drop(clean_up);
        if let Some(ticket) = &self.ticket {
            ticket.finish(item.id, self.way.op(), failure);
        }
    }
}

impl<D: Device, E: IoEngine> WriteSource for Run<'_, D, E> {
    fn fill(&mut self, chunk: &Chunk, mut part: SlabPart) -> Option<SlabPart> {
        let i = chunk.item;
        let buf = match (&self.errors[i], self.items[i].buf.take()) {
            (None, Some(buf)) => buf,
            (_, buf) => {
                self.items[i].buf = buf;
                self.account(i);
                return None;
            }
        };
        if let Err(err) = part.set_len(chunk.len) {
            self.items[i].buf = Some(buf);
            self.record(i, err);
            self.account(i);
            return None;
        }
        let device = &self.shared.device;
        let (outcome, mut part, buf) = done(
            device
                .download(buf, chunk.item_offset, part)
                .and_then(Transfer::wait),
        );
        self.items[i].buf = Some(buf);
        let padded = outcome.and_then(|()| part.set_len(chunk.padded));
        if let Err(err) = padded {
            self.record(i, err);
            self.account(i);
            return None;
        }
        // The padding goes to the file too: zeros, not a stale slab's bytes.
        part[chunk.len..].fill(0);
        Some(part)
    }

    fn written(&mut self, chunk: &Chunk, result: tensorswap_core::Result<()>) {
        if let Err(err) = result {
            self.record(chunk.item, err);
        }
        self.account(chunk.item);
    }

    fn stopped(&self) -> bool {
        self.shared.closing.load(Ordering::Relaxed)
    }
}

impl<D: Device, E: IoEngine> ReadSink for Run<'_, D, E> {
    fn wanted(&mut self, chunk: &Chunk) -> bool {
        let i = chunk.item;
        if self.errors[i].is_none() && self.allocate(i) {
            return true;
        }
        self.account(i);
        false
    }

    fn consume(&mut self, chunk: &Chunk, result: tensorswap_core::Result<SlabPart>) {
        let i = chunk.item;
        let upload = |this: &mut Self, mut part: SlabPart| -> Result<()> {
            part.set_len(chunk.len)?;
            let buf = this.items[i]
                .buf
                .take()
                .ok_or(SwapError::Closed { what: "swap_in" })?;
            let device = &this.shared.device;
            let (outcome, _part, buf) = done(
                device
                    .upload(part, buf, chunk.item_offset)
                    .and_then(Transfer::wait),
            );
            this.items[i].buf = Some(buf);
            Ok(outcome?)
        };
        let outcome = match result {
            Ok(part) if self.errors[i].is_none() => upload(self, part),
            Ok(_) => Ok(()),
            Err(err) => Err(err.into()),
        };
        if let Err(err) = outcome {
            self.record(i, err);
        }
        self.account(i);
    }

    fn stopped(&self) -> bool {
        self.shared.closing.load(Ordering::Relaxed)
    }
}

/// Splits a finished transfer into its outcome and its two buffers.
fn done<D: Device, H>(
    result: tensorswap_core::TransferResult<D, H>,
) -> (tensorswap_core::Result<()>, H, DeviceBuffer<D>) {
    match result {
        Ok(done) => (Ok(()), done.host, done.device),
        Err(failed) => (Err(failed.error), failed.value.host, failed.value.device),
    }
}

/// Finishes a job that could not be queued: every tensor keeps its state
/// and reports [`SwapError::Closed`].
pub(crate) fn cancel<D: Device, E: IoEngine>(shared: &Shared<D, E>, job: Job<D>) {
    Run::new(shared, job).execute(true);
}
