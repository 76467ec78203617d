//! The transfer thread: stages, copies and completes transfers in
//! submission order, pipelined through the staging buffers.
//!
//! A transfer is cut into pieces of at most one staging buffer. Each piece
//! is one `copy_buffer_to_buffer` submission; the thread keeps up to
//! `buffers` pieces per direction in flight and blocks in
//! `wgpu::Device::poll` (inside the driver, no spinning) for the oldest one
//! when it needs a staging buffer back or has nothing else to do. Callers
//! wait on their [`Latch`], never on the GPU.
//!
//! The GPU only ever touches device and staging buffers; host memory is read
//! (uploads) or written (downloads) by this thread alone, so a piece that
//! fails or times out can never write into host memory later.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use tensorswap_core::sync::{Latch, WorkerThread};
use tensorswap_core::{Direction, Error, Result};

use crate::scope::captured;
use crate::staging::{Lane, MapState, Ring, Slot};
use crate::window::{Piece, Window};
use crate::BACKEND;

/// A host address that may cross to the transfer thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostPtr(pub(crate) *mut u8);

// SAFETY: the Device contract makes the submitter keep the host range alive
// and unaliased until the transfer's ticket has been waited; only the
// transfer thread dereferences it, within that window.
unsafe impl Send for HostPtr {}

/// Staging and timing knobs of the transfer thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Staging {
    /// Bytes per staging buffer (a multiple of the copy alignment).
    pub(crate) chunk: u64,
    /// Staging buffers per direction.
    pub(crate) buffers: usize,
    /// Longest wait for one piece before the device is declared hung.
    pub(crate) timeout: Duration,
}

/// One transfer, as the device hands it to the thread.
#[derive(Debug)]
pub(crate) struct Job {
    /// Host memory: read by uploads, written by downloads.
    pub(crate) host: HostPtr,
    /// The device buffer.
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) transfer: Arc<Transfer>,
}

/// What a transfer is, for its pieces to report errors and complete it.
#[derive(Debug)]
pub(crate) struct Transfer {
    pub(crate) direction: Direction,
    /// Offset in the device buffer.
    pub(crate) offset: usize,
    pub(crate) len: usize,
    pub(crate) ticket: Arc<Latch>,
}

impl Transfer {
    fn error(&self, reason: String) -> Error {
        Error::Transfer {
            backend: BACKEND,
            direction: self.direction,
            offset: self.offset,
            len: self.len,
            reason,
        }
    }

    /// Closes one piece (or the starting phase) of the transfer.
    fn close(&self, failure: Option<String>) {
        self.ticket
            .close(failure.map_or(Ok(()), |reason| Err(self.error(reason))));
    }
}

impl Drop for Transfer {
    /// A transfer dropped with pieces open was never finished: the transfer
    /// thread stopped (a bug made it panic). Its waiter must not hang, and
    /// may free its host memory: the GPU never touches host memory.
    fn drop(&mut self) {
        self.ticket
            .abandon(|| self.error("the wgpu transfer thread stopped before finishing it".into()));
    }
}

/// Owns the transfer thread; dropping it lets the thread finish every queued
/// transfer and joins it.
#[derive(Debug)]
pub(crate) struct Transfers(WorkerThread<Job>);

impl Transfers {
    pub(crate) fn start(
        device: wgpu::Device,
        queue: wgpu::Queue,
        staging: Staging,
    ) -> Result<Self> {
        let worker = Worker {
            up: Ring::new(Lane::Up, staging.chunk, staging.buffers),
            down: Ring::new(Lane::Down, staging.chunk, staging.buffers),
            device,
            queue,
            staging,
            flight: VecDeque::new(),
            edges: None,
            broken: None,
        };
        WorkerThread::spawn("tensorswap-wgpu".into(), move |inbox| worker.run(inbox))
            .map(Self)
            .map_err(|e| Error::Device {
                component: BACKEND,
                op: "start the transfer thread",
                reason: e.to_string(),
            })
    }

    /// Queues a transfer; its ticket completes when it is done.
    pub(crate) fn submit(&self, job: Job) -> Result<()> {
        self.0.send(job).map_err(|_| Error::Device {
            component: BACKEND,
            op: "submit transfer",
            reason: "the transfer thread has stopped".into(),
        })
    }
}

