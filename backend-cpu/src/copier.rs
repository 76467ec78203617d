//! The copy thread: runs transfers in submission order, off the caller's thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use swap_api::{Error, PendingOp, Result};

use crate::BACKEND;

/// A raw pointer that may cross to the copy thread.
struct SendPtr(*mut u8);

// SAFETY: the Device contract makes the submitter keep the memory alive and
// unaliased until the transfer's PendingOp has been waited; the pointer is
// only dereferenced by the copy thread within that window.
unsafe impl Send for SendPtr {}

struct Job {
    src: SendPtr,
    dst: SendPtr,
    len: usize,
    done: Arc<Completion>,
}

#[derive(Debug, Default)]
struct Completion {
    finished: AtomicBool,
    lock: Mutex<bool>,
    signal: Condvar,
}

impl Completion {
    fn finish(&self) {
        let mut done = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        *done = true;
        self.finished.store(true, Ordering::Release);
        self.signal.notify_all();
    }

    fn wait(&self) {
        let mut done = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        while !*done {
            done = self
                .signal
                .wait(done)
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
        self.0.wait();
        Ok(())
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
                    if job.len != 0 {
                        // SAFETY: per the Device contract (see SendPtr) both
                        // ranges are live for `len` bytes and owned by this
                        // transfer; host and device allocations never overlap.
                        unsafe { std::ptr::copy_nonoverlapping(job.src.0, job.dst.0, job.len) };
                    }
                    job.done.finish();
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
        let done = Arc::new(Completion::default());
        let job = Job {
            src: SendPtr(src.cast_mut()),
            dst: SendPtr(dst),
            len,
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
