//! Completion tickets for file requests that own their host buffers.

use std::fmt;
use std::time::{Duration, Instant};

use super::engine::IoPending;
use super::file::SwapFile;
use crate::sync::{Ticket, TicketFuture};
use crate::{HostBuf, IoOp, Rejected};

/// A finished request: the buffer back, and how long the request took.
#[derive(Debug)]
pub struct IoDone<B> {
    /// The host buffer (for reads, now holding the file's bytes).
    pub buf: B,
    /// From submission to the last byte moved.
    pub latency: Duration,
}

/// A refused or failed request; the buffer comes back in `value`. For a
/// failed write it still holds the bytes that were to be written; for a
/// failed read its contents are unspecified.
pub type IoFailed<B> = Rejected<B>;

/// What waiting on an [`IoTicket`] gives.
pub type IoResult<B> = Result<IoDone<B>, IoFailed<B>>;

/// The completion ticket of one file read or write.
///
/// The ticket owns the host buffer until the request has finished;
/// [`IoTicket::wait`] gives it back. Dropping a ticket waits for the
/// request; leaking it (`mem::forget`) leaks the buffer, so the kernel never
/// writes into freed memory.
#[must_use = "a file request must be waited to get its buffer and its outcome back"]
pub struct IoTicket<P: IoPending, B: HostBuf> {
    inner: Option<(P, B)>,
    op: IoOp,
    file: SwapFile,
    offset: u64,
    len: usize,
    submitted: Instant,
}

impl<P: IoPending, B: HostBuf> IoTicket<P, B> {
    pub(crate) fn new(
        pending: P,
        buf: B,
        op: IoOp,
        file: &SwapFile,
        offset: u64,
        submitted: Instant,
    ) -> Self {
        let len = buf.bytes_len();
        Self {
            inner: Some((pending, buf)),
            op,
            file: file.clone(),
            offset,
            len,
            submitted,
        }
    }

    /// Read or write.
    pub fn op(&self) -> IoOp {
        self.op
    }

    /// True once the request has finished (waiting will not block).
    pub fn is_complete(&self) -> bool {
        self.inner.as_ref().is_none_or(|(p, _)| p.is_complete())
    }

    /// Blocks until the request finishes and returns the buffer.
    pub fn wait(mut self) -> IoResult<B> {
        let (pending, buf) = self
            .inner
            .take()
            .expect("IoTicket holds its request until waited");
        let finished = pending.finished_at();
        let result = pending.wait();
        let latency = finished
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(self.submitted);
        match result {
            Ok(()) => Ok(IoDone { buf, latency }),
            Err(error) => {
                if self.op == IoOp::Write {
                    self.file.checksums().forget(self.offset, self.len as u64);
                }
                Err(Rejected { error, value: buf })
            }
        }
    }

    /// Returns the result if the request has finished, or the ticket back.
    pub fn try_wait(self) -> Result<IoResult<B>, Self> {
        if self.is_complete() {
            Ok(self.wait())
        } else {
            Err(self)
        }
    }
}

impl<P: IoPending, B: HostBuf> Drop for IoTicket<P, B> {
    fn drop(&mut self) {
        if let Some((pending, buf)) = self.inner.take() {
            if let Err(err) = pending.wait() {
                tracing::debug!(%err, "a dropped file request failed");
            }
            drop(buf);
        }
    }
}

impl<P: IoPending, B: HostBuf> fmt::Debug for IoTicket<P, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoTicket")
            .field("op", &self.op)
            .field("file", &self.file.path())
            .field("offset", &self.offset)
            .field("len", &self.len)
            .field("complete", &self.is_complete())
            .finish()
    }
}

/// Waits for every ticket, in order, and returns each result.
pub fn wait_all_io<P: IoPending, B: HostBuf>(
    tickets: impl IntoIterator<Item = IoTicket<P, B>>,
) -> Vec<IoResult<B>> {
    tickets.into_iter().map(IoTicket::wait).collect()
}

impl<P: IoPending, B: HostBuf> Ticket for IoTicket<P, B> {
    type Output = IoResult<B>;

    fn is_complete(&self) -> bool {
        IoTicket::is_complete(self)
    }

    fn wait(self) -> Self::Output {
        IoTicket::wait(self)
    }
}

/// `ticket.await`: the same result as [`IoTicket::wait`], on any executor
/// ([`TicketFuture`]).
impl<P: IoPending, B: HostBuf> std::future::IntoFuture for IoTicket<P, B> {
    type Output = IoResult<B>;
    type IntoFuture = TicketFuture<Self>;

    fn into_future(self) -> Self::IntoFuture {
        TicketFuture::new(self)
    }
}