/// A piece whose copy has been submitted.
struct Flight {
    submission: wgpu::SubmissionIndex,
    slot: Slot,
    lane: Lane,
    /// A download piece's bytes to move from staging into host memory.
    deliver: Option<Delivery>,
    /// Why the piece already failed, when staging or submitting did.
    failed: Option<String>,
    transfer: Arc<Transfer>,
}

/// Where a download piece's requested bytes go.
struct Delivery {
    /// Bytes mapped (the piece's size).
    mapped: u64,
    /// The requested bytes within them.
    staged: Range<usize>,
    host: HostPtr,
}

struct Worker {
    device: wgpu::Device,
    queue: wgpu::Queue,
    staging: Staging,
    up: Ring,
    down: Ring,
    /// Submitted pieces, oldest first.
    flight: VecDeque<Flight>,
    /// An 8-byte buffer for reading the edge words of unaligned uploads.
    edges: Option<Slot>,
    /// Set once the device is lost or hung: every later transfer fails with it.
    broken: Option<String>,
}

impl Worker {
    fn run(mut self, inbox: Receiver<Job>) {
        loop {
            let job = if self.flight.is_empty() {
                match inbox.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                }
            } else {
                match inbox.try_recv() {
                    Ok(job) => job,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                        self.retire_oldest();
                        continue;
                    }
                }
            };
            self.start(job);
        }
        tracing::debug!("wgpu transfer thread stopped");
    }

    /// Submits every piece of `job`.
    fn start(&mut self, job: Job) {
        let transfer = &job.transfer;
        if let Some(reason) = &self.broken {
            transfer.close(Some(format!("the device is unusable: {reason}")));
            return;
        }
        let window = Window::new(transfer.offset, transfer.len);
        let (lane, edges) = match transfer.direction {
            Direction::Download => (Lane::Down, [0; 8]),
            Direction::Upload => match self.read_edges(&job.buffer, &window) {
                Ok(edges) => (Lane::Up, edges),
                Err(reason) => {
                    transfer.close(Some(format!(
                        "reading the bytes around the range: {reason}"
                    )));
                    return;
                }
            },
        };
        for piece in window.pieces(self.staging.chunk) {
            let slot = match self.acquire(lane) {
                Ok(slot) => slot,
                Err(error) => {
                    transfer.close(Some(format!("creating a staging buffer: {error}")));
                    return;
                }
            };
            let size = piece.size();
            let flight = match lane {
                Lane::Up => {
                    let (staged, error) = captured(&self.device, || {
                        stage(&slot, &piece, &window, edges, job.host)
                    });
                    if let Some(reason) = staged.err().or(error.map(|e| e.to_string())) {
                        // Copying stale staging bytes would corrupt the tensor.
                        self.up.discard(slot);
                        transfer.close(Some(reason));
                        return;
                    }
                    let (submission, error) =
                        self.copy(&slot.buffer, 0, &job.buffer, piece.device.start, size);
                    slot.request_map(&self.device, wgpu::MapMode::Write, slot.buffer.size());
                    Flight {
                        submission,
                        slot,
                        lane,
                        deliver: None,
                        failed: error.map(|e| e.to_string()),
                        transfer: Arc::clone(transfer),
                    }
                }
                Lane::Down => {
                    let (submission, error) =
                        self.copy(&job.buffer, piece.device.start, &slot.buffer, 0, size);
                    slot.request_map(&self.device, wgpu::MapMode::Read, size);
                    // SAFETY: `piece.host` lies within the `len` bytes the
                    // caller of submit_download keeps writable until waited.
                    let host = HostPtr(unsafe { job.host.0.add(piece.host.start) });
                    Flight {
                        submission,
                        slot,
                        lane,
                        deliver: Some(Delivery {
                            mapped: size,
                            staged: piece.staged,
                            host,
                        }),
                        failed: error.map(|e| e.to_string()),
                        transfer: Arc::clone(transfer),
                    }
                }
            };
            transfer.ticket.open();
            self.flight.push_back(flight);
        }
        transfer.close(None);
    }

    /// An idle staging buffer of `lane`, retiring pieces until one is free.
    fn acquire(&mut self, lane: Lane) -> Result<Slot, wgpu::Error> {
        loop {
            let ring = match lane {
                Lane::Up => &mut self.up,
                Lane::Down => &mut self.down,
            };
            if let Some(slot) = ring.take(&self.device) {
                return slot;
            }
            self.retire_oldest();
        }
    }

    /// Encodes and submits one buffer-to-buffer copy.
    fn copy(
        &self,
        src: &wgpu::Buffer,
        src_offset: u64,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    ) -> (wgpu::SubmissionIndex, Option<wgpu::Error>) {
        captured(&self.device, || {
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("tensorswap copy"),
                });
            encoder.copy_buffer_to_buffer(src, src_offset, dst, dst_offset, size);
            self.queue.submit([encoder.finish()])
        })
    }

    /// Blocks until `submission` has run and the map callbacks it enables
    /// have been called.
    fn wait_for(&mut self, submission: &wgpu::SubmissionIndex) -> Result<(), String> {
        let waited = self.device.poll(wgpu::PollType::Wait {
            submission_index: Some(submission.clone()),
            timeout: Some(self.staging.timeout),
        });
        waited.map(drop).map_err(|error| {
            let reason = format!("waiting for the GPU: {error}");
            self.broken.get_or_insert_with(|| reason.clone());
            reason
        })
    }

    /// Waits for a staging buffer's map request to be answered.
    fn settle(&mut self, slot: &Slot) -> MapState {
        // The callback normally ran in the poll that saw the copy finish;
        // another thread polling the same device may run it a little later.
        for _ in 0..2 {
            if slot.map_state() != MapState::Pending {
                break;
            }
            let _ = self.device.poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: Some(self.staging.timeout),
            });
        }
        slot.map_state()
    }

    /// Completes the oldest piece in flight: waits for its copy, delivers a
    /// download's bytes, and returns its staging buffer.
    fn retire_oldest(&mut self) {
        let Some(flight) = self.flight.pop_front() else {
            return;
        };
        let mut failed = flight.failed;
        // On a broken device nothing more is waited for: the GPU may still
        // use the staging buffer, so it is discarded, but never host memory.
        if self.broken.is_none() {
            // A failed wait marks the device broken.
            let _ = self.wait_for(&flight.submission);
        }
        let state = match &self.broken {
            Some(reason) => {
                failed.get_or_insert_with(|| format!("the device is unusable: {reason}"));
                MapState::Pending
            }
            None => self.settle(&flight.slot),
        };
        if state == MapState::Failed {
            let reason = "mapping a staging buffer failed (device lost?)".to_string();
            self.broken.get_or_insert_with(|| reason.clone());
            failed.get_or_insert(reason);
        }
        let ring = match flight.lane {
            Lane::Up => &mut self.up,
            Lane::Down => &mut self.down,
        };
        match (state, flight.deliver) {
            (MapState::Mapped, None) => ring.put_back(flight.slot),
            (MapState::Mapped, Some(delivery)) => {
                if failed.is_none() {
                    let (delivered, error) =
                        captured(&self.device, || deliver(&flight.slot, delivery));
                    failed = delivered.err().or(error.map(|e| e.to_string()));
                }
                let ((), error) = captured(&self.device, || flight.slot.buffer.unmap());
                match error {
                    None => ring.put_back(flight.slot),
                    Some(error) => {
                        failed.get_or_insert(format!("unmapping a staging buffer: {error}"));
                        ring.discard(flight.slot);
                    }
                }
            }
            (_, _) => ring.discard(flight.slot),
        }
        flight.transfer.close(failed);
    }

    /// The aligned words around an unaligned upload's range, as they are
    /// on the device once every earlier transfer has landed: the head word
    /// in bytes 0..4, the tail word in 4..8.
    fn read_edges(&mut self, buffer: &wgpu::Buffer, window: &Window) -> Result<[u8; 8], String> {
        let words = [window.head_word(), window.tail_word()];
        if words == [None, None] {
            return Ok([0; 8]);
        }
        let slot = match self.edges.take() {
            Some(slot) => slot,
            None => Slot::new(&self.device, Lane::Down, 8).map_err(|e| e.to_string())?,
        };
        let (submission, mut error) = captured(&self.device, || {
            let mut encoder = self.device.create_command_encoder(&Default::default());
            for (at, word) in [0u64, 4].into_iter().zip(words) {
                if let Some(word) = word {
                    encoder.copy_buffer_to_buffer(buffer, word, &slot.buffer, at, 4);
                }
            }
            self.queue.submit([encoder.finish()])
        });
        slot.request_map(&self.device, wgpu::MapMode::Read, 8);
        self.wait_for(&submission)?;
        if self.settle(&slot) != MapState::Mapped {
            return Err("mapping the edge buffer failed (device lost?)".into());
        }
        let mut edges = [0; 8];
        let ((), unmap_error) = captured(&self.device, || {
            match slot.buffer.slice(..).get_mapped_range() {
                Ok(view) => edges.copy_from_slice(&view),
                Err(e) => tracing::error!(%e, "edge buffer not mapped"),
            }
            slot.buffer.unmap();
        });
        error = error.or(unmap_error);
        match error {
            Some(error) => Err(error.to_string()),
            None => {
                self.edges = Some(slot);
                Ok(edges)
            }
        }
    }
}

