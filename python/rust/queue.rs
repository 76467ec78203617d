//! A handle's operations in flight, and the `wait()`s that finish them:
//! each call finishes the operations no other call has taken, then waits
//! for those submitted before it that another `wait()` took, so that it
//! returns only once every earlier operation has completed, whichever
//! thread submitted or reaped it.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard};

use pyo3::prelude::*;

use crate::op::Op;

/// Submitted operations, by sequence number.
#[derive(Default)]
pub struct Queue {
    state: Mutex<State>,
    /// Signalled whenever a `wait()` has finished the operations it took.
    finished: Condvar,
}

#[derive(Default)]
struct State {
    /// Not yet taken by a `wait()`.
    ops: Vec<(u64, Op)>,
    next: u64,
    /// Taken by a `wait()` and not yet finished.
    unfinished: BTreeSet<u64>,
}

impl Queue {
    /// Adds a submitted operation.
    pub fn push(&self, op: Op) {
        let mut state = self.lock();
        let seq = state.next;
        state.next += 1;
        state.ops.push((seq, op));
    }

    /// True when no operation waits for a `wait()`.
    pub fn is_empty(&self) -> bool {
        self.lock().ops.is_empty()
    }

    /// Finishes the operations no other call has taken (the count
    /// returned), then waits for those submitted before this call that
    /// another took. The first failure among this call's own operations is
    /// raised once all are done. The GIL is released while waiting.
    pub fn wait(&self, py: Python<'_>) -> PyResult<i64> {
        let (mut ops, before) = {
            let mut state = self.lock();
            let ops = std::mem::take(&mut state.ops);
            state.unfinished.extend(ops.iter().map(|(seq, _)| *seq));
            (ops, state.next)
        };
        let outcomes: Vec<tensorswap_core::Result<()>> =
            py.detach(|| ops.iter_mut().map(|(_, op)| op.wait()).collect());
        let count = ops.len() as i64;
        let mut first: Option<PyErr> = None;
        let mut seqs = Vec::with_capacity(ops.len());
        for ((seq, op), outcome) in ops.into_iter().zip(outcomes) {
            seqs.push(seq);
            if let Err(e) = op.finish(py, outcome) {
                first.get_or_insert(e);
            }
        }
        {
            let mut state = self.lock();
            for seq in seqs {
                state.unfinished.remove(&seq);
            }
        }
        self.finished.notify_all();
        py.detach(|| {
            let mut state = self.lock();
            while state.unfinished.range(..before).next().is_some() {
                state = self
                    .finished
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        });
        match first {
            Some(e) => Err(e),
            None => Ok(count),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
