//! The io_uring engine: one ring per worker thread, up to `queue_depth`
//! pieces in flight on each, registered buffers for pinned pools.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

use io_uring::{opcode, squeue, types, IoUring};

use super::completion::EnginePending;
use super::engine::{IoEngine, IoRequest, Region};
use super::piece::{split, Piece, Step};
use crate::sys::eventfd::EventFd;
use crate::{AioConfig, Error, IoOp, Result};

/// `user_data` of the eventfd read that wakes a worker.
const WAKE: u64 = u64::MAX;
/// The kernel registers at most 1 GiB per buffer.
const MAX_FIXED: usize = 1 << 30;

/// An [`IoEngine`] on Linux io_uring.
///
/// Each of `intra_op_parallelism` workers owns a ring and keeps up to
/// `queue_depth` pieces in flight; a request's pieces are spread over the
/// workers in contiguous runs. Submissions are batched (all pieces that fit
/// go in one `io_uring_enter`) unless `single_submit` is set; with
/// `overlap_events` off a worker waits for its whole batch before refilling.
/// A pinned pool offered through [`IoEngine::register_region`] is registered
/// as fixed buffers, and pieces inside it use `READ_FIXED`/`WRITE_FIXED`.
#[derive(Debug)]
pub struct UringEngine {
    config: AioConfig,
    workers: Vec<WorkerHandle>,
    next: AtomicUsize,
}

#[derive(Debug)]
struct WorkerHandle {
    queue: Option<Sender<Msg>>,
    wake: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
}

enum Msg {
    Piece(Piece),
    Register(Region, Sender<bool>),
}