/// Writes an upload piece into its mapped staging buffer: the host bytes,
/// and around them the kept edge bytes of an unaligned range.
fn stage(
    slot: &Slot,
    piece: &Piece,
    window: &Window,
    edges: [u8; 8],
    host: HostPtr,
) -> Result<(), String> {
    let size = piece.size();
    let staged = piece.staged.clone();
    // SAFETY: the caller of submit_upload keeps `len` bytes at the host
    // pointer readable and unchanged until the ticket is waited, and
    // `piece.host` lies within them.
    let src = unsafe {
        std::slice::from_raw_parts(host.0.add(piece.host.start).cast_const(), piece.host.len())
    };
    let mut view = slot
        .buffer
        .slice(0..size)
        .get_mapped_range_mut()
        .map_err(|e| format!("writing a staging buffer: {e}"))?;
    let mut bytes = view.slice(..);
    bytes.slice(staged.clone()).copy_from_slice(src);
    if staged.start > 0 {
        bytes
            .slice(..staged.start)
            .copy_from_slice(&edges[..window.head_len()]);
    }
    if staged.end < size as usize {
        bytes
            .slice(staged.end..)
            .copy_from_slice(&edges[8 - window.tail_len()..]);
    }
    drop(view);
    slot.buffer.unmap();
    Ok(())
}

