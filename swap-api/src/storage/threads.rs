//! The portable engine: a pool of threads doing `pread`/`pwrite`.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::completion::EnginePending;
use super::engine::{IoEngine, IoRequest};
use super::piece::{split, Piece, Step};
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
    queue: Option<Sender<Piece>>,
    threads: Vec<JoinHandle<()>>,
}

impl ThreadEngine {
    /// Starts the threads.
    pub fn new(config: &AioConfig) -> Result<Self> {
        config.validate()?;
        let (queue, rx) = mpsc::channel::<Piece>();
        let rx = Arc::new(Mutex::new(rx));
        let count = (config.intra_op_parallelism * config.queue_depth).clamp(1, MAX_THREADS);
        let mut engine = Self {
            config: config.clone(),
            queue: Some(queue),
            threads: Vec::with_capacity(count),
        };
        for i in 0..count {
            let rx = rx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("tensorswap-io-{i}"))
                .spawn(move || work(&rx))
                .map_err(|err| Error::Device {
                    backend: "threads",
                    op: "start an I/O thread",
                    reason: err.to_string(),
                })?;
            engine.threads.push(thread);
        }
        Ok(engine)
    }
}

fn work(rx: &Mutex<Receiver<Piece>>) {
    loop {
        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(mut piece) = next else { return };
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
                piece.finish(result);
                break;
            }
        }
    }
}

impl IoEngine for ThreadEngine {
    type Pending = EnginePending;

    fn name(&self) -> &'static str {
        "threads"
    }

    fn config(&self) -> &AioConfig {
        &self.config
    }

    unsafe fn submit(&self, req: IoRequest) -> Result<EnginePending> {
        let (pieces, completion) = split(req, self.config.block_size);
        for piece in pieces {
            match &self.queue {
                Some(queue) => {
                    if let Err(mpsc::SendError(piece)) = queue.send(piece) {
                        piece.finish(Err(stopped()));
                    }
                }
                None => piece.finish(Err(stopped())),
            }
        }
        Ok(EnginePending(completion))
    }
}

fn stopped() -> Error {
    Error::Device {
        backend: "threads",
        op: "submit",
        reason: "the engine's threads have stopped".into(),
    }
}

impl Drop for ThreadEngine {
    fn drop(&mut self) {
        // Closing the queue lets each thread finish what is queued, then exit.
        drop(self.queue.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
