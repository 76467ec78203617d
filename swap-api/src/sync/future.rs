//! [`TicketFuture`]: any ticket awaited from async code, on any executor.
//!
//! A ticket completes on another thread (a backend's copy thread, an
//! engine's worker, the kernel), which knows nothing of wakers. The future
//! returns at once for a ticket already complete; otherwise it hands the
//! ticket to a waiting thread of its own, which blocks in `wait` and wakes
//! the task when the result is in. No runtime is needed (no tokio in the
//! core); the cost is one short-lived thread per ticket awaited before it
//! completed, small against the transfers and file requests tickets stand
//! for.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// A ticket: something that completes on its own and is then waited for
/// its result. Implemented by [`Transfer`](crate::Transfer),
/// [`IoTicket`](crate::IoTicket) and the swappers' `SwapTicket`, which turn
/// into a [`TicketFuture`] with `.await` (`IntoFuture`).
pub trait Ticket: Send + 'static {
    /// What [`wait`](Self::wait) returns.
    type Output: Send + 'static;
    /// True once waiting would not block.
    fn is_complete(&self) -> bool;
    /// Blocks until the ticket completes and returns its result.
    fn wait(self) -> Self::Output;
}

/// A [`Ticket`] as a `Future`, for any executor (see the module docs).
///
/// ```
/// use tensorswap_core::DeviceExt;
/// let dev = tensorswap_cpu::CpuDevice::new()?;
/// let up = dev.upload(vec![7u8; 4096], dev.alloc(4096)?, 0)?;
/// let done = pollster::block_on(async { up.await })?;
/// assert_eq!(done.device.len(), 4096);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a future does nothing unless awaited; the ticket's work runs either way"]
pub struct TicketFuture<T: Ticket> {
    ticket: Option<T>,
    waiting: Option<Arc<Slot<T::Output>>>,
}

/// Where the waiting thread leaves the result, and the waker to call.
struct Slot<O> {
    state: Mutex<(Option<O>, Option<Waker>)>,
}

impl<O> Slot<O> {
    fn lock(&self) -> MutexGuard<'_, (Option<O>, Option<Waker>)> {
        // Every change is one assignment: a panic elsewhere cannot leave
        // the pair half-updated.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Ticket> TicketFuture<T> {
    /// The future of `ticket`.
    pub fn new(ticket: T) -> Self {
        Self {
            ticket: Some(ticket),
            waiting: None,
        }
    }
}

// The future holds no self-references: moving it is fine.
impl<T: Ticket> Unpin for TicketFuture<T> {}

impl<T: Ticket> Future for TicketFuture<T> {
    type Output = T::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        if let Some(ticket) = self.ticket.take() {
            if ticket.is_complete() {
                return Poll::Ready(ticket.wait());
            }
            let slot = Arc::new(Slot {
                state: Mutex::new((None, Some(cx.waker().clone()))),
            });
            let for_thread = Arc::clone(&slot);
            // The ticket moves into the thread through a shared cell, so
            // that it is still here to wait on if the thread cannot start.
            let cell = Arc::new(Mutex::new(Some(ticket)));
            let for_thread_cell = Arc::clone(&cell);
            let spawned = std::thread::Builder::new()
                .name("tensorswap-await".into())
                .spawn(move || {
                    let ticket = for_thread_cell
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take();
                    let Some(ticket) = ticket else { return };
                    let output = ticket.wait();
                    let waker = {
                        let mut state = for_thread.lock();
                        state.0 = Some(output);
                        state.1.take()
                    };
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                });
            if let Err(err) = spawned {
                tracing::warn!(%err, "no thread to wait on a ticket; waiting on the executor's thread");
                let ticket = cell.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(ticket) = ticket {
                    return Poll::Ready(ticket.wait());
                }
            }
            self.waiting = Some(slot);
            return Poll::Pending;
        }
        let Some(slot) = &self.waiting else {
            // Polled again after it returned Ready: a caller's bug, which
            // the Future contract allows us to answer with anything but
            // undefined behaviour. Never completes.
            return Poll::Pending;
        };
        let mut state = slot.lock();
        if let Some(output) = state.0.take() {
            drop(state);
            self.waiting = None;
            return Poll::Ready(output);
        }
        state.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T: Ticket> std::fmt::Debug for TicketFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketFuture")
            .field("waiting", &self.waiting.is_some())
            .finish()
    }
}
