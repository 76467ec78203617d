//! The io_uring engine: one ring per worker thread, up to `queue_depth`
//! pieces in flight on each, registered buffers for pinned pools.
//!
//! A worker whose `io_uring_enter` keeps failing gives up after
//! [`MAX_ENTER_FAILURES`] failures in a row ([`MAX_BUSY_RETRIES`] for
//! EAGAIN/EBUSY, which usually clear): every piece it holds fails with
//! [`Error::Broken`] (a piece the kernel already took is failed when the
//! kernel hands it back, never earlier, so its memory is never given back
//! while the kernel may still use it), and the engine refuses later
//! submissions at once.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use io_uring::{opcode, squeue, types, IoUring};

use super::engine::{IoEngine, IoRequest, Region};
use super::piece::{split, Piece, Step};
use crate::sync::{LatchPending, WorkerThread};
use crate::sys::eventfd::EventFd;
use crate::{AioConfig, Error, IoOp, Result};

/// `user_data` of the eventfd read that wakes a worker.
const WAKE: u64 = u64::MAX;
/// The kernel registers at most 1 GiB per buffer.
const MAX_FIXED: usize = 1 << 30;
/// Failed `io_uring_enter` calls in a row after which a worker gives up.
const MAX_ENTER_FAILURES: u32 = 5;
/// Pause between two tries of a failed `io_uring_enter`.
const ENTER_RETRY: Duration = Duration::from_millis(10);
/// EAGAIN/EBUSY answers in a row after which a worker gives up: the kernel
/// stayed short of resources (or the completion queue full) for a second.
const MAX_BUSY_RETRIES: u32 = 1000;
/// Pause after EAGAIN/EBUSY, before reaping and trying again.
const BUSY_RETRY: Duration = Duration::from_millis(1);
/// How often a broken worker looks for the pieces the kernel still holds.
const DRAIN_POLL: Duration = Duration::from_millis(1);

/// How a worker enters the kernel: submits what is queued and waits for
/// `want` completions (`io_uring_enter`). Tests replace it to make it fail.
pub(crate) type Enter = Box<dyn FnMut(&mut IoUring, usize) -> io::Result<usize> + Send>;

fn enter() -> Enter {
    Box::new(|ring, want| ring.submit_and_wait(want))
}

/// An [`IoEngine`] on Linux io_uring.
///
/// Each of `intra_op_parallelism` workers owns a ring and keeps up to
/// `queue_depth` pieces in flight; a request's pieces are spread over the
/// workers in contiguous runs. Submissions are batched (all pieces that fit
/// go in one `io_uring_enter`) unless `single_submit` is set; with
/// `overlap_events` off a worker waits for its whole batch before refilling.
/// A pinned pool offered through [`IoEngine::register_region`] is registered
/// as fixed buffers, and pieces inside it use `READ_FIXED`/`WRITE_FIXED`.
///
/// A worker that cannot enter the kernel (five failures of `io_uring_enter`
/// in a row, or a second of EAGAIN/EBUSY) fails what it holds with
/// [`Error::Broken`]; the engine is then broken, and every later request
/// fails at submission.
#[derive(Debug)]
pub struct UringEngine {
    config: AioConfig,
    // Declared before `workers`, which join their threads on drop.
    broken: Arc<Broken>,
    workers: Vec<WorkerHandle>,
    next: AtomicUsize,
}

#[derive(Debug)]
struct WorkerHandle {
    thread: WorkerThread<Msg>,
    wake: Arc<EventFd>,
}

enum Msg {
    Piece(Piece),
    Register(Region, Sender<bool>),
}

/// Why the engine is broken, once a worker gave up.
#[derive(Debug, Default)]
struct Broken(OnceLock<String>);

impl Broken {
    fn error(&self) -> Option<Error> {
        self.0.get().map(|reason| Error::Broken {
            component: "uring",
            reason: reason.clone(),
        })
    }
}