/// Copies a download piece's bytes out of its mapped staging buffer.
fn deliver(slot: &Slot, delivery: Delivery) -> Result<(), String> {
    let view = slot
        .buffer
        .slice(0..delivery.mapped)
        .get_mapped_range()
        .map_err(|e| format!("reading a staging buffer: {e}"))?;
    let bytes = view
        .get(delivery.staged)
        .ok_or("staging range out of bounds")?;
    // SAFETY: `host` points at `bytes.len()` bytes of the download's host
    // range, which the caller of submit_download keeps writable and
    // unaliased until the ticket is waited; staging memory never overlaps it.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), delivery.host.0, bytes.len()) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use tensorswap_core::PendingOp;

    use super::*;
    use tensorswap_core::sync::LatchPending;

    fn transfer(ticket: &Arc<Latch>) -> Transfer {
        Transfer {
            direction: Direction::Upload,
            offset: 4,
            len: 8,
            ticket: Arc::clone(ticket),
        }
    }

    #[test]
    fn a_transfer_dropped_unfinished_fails_its_ticket_instead_of_hanging() {
        let ticket = Latch::new(1);
        let unfinished = transfer(&ticket);
        ticket.open();
        unfinished.close(None);
        drop(unfinished);
        let err = LatchPending::new(ticket).wait().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Transfer {
                    offset: 4,
                    len: 8,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("stopped"), "{err}");
    }

    #[test]
    fn a_finished_transfer_keeps_its_outcome_when_dropped() {
        let ticket = Latch::new(1);
        let done = transfer(&ticket);
        ticket.open();
        done.close(Some("first".into()));
        done.close(Some("second".into()));
        drop(done);
        let err = LatchPending::new(ticket).wait().unwrap_err();
        assert!(err.to_string().contains("first"), "{err}");
    }
}