impl UringEngine {
    /// Creates the rings and starts the workers. Fails with
    /// [`Error::Unavailable`] where io_uring cannot be used (old kernel,
    /// seccomp, `io_uring_disabled` sysctl).
    pub fn new(config: &AioConfig) -> Result<Self> {
        config.validate()?;
        let entries = u32::try_from(config.queue_depth + 1)
            .unwrap_or(u32::MAX)
            .next_power_of_two();
        let mut workers = Vec::with_capacity(config.intra_op_parallelism);
        for i in 0..config.intra_op_parallelism {
            let ring = IoUring::new(entries).map_err(|err| Error::Unavailable {
                backend: "uring",
                reason: format!("io_uring_setup failed: {err}"),
            })?;
            let wake = Arc::new(EventFd::new().map_err(|err| Error::Unavailable {
                backend: "uring",
                reason: format!("eventfd failed: {err}"),
            })?);
            let (queue, rx) = mpsc::channel();
            let worker = Worker {
                ring,
                fixed: None,
                wake_buf: Box::new(0),
                wake: wake.clone(),
                rx,
                slots: Vec::new(),
                free: Vec::new(),
                backlog: VecDeque::new(),
                in_flight: 0,
                queue_depth: config.queue_depth,
                single_submit: config.single_submit,
                overlap: config.overlap_events,
            };
            let thread = std::thread::Builder::new()
                .name(format!("tensorswap-uring-{i}"))
                .spawn(move || worker.run())
                .map_err(|err| Error::Device {
                    backend: "uring",
                    op: "start a worker thread",
                    reason: err.to_string(),
                })?;
            workers.push(WorkerHandle {
                queue: Some(queue),
                wake,
                thread: Some(thread),
            });
        }
        Ok(Self {
            config: config.clone(),
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// True when this kernel lets this process create an io_uring.
    pub fn available() -> std::result::Result<(), String> {
        IoUring::new(2).map(drop).map_err(|e| e.to_string())
    }
}

impl WorkerHandle {
    fn send(&self, msg: Msg) -> std::result::Result<(), Msg> {
        match &self.queue {
            Some(queue) => queue.send(msg).map_err(|e| e.0),
            None => Err(msg),
        }
    }
}

impl IoEngine for UringEngine {
    type Pending = EnginePending;

    fn name(&self) -> &'static str {
        "uring"
    }

    fn config(&self) -> &AioConfig {
        &self.config
    }

    unsafe fn submit(&self, req: IoRequest) -> Result<EnginePending> {
        let (pieces, completion) = split(req, self.config.block_size);
        let workers = self.workers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = pieces.len();
        let mut touched = vec![false; workers];
        for (i, piece) in pieces.into_iter().enumerate() {
            // Contiguous runs of pieces per worker, starting at a rotating worker.
            let w = (start + i * workers / count) % workers;
            match self.workers[w].send(Msg::Piece(piece)) {
                Ok(()) => touched[w] = true,
                Err(Msg::Piece(piece)) => piece.finish(Err(stopped())),
                Err(Msg::Register(..)) => {}
            }
        }
        for (w, touched) in touched.into_iter().enumerate() {
            if touched {
                if let Err(err) = self.workers[w].wake.signal() {
                    tracing::error!(%err, "could not wake an io_uring worker");
                }
            }
        }
        Ok(EnginePending(completion))
    }

    fn register_region(&self, region: Region) -> bool {
        let mut replies = Vec::new();
        for worker in &self.workers {
            let (tx, rx) = mpsc::channel();
            let msg = Msg::Register(
                Region {
                    ptr: region.ptr,
                    len: region.len,
                    keep_alive: region.keep_alive.clone(),
                },
                tx,
            );
            if worker.send(msg).is_ok() && worker.wake.signal().is_ok() {
                replies.push(rx);
            } else {
                return false;
            }
        }
        replies.into_iter().all(|rx| rx.recv().unwrap_or(false))
    }
}

fn stopped() -> Error {
    Error::Device {
        backend: "uring",
        op: "submit",
        reason: "the engine's worker has stopped".into(),
    }
}

impl Drop for UringEngine {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            drop(worker.queue.take());
            let _ = worker.wake.signal();
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// A registered region: pieces inside it use fixed-buffer opcodes.
struct Fixed {
    base: usize,
    len: usize,
    _keep_alive: Arc<dyn std::any::Any + Send + Sync>,
}

impl Fixed {
    /// Index of the registered buffer that wholly contains `addr..addr+len`.
    fn index(&self, (addr, len): (usize, usize)) -> Option<u16> {
        let rel = addr.checked_sub(self.base)?;
        let end = rel.checked_add(len)?;
        let index = rel / MAX_FIXED;
        (end <= self.len && (end - 1) / MAX_FIXED == index && len > 0)
            .then(|| u16::try_from(index).ok())
            .flatten()
    }
}

// Field order matters: the ring is dropped first (cancelling the armed
// eventfd read and releasing the registered buffers), and only then the
// memory those refer to.
struct Worker {
    ring: IoUring,
    fixed: Option<Fixed>,
    wake_buf: Box<u64>,
    wake: Arc<EventFd>,
    rx: Receiver<Msg>,
    slots: Vec<Option<Piece>>,
    free: Vec<usize>,
    backlog: VecDeque<Piece>,
    in_flight: usize,
    queue_depth: usize,
    single_submit: bool,
    overlap: bool,
}

impl Worker {
    fn run(mut self) {
        let mut wake_armed = false;
        let mut closing = false;
        loop {
            if !closing {
                closing = self.intake();
            }
            self.fill();
            if !wake_armed && !closing {
                self.arm_wake();
                wake_armed = true;
            }
            if closing && self.in_flight == 0 && self.backlog.is_empty() {
                return;
            }
            if let Err(err) = self.ring.submit_and_wait(1) {
                if !matches!(
                    err.raw_os_error(),
                    Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                ) {
                    tracing::warn!(%err, "io_uring_enter failed; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
            wake_armed &= !self.reap();
        }
    }

    /// Takes every queued message; true when the engine is closing.
    fn intake(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(Msg::Piece(piece)) => self.backlog.push_back(piece),
                Ok(Msg::Register(region, reply)) => {
                    let _ = reply.send(self.register(region));
                }
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
    }

    fn register(&mut self, region: Region) -> bool {
        if self.fixed.is_some() || region.len == 0 {
            return false;
        }
        let base = region.ptr.as_ptr() as usize;
        let iovecs: Vec<libc::iovec> = (0..region.len)
            .step_by(MAX_FIXED)
            .map(|off| libc::iovec {
                iov_base: (base + off) as *mut libc::c_void,
                iov_len: MAX_FIXED.min(region.len - off),
            })
            .collect();
        // SAFETY: the iovecs cover `region`, which `keep_alive` keeps
        // allocated; it is stored in `self.fixed`, dropped after the ring.
        match unsafe { self.ring.submitter().register_buffers(&iovecs) } {
            Ok(()) => {
                self.fixed = Some(Fixed {
                    base,
                    len: region.len,
                    _keep_alive: region.keep_alive,
                });
                true
            }
            Err(err) => {
                tracing::debug!(%err, len = region.len, "io_uring buffer registration refused");
                false
            }
        }
    }

    fn fill(&mut self) {
        if !self.overlap && self.in_flight > 0 {
            return;
        }
        while self.in_flight < self.queue_depth {
            let Some(piece) = self.backlog.pop_front() else {
                break;
            };
            self.push(piece);
        }
    }

    fn push(&mut self, piece: Piece) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let fd = types::Fd(piece.fd());
        let (buf, offset) = (piece.cursor(), piece.position());
        let len = u32::try_from(piece.remaining()).unwrap_or(u32::MAX);
        let fixed = if piece.remaining() == piece.span().1 {
            self.fixed.as_ref().and_then(|f| f.index(piece.span()))
        } else {
            None
        };
        let entry = match (piece.op, fixed) {
            (IoOp::Read, Some(i)) => opcode::ReadFixed::new(fd, buf, len, i)
                .offset(offset)
                .build(),
            (IoOp::Read, None) => opcode::Read::new(fd, buf, len).offset(offset).build(),
            (IoOp::Write, Some(i)) => opcode::WriteFixed::new(fd, buf, len, i)
                .offset(offset)
                .build(),
            (IoOp::Write, None) => opcode::Write::new(fd, buf, len).offset(offset).build(),
        };
        self.slots[slot] = Some(piece);
        self.in_flight += 1;
        self.push_entry(entry.user_data(slot as u64));
        if self.single_submit {
            let _ = self.ring.submit();
        }
    }

    fn arm_wake(&mut self) {
        let buf: *mut u64 = &mut *self.wake_buf;
        let entry = opcode::Read::new(types::Fd(self.wake.raw()), buf.cast(), 8)
            .build()
            .user_data(WAKE);
        self.push_entry(entry);
    }

    fn push_entry(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: the entry points at memory that outlives its completion:
            // a piece's buffer (kept valid by the submitter until the piece
            // finishes, which happens only after its completion is reaped) or
            // `wake_buf` (dropped after the ring).
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            // Queue full: hand what is queued to the kernel and retry.
            if let Err(err) = self.ring.submit() {
                tracing::debug!(%err, "io_uring submit while the queue was full");
            }
        }
    }

    /// Handles every completion; true when the wake read completed.
    fn reap(&mut self) -> bool {
        let done: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|cqe| (cqe.user_data(), cqe.result()))
            .collect();
        let mut woke = false;
        for (user_data, result) in done {
            if user_data == WAKE {
                woke = true;
                continue;
            }
            let slot = user_data as usize;
            let Some(mut piece) = self.slots.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            self.free.push(slot);
            self.in_flight -= 1;
            let result = usize::try_from(result).map_err(|_| io::Error::from_raw_os_error(-result));
            match piece.advance(result) {
                Step::Again => self.backlog.push_front(piece),
                Step::Finished(result) => piece.finish(result),
            }
        }
        woke
    }
}
