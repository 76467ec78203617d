//! Per-request completion shared by the pieces of one request.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::engine::IoPending;
use super::file::SwapFile;
use crate::{Error, PendingOp, Result};

/// Counts a request's outstanding pieces and keeps its first error.
#[derive(Clone, Debug)]
pub(crate) struct Completion(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Debug)]
struct State {
    remaining: usize,
    /// The error at the lowest file offset, with that offset.
    error: Option<(u64, Error)>,
    finished_at: Option<Instant>,
    truncate_to: Option<(SwapFile, u64)>,
}

impl Completion {
    /// A request of `pieces` pieces; with `truncate_to`, the file is cut to
    /// that length once every piece succeeded.
    pub(crate) fn new(pieces: usize, truncate_to: Option<(SwapFile, u64)>) -> Self {
        let this = Self(Arc::new(Shared {
            state: Mutex::new(State {
                remaining: pieces,
                error: None,
                finished_at: None,
                truncate_to,
            }),
            done: Condvar::new(),
        }));
        if pieces == 0 {
            this.finish(&mut this.lock());
        }
        this
    }

    /// Records one finished piece; `at` is the file offset where it failed.
    /// Of several failed pieces, the one failing at the lowest offset is
    /// reported, whichever finished first.
    pub(crate) fn piece_done(&self, result: Result<()>, at: u64) {
        let mut state = self.lock();
        if let Err(err) = result {
            if state.error.as_ref().is_none_or(|(first, _)| at < *first) {
                state.error = Some((at, err));
            }
        }
        state.remaining = state.remaining.saturating_sub(1);
        if state.remaining == 0 {
            self.finish(&mut state);
        }
    }

    fn finish(&self, state: &mut State) {
        if let Some((file, len)) = state.truncate_to.take() {
            if state.error.is_none() {
                if let Err(err) = file.set_len(len) {
                    state.error = Some((len, err));
                }
            }
        }
        state.finished_at = Some(Instant::now());
        self.0.done.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pending operation of a request on a built-in engine.
#[derive(Debug)]
pub struct EnginePending(pub(crate) Completion);

impl PendingOp for EnginePending {
    fn is_complete(&self) -> bool {
        self.0.lock().finished_at.is_some()
    }

    fn wait(self) -> Result<()> {
        let mut state = self.0.lock();
        while state.finished_at.is_none() {
            state = self
                .0
                 .0
                .done
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        state.error.take().map_or(Ok(()), |(_, err)| Err(err))
    }
}

impl IoPending for EnginePending {
    fn finished_at(&self) -> Option<Instant> {
        self.0.lock().finished_at
    }
}
