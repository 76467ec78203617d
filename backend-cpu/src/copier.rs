//! The copy thread: runs transfers (copies, and file reads and writes of
//! device memory) in submission order, off the caller's thread.

use std::ptr::NonNull;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tensorswap_core::storage::IoRequest;
use tensorswap_core::sync::{Latch, LatchPending, WorkerThread};
use tensorswap_core::{Error, IoOp, Result, SwapFile, ThreadEngine};

use crate::BACKEND;

/// The ticket of one CPU transfer.
pub type CpuPending = LatchPending;

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
    done: Arc<Latch>,
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
                let request = IoRequest {
                    op,
                    file,
                    offset,
                    buf: NonNull::new(mem.0).unwrap_or(NonNull::dangling()),
                    len,
                    truncate: false,
                };
                // SAFETY: per the Device contract (see SendPtr) the memory is
                // live for `len` bytes and owned by this operation.
                unsafe { ThreadEngine::run_blocking(request) }
            }
        }
    }
}

/// Owns the copy thread; dropping it lets the thread finish the queued jobs
/// and joins it.
#[derive(Debug)]
pub(crate) struct Copier(WorkerThread<Job>);

impl Copier {
    pub(crate) fn start(latency: Duration) -> Result<Self> {
        let thread =
            WorkerThread::spawn("tensorswap-cpu-copy".into(), move |jobs: Receiver<Job>| {
                for job in jobs {
                    if !latency.is_zero() {
                        thread::sleep(latency);
                    }
                    job.done.close(job.work.run());
                }
            })
            .map_err(|e| Error::Device {
                component: BACKEND,
                op: "start copy thread",
                reason: e.to_string(),
            })?;
        Ok(Self(thread))
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
        let done = Latch::new(1);
        let job = Job {
            work,
            done: Arc::clone(&done),
        };
        self.0.send(job).map_err(|_| Error::Device {
            component: BACKEND,
            op: "submit transfer",
            reason: "the copy thread has stopped".into(),
        })?;
        Ok(LatchPending::new(done))
    }
}
