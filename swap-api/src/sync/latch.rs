//! [`Latch`]: the completion of one operation made of parts that finish
//! on other threads, and [`LatchPending`], the [`PendingOp`] waiting on it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::{Error, PendingOp, Result};

/// A step run once every part succeeded, before waiters wake.
type FinalStep = Box<dyn FnOnce() -> Result<()> + Send>;

/// Counts an operation's open parts and keeps one error; completes when the
/// last part closes (or the operation is abandoned), waking every waiter.
///
/// Of several failed parts, the one closed with the lowest `at` is
/// reported (a file offset, say); [`Latch::close`] keeps the first.
///
/// ```
/// use tensorswap_core::sync::{Latch, LatchPending};
/// use tensorswap_core::PendingOp;
/// let latch = Latch::new(2);
/// let pending = LatchPending::new(latch.clone());
/// let worker = std::thread::spawn(move || {
///     latch.close(Ok(()));
///     latch.close(Ok(()));
/// });
/// pending.wait()?;
/// # worker.join().unwrap();
/// # Ok::<(), tensorswap_core::Error>(())
/// ```
pub struct Latch {
    state: Mutex<State>,
    changed: Condvar,
    complete: AtomicBool,
}

struct State {
    open: usize,
    error: Option<(u64, Error)>,
    finished_at: Option<Instant>,
    final_step: Option<FinalStep>,
}

impl Latch {
    /// A latch waiting for `parts` parts; with 0 it is complete at once.
    pub fn new(parts: usize) -> Arc<Self> {
        Self::build(parts, None)
    }

    /// Like [`Latch::new`], and `step` runs when the last part closes with
    /// no part failed; its error becomes the operation's.
    pub fn with_final_step(
        parts: usize,
        step: impl FnOnce() -> Result<()> + Send + 'static,
    ) -> Arc<Self> {
        Self::build(parts, Some(Box::new(step)))
    }

    fn build(parts: usize, final_step: Option<FinalStep>) -> Arc<Self> {
        let this = Arc::new(Self {
            state: Mutex::new(State {
                open: parts,
                error: None,
                finished_at: None,
                final_step,
            }),
            changed: Condvar::new(),
            complete: AtomicBool::new(false),
        });
        if parts == 0 {
            this.finish(&mut this.lock());
        }
        this
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more part is open. Only meaningful before the latch completes.
    pub fn open(&self) {
        self.lock().open += 1;
    }

    /// Closes one part, keeping the first error.
    pub fn close(&self, result: Result<()>) {
        self.close_at(result, u64::MAX);
    }

    /// Closes one part that failed (if it did) at position `at`; the error
    /// with the lowest position is kept, whichever part closed first.
    pub fn close_at(&self, result: Result<()>, at: u64) {
        let mut state = self.lock();
        if let Err(error) = result {
            if state.error.as_ref().is_none_or(|(first, _)| at < *first) {
                state.error = Some((at, error));
            }
        }
        if state.open == 0 {
            return;
        }
        state.open -= 1;
        if state.open == 0 {
            self.finish(&mut state);
        }
    }

    /// Completes the latch with `error` if parts are still open: they will
    /// never close (their worker stopped). A no-op on a complete latch.
    pub fn abandon(&self, error: impl FnOnce() -> Error) {
        let mut state = self.lock();
        if state.open > 0 {
            if state.error.is_none() {
                state.error = Some((u64::MAX, error()));
            }
            state.open = 0;
            state.final_step = None;
            self.finish(&mut state);
        }
    }

    fn finish(&self, state: &mut State) {
        if let Some(step) = state.final_step.take() {
            if state.error.is_none() {
                if let Err(error) = step() {
                    state.error = Some((u64::MAX, error));
                }
            }
        }
        state.finished_at = Some(Instant::now());
        self.complete.store(true, Ordering::Release);
        self.changed.notify_all();
    }

    /// True once every part closed; never blocks.
    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// When the latch completed, once it has.
    pub fn finished_at(&self) -> Option<Instant> {
        self.lock().finished_at
    }

    /// Blocks until the latch completes, then takes its error (a second
    /// wait returns `Ok`).
    pub fn wait(&self) -> Result<()> {
        let mut state = self.lock();
        while state.finished_at.is_none() {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.error.take().map_or(Ok(()), |(_, error)| Err(error))
    }
}

impl fmt::Debug for Latch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Latch")
            .field("open", &state.open)
            .field("failed", &state.error.is_some())
            .field("complete", &self.is_complete())
            .finish()
    }
}

/// The [`PendingOp`] of an operation completed through a [`Latch`]: what
/// the built-in engines and the cpu and wgpu backends hand out.
#[derive(Debug)]
pub struct LatchPending(Arc<Latch>);

impl LatchPending {
    /// Waits on `latch`.
    pub fn new(latch: Arc<Latch>) -> Self {
        Self(latch)
    }

    /// The latch waited on.
    pub fn latch(&self) -> &Latch {
        &self.0
    }
}

impl PendingOp for LatchPending {
    fn is_complete(&self) -> bool {
        self.0.is_complete()
    }

    fn wait(self) -> Result<()> {
        self.0.wait()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(what: &str) -> Error {
        Error::Layout {
            reason: what.into(),
        }
    }

    #[test]
    fn keeps_the_error_at_the_lowest_position() {
        let latch = Latch::new(3);
        latch.close_at(Err(failure("late")), 20);
        latch.close_at(Err(failure("early")), 10);
        assert!(!latch.is_complete());
        latch.close_at(Ok(()), 0);
        let err = latch.wait().unwrap_err();
        assert!(err.to_string().contains("early"), "{err}");
    }

    #[test]
    fn close_keeps_the_first_error_and_extra_closes_are_ignored() {
        let latch = Latch::new(1);
        latch.open();
        latch.close(Err(failure("first")));
        latch.close(Err(failure("second")));
        latch.close(Ok(()));
        assert!(latch.is_complete());
        assert!(latch.wait().unwrap_err().to_string().contains("first"));
    }

    #[test]
    fn final_step_runs_only_after_success_and_its_error_counts() {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let failed = Latch::with_final_step(1, move || {
            flag.store(true, Ordering::Relaxed);
            Ok(())
        });
        failed.close(Err(failure("piece")));
        assert!(failed.wait().is_err());
        assert!(!ran.load(Ordering::Relaxed));

        let step_fails = Latch::with_final_step(0, || Err(failure("truncate")));
        assert!(step_fails.is_complete());
        assert!(step_fails
            .wait()
            .unwrap_err()
            .to_string()
            .contains("truncate"));
    }

    #[test]
    fn abandon_completes_open_parts_with_the_error() {
        let latch = Latch::new(2);
        let pending = LatchPending::new(Arc::clone(&latch));
        latch.close(Ok(()));
        latch.abandon(|| failure("abandoned"));
        latch.abandon(|| failure("twice"));
        assert!(pending.is_complete());
        assert!(pending
            .wait()
            .unwrap_err()
            .to_string()
            .contains("abandoned"));
    }
}
