//! [`SwapTicket`]: the outcome of one `swap_out` or `swap_in` call.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::error::{Result, SwapError, SwapOp};
use crate::meta::TensorId;
use tensorswap_core::sync::{Ticket, TicketFuture};

/// Completion of one [`Swapper::swap_out`](super::Swapper::swap_out) or
/// [`Swapper::swap_in`](super::Swapper::swap_in) call.
///
/// The swap runs whether or not the ticket is kept; the ticket only
/// reports. Each tensor's state changes as soon as that tensor is done, so
/// `get` on the first tensor of a long list does not wait for the rest.
#[must_use = "a swap's failures are reported by its ticket"]
#[derive(Clone)]
pub struct SwapTicket {
    shared: Arc<TicketShared>,
}

struct TicketShared {
    state: Mutex<TicketState>,
    done: Condvar,
}

/// One tensor whose swap failed, from [`SwapTicket::wait_all`]; the tensor
/// is still readable where it was.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TensorFailure {
    /// The tensor.
    pub id: TensorId,
    /// Which way its swap went.
    pub op: SwapOp,
    /// Why it failed (also in its [`Swapper::status`](crate::Swapper::status)).
    pub cause: Arc<SwapError>,
}

#[derive(Default)]
struct TicketState {
    pending: usize,
    failures: Vec<TensorFailure>,
}

impl SwapTicket {
    /// A ticket for `tensors` tensors.
    pub(crate) fn new(tensors: usize) -> Self {
        Self {
            shared: Arc::new(TicketShared {
                state: Mutex::new(TicketState {
                    pending: tensors,
                    failures: Vec::new(),
                }),
                done: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TicketState> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that one tensor finished (with its failure, if any).
    pub(crate) fn finish(&self, id: TensorId, op: SwapOp, failure: Option<Arc<SwapError>>) {
        let mut state = self.lock();
        state.pending = state.pending.saturating_sub(1);
        if let Some(error) = failure {
            state.failures.push(TensorFailure {
                id,
                op,
                cause: error,
            });
        }
        if state.pending == 0 {
            self.shared.done.notify_all();
        }
    }

    /// True once every tensor of the call has finished (never blocks).
    pub fn is_complete(&self) -> bool {
        self.lock().pending == 0
    }

    /// Blocks until every tensor has finished. Returns the first failure
    /// (in completion order) as [`SwapError::Tensor`]; every failed tensor also
    /// reports its failure in [`Swapper::status`](super::Swapper::status)
    /// and stays readable where it was.
    pub fn wait(self) -> Result<()> {
        let failures = self.wait_all();
        match failures.into_iter().next() {
            None => Ok(()),
            Some(TensorFailure { id, op, cause }) => Err(SwapError::Tensor { id, op, cause }),
        }
    }

    /// Blocks until every tensor has finished and returns every failure.
    pub fn wait_all(self) -> Vec<TensorFailure> {
        let mut state = self.lock();
        while state.pending > 0 {
            state = self
                .shared
                .done
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        state.failures.clone()
    }
}

impl fmt::Debug for SwapTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SwapTicket")
            .field("pending", &state.pending)
            .field("failures", &state.failures.len())
            .finish()
    }
}

impl Ticket for SwapTicket {
    type Output = Result<()>;

    fn is_complete(&self) -> bool {
        SwapTicket::is_complete(self)
    }

    fn wait(self) -> Self::Output {
        SwapTicket::wait(self)
    }
}

/// `ticket.await`: the same result as [`SwapTicket::wait`], on any executor
/// (`tensorswap_core::sync::TicketFuture`).
impl std::future::IntoFuture for SwapTicket {
    type Output = Result<()>;
    type IntoFuture = TicketFuture<Self>;

    fn into_future(self) -> Self::IntoFuture {
        TicketFuture::new(self)
    }
}
