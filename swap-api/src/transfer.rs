//! Tickets for in-flight copies that own their buffers until completion.

use std::fmt;

use crate::sync::{Ticket, TicketFuture};
use crate::{Device, DeviceBuffer, Direction, PendingOp, Rejected};

/// The buffers of a finished transfer, handed back to the caller.
#[derive(Debug)]
pub struct Done<D: Device, H> {
    /// The host side.
    pub host: H,
    /// The device side.
    pub device: DeviceBuffer<D>,
}

/// A transfer that was refused or failed. Nothing is lost: both buffers come
/// back in `value` (a [`Done`]), and the transfer's source still holds its
/// bytes.
pub type Failed<D, H> = Rejected<Done<D, H>>;

/// What waiting on a [`Transfer`] gives: the buffers, or the error with the buffers.
pub type TransferResult<D, H> = Result<Done<D, H>, Failed<D, H>>;

/// The completion ticket of one upload or download.
///
/// The ticket owns the host buffer and the device buffer until the copy has
/// finished; [`Transfer::wait`] gives them back. Dropping a ticket waits for
/// the copy; leaking it (`mem::forget`) leaks the buffers too, so the device
/// never writes into freed memory.
#[must_use = "a transfer must be waited to get its buffers and its outcome back"]
pub struct Transfer<D: Device, H> {
    // None only after wait() moved the parts out.
    inner: Option<InFlight<D, H>>,
    direction: Direction,
}

struct InFlight<D: Device, H> {
    op: D::Pending,
    host: H,
    device: DeviceBuffer<D>,
}

impl<D: Device, H> Transfer<D, H> {
    pub(crate) fn new(
        op: D::Pending,
        host: H,
        device: DeviceBuffer<D>,
        direction: Direction,
    ) -> Self {
        Self {
            inner: Some(InFlight { op, host, device }),
            direction,
        }
    }

    /// Upload or download.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// True once the copy has finished (successfully or not); never blocks.
    pub fn is_complete(&self) -> bool {
        self.inner.as_ref().is_none_or(|f| f.op.is_complete())
    }

    /// Blocks until the copy has finished and returns the buffers, with the
    /// error if it failed.
    pub fn wait(mut self) -> TransferResult<D, H> {
        let InFlight { op, host, device } = self
            .inner
            .take()
            .expect("Transfer::inner is Some until wait consumes the ticket");
        match op.wait() {
            Ok(()) => Ok(Done { host, device }),
            Err(error) => Err(Rejected {
                error,
                value: Done { host, device },
            }),
        }
    }

    /// Returns the outcome if the copy has finished, or the ticket back if not.
    pub fn try_wait(self) -> Result<TransferResult<D, H>, Self> {
        if self.is_complete() {
            Ok(self.wait())
        } else {
            Err(self)
        }
    }
}

impl<D: Device, H> Drop for Transfer<D, H> {
    fn drop(&mut self) {
        if let Some(InFlight { op, .. }) = self.inner.take() {
            // The buffers are dropped only after the copy has stopped touching them.
            if let Err(error) = op.wait() {
                tracing::warn!(direction = %self.direction, %error, "dropped transfer failed");
            }
        }
    }
}

impl<D: Device, H> fmt::Debug for Transfer<D, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transfer")
            .field("direction", &self.direction)
            .field("complete", &self.is_complete())
            .finish()
    }
}

/// Waits for every transfer, in order, and returns each outcome.
pub fn wait_all<D: Device, H>(
    transfers: impl IntoIterator<Item = Transfer<D, H>>,
) -> Vec<TransferResult<D, H>> {
    transfers.into_iter().map(Transfer::wait).collect()
}

impl<D: Device, H: Send + 'static> Ticket for Transfer<D, H> {
    type Output = TransferResult<D, H>;

    fn is_complete(&self) -> bool {
        Transfer::is_complete(self)
    }

    fn wait(self) -> Self::Output {
        Transfer::wait(self)
    }
}

/// `transfer.await`: the same result as [`Transfer::wait`], on any
/// executor ([`TicketFuture`]).
impl<D: Device, H: Send + 'static> std::future::IntoFuture for Transfer<D, H> {
    type Output = TransferResult<D, H>;
    type IntoFuture = TicketFuture<Self>;

    fn into_future(self) -> Self::IntoFuture {
        TicketFuture::new(self)
    }
}