impl UringEngine {
    /// Creates the rings and starts the workers. Fails with
    /// [`Error::Unavailable`] where io_uring cannot be used (old kernel,
    /// seccomp, `io_uring_disabled` sysctl).
    pub fn new(config: &AioConfig) -> Result<Self> {
        Self::with_enter(config, enter)
    }

    /// [`UringEngine::new`] with each worker entering the kernel through
    /// `make_enter()`.
    pub(crate) fn with_enter(config: &AioConfig, make_enter: impl Fn() -> Enter) -> Result<Self> {
        config.validate()?;
        let entries = u32::try_from(config.queue_depth + 1)
            .unwrap_or(u32::MAX)
            .next_power_of_two();
        let broken = Arc::new(Broken::default());
        let mut workers = Vec::with_capacity(config.intra_op_parallelism);
        for i in 0..config.intra_op_parallelism {
            let ring = IoUring::new(entries).map_err(|err| Error::Unavailable {
                component: "uring",
                reason: setup_failed(&err),
            })?;
            let wake = Arc::new(EventFd::new().map_err(|err| Error::Unavailable {
                component: "uring",
                reason: format!("eventfd failed: {err}"),
            })?);
            let worker = Worker {
                ring,
                fixed: None,
                wake_buf: Box::new(0),
                wake: wake.clone(),
                enter: make_enter(),
                broken: Arc::clone(&broken),
                slots: Vec::new(),
                free: Vec::new(),
                backlog: VecDeque::new(),
                in_flight: 0,
                pushed: 0,
                queue_depth: config.queue_depth,
                single_submit: config.single_submit,
                overlap: config.overlap_events,
            };
            let thread =
                WorkerThread::spawn(format!("tensorswap-uring-{i}"), move |rx| worker.run(&rx))
                    .map_err(|cause| Error::ThreadStart {
                        component: "uring",
                        cause,
                    })?;
            workers.push(WorkerHandle { thread, wake });
        }
        Ok(Self {
            config: config.clone(),
            broken,
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// True when this kernel lets this process create an io_uring.
    pub fn available() -> std::result::Result<(), String> {
        IoUring::new(2).map(drop).map_err(|e| setup_failed(&e))
    }
}

/// Why `io_uring_setup` failed, with what to do where the cause is known:
/// `ENOMEM` where the kernel charges rings to `RLIMIT_MEMLOCK`, `EPERM`
/// where io_uring is switched off (`kernel.io_uring_disabled`) or filtered.
fn setup_failed(err: &std::io::Error) -> String {
    let hint = match err.raw_os_error() {
        Some(libc::ENOMEM) => {
            let limit = crate::sys::memlock::MemlockLimit::current();
            match limit.lockable() {
                Some(bytes) => format!(
                    "; its rings count against the memlock limit (RLIMIT_MEMLOCK, {bytes} bytes now): raise `ulimit -l`, or use the thread engine"
                ),
                None => String::new(),
            }
        }
        Some(libc::EPERM) => {
            "; io_uring is turned off for this process (sysctl kernel.io_uring_disabled, or a seccomp filter): use the thread engine".into()
        }
        _ => String::new(),
    };
    format!("io_uring_setup failed: {err}{hint}")
}

impl IoEngine for UringEngine {
    type Pending = LatchPending;

    fn name(&self) -> &'static str {
        "uring"
    }

    fn config(&self) -> &AioConfig {
        &self.config
    }

    unsafe fn submit(&self, req: IoRequest) -> Result<LatchPending> {
        if let Some(error) = self.broken.error() {
            return Err(error);
        }
        let (pieces, completion) = split(req, self.config.block_size);
        let workers = self.workers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = pieces.len();
        let mut touched = vec![false; workers];
        for (i, piece) in pieces.into_iter().enumerate() {
            // Contiguous runs of pieces per worker, starting at a rotating worker.
            let w = (start + i * workers / count) % workers;
            match self.workers[w].thread.send(Msg::Piece(piece)) {
                Ok(()) => touched[w] = true,
                Err(Msg::Piece(piece)) => piece.finish(Err(self.stopped())),
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
        Ok(LatchPending::new(completion))
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
            if worker.thread.send(msg).is_ok() && worker.wake.signal().is_ok() {
                replies.push(rx);
            } else {
                return false;
            }
        }
        replies.into_iter().all(|rx| rx.recv().unwrap_or(false))
    }
}

impl UringEngine {
    /// The error of a piece whose worker has ended.
    fn stopped(&self) -> Error {
        self.broken
            .error()
            .unwrap_or(Error::Stopped { component: "uring" })
    }
}

impl Drop for UringEngine {
    fn drop(&mut self) {
        // Close every queue and wake its worker; dropping `workers` then
        // joins them once they have finished what was queued.
        for worker in &mut self.workers {
            worker.thread.close();
            let _ = worker.wake.signal();
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
    enter: Enter,
    broken: Arc<Broken>,
    /// Pieces whose entry is in the submission queue or the kernel, with the
    /// entry's place in [`Worker::pushed`]'s count.
    slots: Vec<Option<(Piece, u64)>>,
    free: Vec<usize>,
    backlog: VecDeque<Piece>,
    in_flight: usize,
    /// Entries pushed into the submission queue so far.
    pushed: u64,
    queue_depth: usize,
    single_submit: bool,
    overlap: bool,
}

/// Failed `io_uring_enter` calls in a row, by kind; any success resets them.
#[derive(Debug, Default)]
struct Failures {
    /// Errors that do not clear by themselves (EFAULT, ENOMEM, EIO, ...).
    hard: u32,
    /// EAGAIN (the kernel is short of resources) and EBUSY (completions to
    /// reap first): they clear once completions are reaped.
    busy: u32,
}

impl Failures {
    /// Counts `err` and pauses before the next try; `Some(count)` once the
    /// worker should give up. EINTR is retried at once and not counted.
    fn record(&mut self, err: &io::Error) -> Option<u32> {
        let (count, limit, pause) = match err.raw_os_error() {
            Some(libc::EINTR) => return None,
            Some(libc::EAGAIN | libc::EBUSY) => (&mut self.busy, MAX_BUSY_RETRIES, BUSY_RETRY),
            _ => (&mut self.hard, MAX_ENTER_FAILURES, ENTER_RETRY),
        };
        *count += 1;
        if *count >= limit {
            return Some(*count);
        }
        if limit == MAX_ENTER_FAILURES {
            tracing::warn!(%err, failures = *count, "io_uring_enter failed; retrying");
        }
        std::thread::sleep(pause);
        None
    }
}

impl Worker {
    fn run(mut self, rx: &Receiver<Msg>) {
        let mut wake_armed = false;
        let mut closing = false;
        let mut failures = Failures::default();
        // Pieces reaped but not yet finished: their CRC work and signals run
        // after the queue has been refilled and handed to the kernel, so the
        // device is not left short of requests meanwhile.
        let mut done: Vec<(Piece, Result<()>)> = Vec::new();
        loop {
            if !closing {
                closing = self.intake(rx);
            }
            let mut entered = self.fill();
            if entered.is_ok() && !wake_armed && !closing {
                entered = self.arm_wake();
                wake_armed = entered.is_ok();
            }
            if closing && self.in_flight == 0 && self.backlog.is_empty() && done.is_empty() {
                return;
            }
            // Wait for a completion only when no finished piece waits; with
            // one waiting, enter only to hand the kernel what fill queued.
            let want = usize::from(done.is_empty());
            if entered.is_ok() && (want > 0 || !self.ring.submission().is_empty()) {
                entered = (self.enter)(&mut self.ring, want).map(drop);
            }
            for (piece, result) in done.drain(..) {
                piece.finish(result);
            }
            match entered {
                Ok(()) => failures = Failures::default(),
                Err(err) => {
                    if let Some(count) = failures.record(&err) {
                        return self.give_up(count, &err, rx);
                    }
                }
            }
            wake_armed &= !self.reap(None, &mut done);
        }
    }

    /// Takes every queued message; true when the engine is closing.
    fn intake(&mut self, rx: &Receiver<Msg>) -> bool {
        loop {
            match rx.try_recv() {
                Ok(Msg::Piece(piece)) => self.backlog.push_back(piece),
                Ok(Msg::Register(region, reply)) => {
                    let _ = reply.send(self.register(region));
                }
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
    }

    /// The worker cannot enter the kernel any more: the engine is marked
    /// broken and every piece fails with [`Error::Broken`]. Pieces the
    /// kernel already took fail as it hands them back (their memory is the
    /// kernel's until then); the others, and everything queued later, at once.
    fn give_up(mut self, count: u32, err: &io::Error, rx: &Receiver<Msg>) {
        let reason = format!("io_uring_enter failed {count} times in a row ({err})");
        tracing::error!(%reason, "an io_uring worker gives up");
        // Another worker of the engine may have given up first: its reason stands.
        let reason = self.broken.0.get_or_init(|| reason).clone();
        let error = move || Error::Broken {
            component: "uring",
            reason: reason.clone(),
        };
        for piece in std::mem::take(&mut self.backlog) {
            piece.finish(Err(error()));
        }
        // Entries still in the submission queue never reach the kernel: the
        // ring is not entered again.
        let taken = self.pushed - self.ring.submission().len() as u64;
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|(_, seq)| *seq >= taken) {
                if let Some((piece, _)) = slot.take() {
                    self.in_flight -= 1;
                    piece.finish(Err(error()));
                }
            }
        }
        let mut closing = false;
        while !closing || self.in_flight > 0 {
            closing |= self.fail_queued(rx, &error);
            if self.in_flight > 0 {
                std::thread::sleep(DRAIN_POLL);
                let mut done = Vec::new();
                self.reap(Some(&error), &mut done);
                for (piece, result) in done {
                    piece.finish(result);
                }
            } else if !closing {
                // Nothing of ours in the kernel: block for the next message.
                match rx.recv() {
                    Ok(msg) => self.fail_msg(msg, &error),
                    Err(_) => closing = true,
                }
            }
        }
    }

    /// Fails every queued message; true when the engine is closing.
    fn fail_queued(&mut self, rx: &Receiver<Msg>, error: &dyn Fn() -> Error) -> bool {
        loop {
            match rx.try_recv() {
                Ok(msg) => self.fail_msg(msg, error),
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
    }

    fn fail_msg(&mut self, msg: Msg, error: &dyn Fn() -> Error) {
        match msg {
            Msg::Piece(piece) => piece.finish(Err(error())),
            Msg::Register(_, reply) => {
                let _ = reply.send(false);
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

    fn fill(&mut self) -> io::Result<()> {
        if !self.overlap && self.in_flight > 0 {
            return Ok(());
        }
        while self.in_flight < self.queue_depth {
            let Some(piece) = self.backlog.pop_front() else {
                break;
            };
            self.push(piece)?;
        }
        Ok(())
    }

    /// Queues `piece`'s entry; on failure the piece goes back to the front
    /// of the backlog.
    fn push(&mut self, piece: Piece) -> io::Result<()> {
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
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        if let Err(err) = self.push_entry(entry.user_data(slot as u64)) {
            self.free.push(slot);
            self.backlog.push_front(piece);
            return Err(err);
        }
        self.slots[slot] = Some((piece, self.pushed - 1));
        self.in_flight += 1;
        if self.single_submit {
            (self.enter)(&mut self.ring, 0)?;
        }
        Ok(())
    }

    fn arm_wake(&mut self) -> io::Result<()> {
        let buf: *mut u64 = &mut *self.wake_buf;
        let entry = opcode::Read::new(types::Fd(self.wake.raw()), buf.cast(), 8)
            .build()
            .user_data(WAKE);
        self.push_entry(entry)
    }

    /// Pushes `entry`, handing queued entries to the kernel first when the
    /// submission queue is full; fails when that fails.
    fn push_entry(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the entry points at memory that outlives its completion:
            // a piece's buffer (kept valid by the submitter until the piece
            // finishes, which happens only after its completion is reaped or
            // the entry is known never to reach the kernel) or `wake_buf`
            // (dropped after the ring).
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                self.pushed += 1;
                return Ok(());
            }
            // Queue full: hand what is queued to the kernel and retry. Any
            // failure goes to the caller, whose loop reaps, counts and retries.
            (self.enter)(&mut self.ring, 0)?;
        }
    }

    /// Handles every completion: a piece that needs more goes back into the
    /// backlog, a finished one into `done` with its result (for the caller to
    /// [`Piece::finish`]); true when the wake read completed. With `broken`,
    /// a piece that is not finished fails with that error instead of going
    /// back into the backlog.
    fn reap(
        &mut self,
        broken: Option<&dyn Fn() -> Error>,
        done: &mut Vec<(Piece, Result<()>)>,
    ) -> bool {
        let cqes: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|cqe| (cqe.user_data(), cqe.result()))
            .collect();
        let mut woke = false;
        for (user_data, result) in cqes {
            if user_data == WAKE {
                woke = true;
                continue;
            }
            let slot = user_data as usize;
            let Some((mut piece, _)) = self.slots.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            self.free.push(slot);
            self.in_flight -= 1;
            let result = usize::try_from(result).map_err(|_| io::Error::from_raw_os_error(-result));
            match (piece.advance(result), broken) {
                (Step::Finished(result), _) => done.push((piece, result)),
                (Step::Again, None) => self.backlog.push_front(piece),
                (Step::Again, Some(error)) => done.push((piece, Err(error()))),
            }
        }
        woke
    }
}

#[cfg(test)]
mod tests {
    use std::mem::ManuallyDrop;
    use std::sync::atomic::AtomicU32;
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::Duration;

    use super::*;
    use crate::{IoEngineExt, SwapDir, SwapFile};

    /// Longer than any healthy request here takes; a worker that never gives
    /// up makes the wait run into it.
    const PATIENCE: Duration = Duration::from_secs(20);

    /// An `io_uring_enter` that works `working` times, then fails with EIO.
    fn failing_after(working: u32) -> impl Fn() -> Enter {
        move || {
            let calls = AtomicU32::new(0);
            Box::new(move |ring: &mut IoUring, want| {
                if calls.fetch_add(1, Ordering::Relaxed) < working {
                    ring.submit_and_wait(want)
                } else {
                    Err(io::Error::from_raw_os_error(libc::EIO))
                }
            })
        }
    }

    /// Runs `wait` on another thread, so a hang fails the test (the
    /// tickets it waits for are dropped there, not here).
    fn bounded<T: Send + 'static>(wait: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(wait()));
        match rx.recv_timeout(PATIENCE) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => panic!("the requests hung for {PATIENCE:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the waiting thread panicked"),
        }
    }

    /// A swap file in a temporary folder (removed with the folder).
    fn scratch_file() -> (tempfile::TempDir, SwapFile) {
        let parent = tempfile::tempdir().unwrap();
        let file = SwapDir::create(parent.path())
            .unwrap()
            .create_file()
            .unwrap();
        (parent, file)
    }

    /// The engine under test, not dropped if the test fails: a worker that
    /// never gives up would hang the join in its drop.
    fn engine(config: &AioConfig, make_enter: impl Fn() -> Enter) -> ManuallyDrop<UringEngine> {
        ManuallyDrop::new(UringEngine::with_enter(config, make_enter).unwrap())
    }

    fn assert_broken(error: &Error) {
        assert!(
            matches!(error, Error::Broken { component: "uring", reason } if reason.contains("io_uring_enter")),
            "{error}"
        );
    }

    #[test]
    fn a_worker_that_cannot_enter_the_kernel_fails_its_requests_and_the_engine() {
        let (_parent, file) = scratch_file();
        let config = AioConfig::default().with_block_size(4096);
        let engine = engine(&config, failing_after(0));

        let data = vec![7u8; 64 << 10];
        let ticket = engine.write(&file, 0, data.clone()).unwrap();
        let failed = bounded(move || ticket.wait()).unwrap_err();
        assert_broken(&failed.error);
        assert_eq!(failed.value, data, "the buffer comes back intact");

        // Later submissions fail at once, with the buffer back.
        let refused = engine.read(&file, 0, vec![0u8; 4096]).unwrap_err();
        assert_broken(&refused.error);
        assert_eq!(refused.value.len(), 4096);
        drop(ManuallyDrop::into_inner(engine));
    }

    #[test]
    fn pieces_the_kernel_took_finish_before_the_broken_worker_fails_the_rest() {
        let (_parent, file) = scratch_file();
        let config = AioConfig::default()
            .with_block_size(4096)
            .with_queue_depth(2);
        // The first calls submit some pieces for real; then every call fails.
        let engine = engine(&config, failing_after(2));
        let submitted: Vec<_> = (0..4u8)
            .map(|i| engine.write(&file, u64::from(i) << 20, vec![i; 256 << 10]))
            .collect();
        let errors: Vec<Error> = bounded(move || {
            let outcomes = submitted.into_iter().map(|s| s.and_then(|t| t.wait()));
            outcomes.filter_map(|o| o.err().map(|f| f.error)).collect()
        });
        assert!(!errors.is_empty(), "no request saw the broken worker");
        errors.iter().for_each(assert_broken);
        assert!(engine.broken.error().is_some());
        drop(ManuallyDrop::into_inner(engine));
    }

    /// An `io_uring_enter` whose every other call fails with `errno`.
    fn every_other_call_fails(errno: i32) -> impl Fn() -> Enter {
        move || {
            let calls = AtomicU32::new(0);
            Box::new(move |ring: &mut IoUring, want| {
                if calls.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
                    Err(io::Error::from_raw_os_error(errno))
                } else {
                    ring.submit_and_wait(want)
                }
            })
        }
    }

    /// EINTR, EAGAIN and EBUSY between successes (far more of them than the
    /// hard-failure limit) are retried: every byte goes out and comes back.
    #[test]
    fn transient_enter_errors_are_retried_without_giving_up() {
        let (_parent, file) = scratch_file();
        for errno in [libc::EINTR, libc::EAGAIN, libc::EBUSY] {
            let config = AioConfig::default().with_block_size(4096);
            let engine = engine(&config, every_other_call_fails(errno));
            let data: Vec<u8> = (0..100_000u32).map(|i| (i ^ errno as u32) as u8).collect();
            let written = engine.write(&file, 0, data.clone()).unwrap();
            bounded(move || written.wait()).unwrap();
            let read = engine.read(&file, 0, vec![0u8; data.len()]).unwrap();
            let back = bounded(move || read.wait()).unwrap();
            assert_eq!(back.buf, data, "errno {errno}");
            drop(ManuallyDrop::into_inner(engine));
        }
    }

    /// EAGAIN that never clears ends like a hard failure, after a second
    /// of retries instead of five tries.
    #[test]
    fn an_engine_that_stays_busy_gives_up() {
        let (_parent, file) = scratch_file();
        let make = || -> Enter {
            Box::new(|_: &mut IoUring, _| Err(io::Error::from_raw_os_error(libc::EAGAIN)))
        };
        let engine = engine(&AioConfig::default().with_block_size(4096), make);
        let ticket = engine.write(&file, 0, vec![1u8; 8192]).unwrap();
        let failed = bounded(move || ticket.wait()).unwrap_err();
        assert_broken(&failed.error);
        assert!(
            failed
                .error
                .to_string()
                .contains(&format!("{MAX_BUSY_RETRIES} times")),
            "{}",
            failed.error
        );
        drop(ManuallyDrop::into_inner(engine));
    }
}
