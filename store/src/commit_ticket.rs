//! [`CommitTicket`]: the completion of a remove or a flush.

use std::sync::Arc;

use tensorswap_core::sync::{Ticket, TicketFuture};

use crate::signal::Signal;
use crate::StoreError;

/// The ticket of a change the committer makes: a
/// [`remove`](crate::PersistentStore::remove) (whether the key held a
/// value) or a [`flush`](crate::PersistentStore::flush).
///
/// Dropping it does not cancel the change.
#[must_use = "the ticket says whether the change was committed"]
pub struct CommitTicket<T> {
    done: Arc<Signal<Result<T, StoreError>>>,
}

impl<T> CommitTicket<T> {
    pub(crate) fn new(done: Arc<Signal<Result<T, StoreError>>>) -> Self {
        Self { done }
    }

    /// True once waiting would not block.
    pub fn is_complete(&self) -> bool {
        self.done.is_set()
    }

    /// Blocks until the change is committed.
    pub fn wait(self) -> Result<T, StoreError> {
        self.done.take()
    }
}

impl<T> std::fmt::Debug for CommitTicket<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitTicket")
            .field("complete", &self.is_complete())
            .finish()
    }
}

impl<T: Send + 'static> Ticket for CommitTicket<T> {
    type Output = Result<T, StoreError>;

    fn is_complete(&self) -> bool {
        CommitTicket::is_complete(self)
    }

    fn wait(self) -> Self::Output {
        CommitTicket::wait(self)
    }
}

/// `ticket.await`, on any executor.
impl<T: Send + 'static> std::future::IntoFuture for CommitTicket<T> {
    type Output = Result<T, StoreError>;
    type IntoFuture = TicketFuture<Self>;

    fn into_future(self) -> Self::IntoFuture {
        TicketFuture::new(self)
    }
}
