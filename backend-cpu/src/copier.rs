//! The copy thread: runs transfers (copies, and file reads and writes of
//! device memory) in submission order, off the caller's thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use swap_api::{Error, IoOp, PendingOp, Result, SwapFile};

use crate::file_io;
use crate::BACKEND;

/// A raw pointer that may cross to the copy thread.
struct SendPtr(*mut u8);

// SAFETY: the Device contract makes the submitter keep the memory alive and
// unaliased until the transfer's PendingOp has been waited; the pointer is
// only dereferenced by the copy thread within that window.
unsafe impl Send for SendPtr {}

/// What one job does.
enum Work {
    /// Copies `len` bytes from `src` to `dst`.
    Copy {
        src: SendPtr,
        dst: SendPtr,
        len: usize,
    },
    /// Reads or writes `len` bytes of memory at `mem` from/to `file`.
    File {
        op: IoOp,
        file: SwapFile,
        offset: u64,
        mem: SendPtr,
        len: usize,
    },
}

struct Job {
    work: Work,
    done: Arc<Completion>,
}

impl Work {
    fn run(self) -> Result<()> {
        match self {
            Work::Copy { src, dst, len } => {
                if len != 0 {
                    // SAFETY: per the Device contract (see SendPtr) both
                    // ranges are live for `len` bytes and owned by this
                    // transfer; host and device allocations never overlap.
                    unsafe { std::ptr::copy_nonoverlapping(src.0, dst.0, len) };
                }
                Ok(())
            }
            Work::File {
                op,
                file,
                offset,
                mem,
                len,
            } => {
                // SAFETY: per the Device contract (see SendPtr) the memory is
                // live for `len` bytes and owned by this operation.
                unsafe { file_io::transfer(op, &file, offset, mem.0, len) }
            }
        }
    }
}

/// How a job ended: `None` until it has.
#[derive(Debug, Default)]
struct Completion {
    finished: AtomicBool,
    outcome: Mutex<Option<Result<()>>>,
    signal: Condvar,
}

impl Completion {
    fn finish(&self, outcome: Result<()>) {
        let mut slot = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        *slot = Some(outcome);
        self.finished.store(true, Ordering::Release);
        self.signal.notify_all();
    }

    fn wait(&self) -> Result<()> {
        let mut slot = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(outcome) = slot.take() {
                return outcome;
            }
            slot = self
                .signal
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The ticket of one CPU transfer.
#[derive(Debug)]
pub struct CpuPending(Arc<Completion>);

impl PendingOp for CpuPending {
    fn is_complete(&self) -> bool {
        self.0.finished.load(Ordering::Acquire)
    }

    fn wait(self) -> Result<()> {
        self.0.wait()
    }
}

/// Owns the copy thread; dropping it lets the thread finish the queued jobs
/// and joins it.
#[derive(Debug)]
pub(crate) struct Copier {
    queue: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Copier {
    pub(crate) fn start(latency: Duration) -> Result<Self> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let thread = thread::Builder::new()
            .name("tensorswap-cpu-copy".into())
            .spawn(move || {
                for job in jobs {
                    if !latency.is_zero() {
                        thread::sleep(latency);
                    }
                    job.done.finish(job.work.run());
                }
            })
            .map_err(|e| Error::Device {
                backend: BACKEND,
                op: "start copy thread",
                reason: e.to_string(),
            })?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues a copy of `len` bytes from `src` to `dst`.
    ///
    /// # Safety
    /// Both ranges must stay valid, and be accessed by nobody else, until the
    /// returned ticket reports completion.
    pub(crate) unsafe fn submit(
        &self,
        src: *const u8,
        dst: *mut u8,
        len: usize,
    ) -> Result<CpuPending> {
        self.enqueue(Work::Copy {
            src: SendPtr(src.cast_mut()),
            dst: SendPtr(dst),
            len,
        })
    }

    /// Queues a read of `file` into `mem` or a write of `mem` to `file`.
    ///
    /// # Safety
    /// `mem..mem + len` must stay valid, and be accessed by nobody else (read,
    /// for reads; written, for writes), until the returned ticket reports
    /// completion.
    pub(crate) unsafe fn submit_file(
        &self,
        op: IoOp,
        file: &SwapFile,
        offset: u64,
        mem: *mut u8,
        len: usize,
    ) -> Result<CpuPending> {
        self.enqueue(Work::File {
            op,
            file: file.clone(),
            offset,
            mem: SendPtr(mem),
            len,
        })
    }

    fn enqueue(&self, work: Work) -> Result<CpuPending> {
        let done = Arc::new(Completion::default());
        let job = Job {
            work,
            done: Arc::clone(&done),
        };
        let stopped = || Error::Device {
            backend: BACKEND,
            op: "submit transfer",
            reason: "the copy thread has stopped".into(),
        };
        self.queue
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        Ok(CpuPending(done))
    }
}

impl Drop for Copier {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the cpu copy thread panicked");
            }
        }
    }
}
