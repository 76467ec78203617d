//! Streams: work runs asynchronously, in order, on the stream's own thread,
//! each item after a random delay, so that two streams really overlap and a
//! missing wait between them shows as a wrong result.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::event::Event;
use crate::result::{refuse, Status};

/// The variable that sets the seed of every stream's delays.
pub const SEED_VAR: &str = "TENSORSWAP_CUDA_EMULATOR_SEED";
/// The variable that sets the longest delay before an item, in µs
/// (default 300; 0 runs items at once, still on the stream's thread).
pub const DELAY_VAR: &str = "TENSORSWAP_CUDA_EMULATOR_MAX_DELAY_US";

/// The process's seed: `TENSORSWAP_CUDA_EMULATOR_SEED`, or one from the
/// clock, printed once so that a failing run can be replayed.
pub fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let seed = std::env::var(SEED_VAR)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("cuda-emulator: stream delays from seed {seed} ({SEED_VAR}={seed} replays them)");
        seed
    })
}

fn max_delay() -> Duration {
    static MAX: OnceLock<Duration> = OnceLock::new();
    *MAX.get_or_init(|| {
        let us = std::env::var(DELAY_VAR)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        Duration::from_micros(us)
    })
}

type Work = Box<dyn FnOnce() + Send>;

/// A stream (`CUstream`).
pub struct Stream {
    queue: Mutex<Option<mpsc::Sender<Work>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Stream {
    /// A stream with its own thread; its delays come from [`seed`] and the
    /// order streams are made in.
    pub fn new() -> Result<Self, Status> {
        static MADE: AtomicU64 = AtomicU64::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let mut state = (seed() ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
        let max = max_delay().as_micros() as u64;
        let (tx, rx) = mpsc::channel::<Work>();
        let thread = std::thread::Builder::new()
            .name(format!("cuda-emulator-stream-{n}"))
            .spawn(move || {
                for work in rx {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    if max > 0 {
                        std::thread::sleep(Duration::from_micros(state % (max + 1)));
                    }
                    work();
                }
            })
            .map_err(|e| {
                refuse(
                    Status::OUT_OF_MEMORY,
                    format_args!("starting a stream thread: {e}"),
                )
            })?;
        Ok(Self {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `work`, to run after everything queued before it.
    pub fn enqueue(&self, work: impl FnOnce() + Send + 'static) -> Result<(), Status> {
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match queue.as_ref().map(|tx| tx.send(Box::new(work))) {
            Some(Ok(())) => Ok(()),
            _ => Err(refuse(
                Status::INVALID_HANDLE,
                format_args!("work queued on a destroyed stream"),
            )),
        }
    }

    /// `cuEventRecord`: the event completes when the stream gets here.
    pub fn record(&self, event: &Event) -> Result<(), Status> {
        let generation = event.record();
        let event = event.clone();
        self.enqueue(move || event.complete(generation))
    }

    /// `cuStreamWaitEvent`: later work waits for the event's latest record.
    pub fn wait_event(&self, event: &Event) -> Result<(), Status> {
        let generation = event.latest();
        let event = event.clone();
        self.enqueue(move || event.wait_for(generation))
    }

    /// `cuStreamSynchronize`: blocks until all queued work has run.
    pub fn synchronize(&self) -> Result<(), Status> {
        let done = Event::new();
        self.record(&done)?;
        done.synchronize();
        Ok(())
    }
}

impl Drop for Stream {
    /// `cuStreamDestroy`: queued work still runs, as on the driver.
    fn drop(&mut self) {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(thread) = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
        {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_stream_runs_its_work_in_order() {
        let stream = Stream::new().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..50 {
            let seen = Arc::clone(&seen);
            stream
                .enqueue(move || seen.lock().unwrap().push(i))
                .unwrap();
        }
        stream.synchronize().unwrap();
        assert_eq!(*seen.lock().unwrap(), (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn a_wait_orders_one_stream_after_another() {
        for _ in 0..20 {
            let (a, b) = (Stream::new().unwrap(), Stream::new().unwrap());
            let cell = Arc::new(Mutex::new(0));
            let written = Event::new();
            let w = Arc::clone(&cell);
            a.enqueue(move || *w.lock().unwrap() = 42).unwrap();
            a.record(&written).unwrap();
            b.wait_event(&written).unwrap();
            let seen = Arc::new(Mutex::new(None));
            let (r, s) = (Arc::clone(&cell), Arc::clone(&seen));
            b.enqueue(move || *s.lock().unwrap() = Some(*r.lock().unwrap()))
                .unwrap();
            b.synchronize().unwrap();
            assert_eq!(*seen.lock().unwrap(), Some(42));
        }
    }

    /// The point of the delays: without the wait, the reader on the second
    /// stream runs before the writer on the first in some of the trials.
    #[test]
    fn without_a_wait_the_other_stream_really_races() {
        if max_delay().is_zero() {
            return; // delays turned off for this process
        }
        let mut early = 0;
        for _ in 0..64 {
            let (a, b) = (Stream::new().unwrap(), Stream::new().unwrap());
            let cell = Arc::new(Mutex::new(0));
            let w = Arc::clone(&cell);
            a.enqueue(move || *w.lock().unwrap() = 42).unwrap();
            let seen = Arc::new(Mutex::new(None));
            let (r, s) = (Arc::clone(&cell), Arc::clone(&seen));
            b.enqueue(move || *s.lock().unwrap() = Some(*r.lock().unwrap()))
                .unwrap();
            b.synchronize().unwrap();
            a.synchronize().unwrap();
            early += usize::from(*seen.lock().unwrap() == Some(0));
        }
        assert!(
            early > 0,
            "in 64 trials the unordered reader never ran first"
        );
    }

    #[test]
    fn events_report_pending_work_and_a_fresh_event_is_complete() {
        let fresh = Event::new();
        assert_eq!(fresh.query(), Status::SUCCESS);
        fresh.synchronize();
        let stream = Stream::new().unwrap();
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let g = Arc::clone(&gate);
        stream
            .enqueue(move || {
                let mut open = g.0.lock().unwrap();
                while !*open {
                    open = g.1.wait(open).unwrap();
                }
            })
            .unwrap();
        let event = Event::new();
        stream.record(&event).unwrap();
        assert_eq!(event.query(), Status::NOT_READY);
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        event.synchronize();
        assert_eq!(event.query(), Status::SUCCESS);
    }

    #[test]
    fn queued_work_runs_before_a_stream_is_destroyed() {
        let stream = Stream::new().unwrap();
        let ran = Arc::new(AtomicU64::new(0));
        for _ in 0..10 {
            let ran = Arc::clone(&ran);
            stream
                .enqueue(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        }
        drop(stream);
        assert_eq!(ran.load(Ordering::SeqCst), 10);
    }
}
