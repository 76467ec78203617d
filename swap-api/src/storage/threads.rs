//! The portable engine: a pool of threads doing `pread`/`pwrite`.

use std::sync::mpsc::Receiver;
use std::sync::Mutex;

use super::engine::{IoEngine, IoRequest};
use super::piece::{split, Piece, Step};
use crate::sync::{next_shared, LatchPending, WorkerThread};
use crate::sys::fs::{pread, pwrite};
use crate::{AioConfig, Error, IoOp, Result};

/// Most threads one engine starts, whatever the configuration asks.
const MAX_THREADS: usize = 256;

/// An [`IoEngine`] on `intra_op_parallelism x queue_depth` threads that move
/// one piece each with `pread`/`pwrite`. Works on every file system and
/// kernel; the io_uring engine is faster where it is available.
///
/// `single_submit` and `overlap_events` do not apply to it.
#[derive(Debug)]
pub struct ThreadEngine {
    config: AioConfig,
    threads: WorkerThread<Piece>,
}

impl ThreadEngine {
    /// Starts the threads.
    pub fn new(config: &AioConfig) -> Result<Self> {
        config.validate()?;
        let count = (config.intra_op_parallelism * config.queue_depth).clamp(1, MAX_THREADS);
        let threads =
            WorkerThread::spawn_many("tensorswap-io".into(), count, work).map_err(|cause| {
                Error::ThreadStart {
                    component: "threads",
                    cause,
                }
            })?;
        Ok(Self {
            config: config.clone(),
            threads,
        })
    }
}

impl ThreadEngine {
    /// Runs one request to its end on the calling thread, with the engines'
    /// rules (pieces, direct-I/O tails, retries, short I/O) and no worker:
    /// for a backend that does file I/O on a thread of its own.
    ///
    /// # Safety
    /// As for [`IoEngine::submit`], for the duration of the call.
    pub unsafe fn run_blocking(req: IoRequest) -> Result<()> {
        let (pieces, completion) = split(req, usize::MAX);
        pieces.into_iter().for_each(run);
        completion.wait()
    }
}

fn work(rx: &Mutex<Receiver<Piece>>) {
    while let Some(piece) = next_shared(rx) {
        run(piece);
    }
}

/// Moves a piece with `pread`/`pwrite` until it is finished.
fn run(mut piece: Piece) {
    loop {
        let (fd, buf, len, offset) = (
            piece.fd(),
            piece.cursor(),
            piece.remaining(),
            piece.position(),
        );
        // SAFETY: the piece lies inside a request whose memory the
        // submitter keeps valid and unshared until the request completes,
        // which happens only after `finish` below.
        let result = unsafe {
            match piece.op {
                IoOp::Read => pread(fd, buf, len, offset),
                IoOp::Write => pwrite(fd, buf, len, offset),
            }
        };
        if let Step::Finished(result) = piece.advance(result) {
            return piece.finish(result);
        }
    }
}

impl IoEngine for ThreadEngine {
    type Pending = LatchPending;

    fn name(&self) -> &'static str {
        "threads"
    }

    fn config(&self) -> &AioConfig {
        &self.config
    }

    unsafe fn submit(&self, req: IoRequest) -> Result<LatchPending> {
        let (pieces, completion) = split(req, self.config.block_size);
        for piece in pieces {
            if let Err(piece) = self.threads.send(piece) {
                piece.finish(Err(stopped()));
            }
        }
        Ok(LatchPending::new(completion))
    }
}

fn stopped() -> Error {
    Error::Stopped {
        component: "threads",
    }
}
