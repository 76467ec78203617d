//! The completion ticket of one wgpu transfer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use swap_api::{Error, PendingOp, Result};

/// Shared between a transfer's [`WgpuPending`] and the transfer thread: the
/// pieces still in flight and the first error.
#[derive(Debug)]
pub(crate) struct Ticket {
    state: Mutex<State>,
    changed: Condvar,
    complete: AtomicBool,
}

#[derive(Debug)]
struct State {
    /// Pieces in flight, plus one while the transfer thread is still
    /// starting pieces.
    open: usize,
    error: Option<Error>,
}

impl Ticket {
    /// A ticket whose transfer has not started.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                open: 1,
                error: None,
            }),
            changed: Condvar::new(),
            complete: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more piece is in flight.
    pub(crate) fn opened(&self) {
        self.lock().open += 1;
    }

    /// A piece (or the starting phase) finished; keeps the first error. The
    /// ticket completes when nothing is open any more.
    pub(crate) fn closed(&self, result: Result<()>) {
        let mut state = self.lock();
        if let Err(error) = result {
            state.error.get_or_insert(error);
        }
        state.open -= 1;
        if state.open == 0 {
            self.complete.store(true, Ordering::Release);
            self.changed.notify_all();
        }
    }

    /// Completes the ticket with `error` if pieces are still open: their
    /// transfer was dropped unfinished (the transfer thread stopped).
    pub(crate) fn abandon(&self, error: impl FnOnce() -> Error) {
        let mut state = self.lock();
        if state.open > 0 {
            state.error.get_or_insert_with(error);
            state.open = 0;
            self.complete.store(true, Ordering::Release);
            self.changed.notify_all();
        }
    }
}

/// An in-flight wgpu transfer; see [`PendingOp`].
#[derive(Debug)]
pub struct WgpuPending(pub(crate) Arc<Ticket>);

impl PendingOp for WgpuPending {
    fn is_complete(&self) -> bool {
        self.0.complete.load(Ordering::Acquire)
    }

    fn wait(self) -> Result<()> {
        let mut state = self.0.lock();
        while state.open > 0 {
            state = self
                .0
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        state.error.take().map_or(Ok(()), Err)
    }
}
