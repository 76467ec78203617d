//! [`Inflight`]: the file requests of one put or get, whatever their
//! engine and buffer types, for the committer and the tickets to wait on.

use tensorswap_core::{HostBuf, IoPending, IoTicket};

/// Requests in flight, waited together.
pub(crate) trait Inflight: Send {
    /// True once waiting would not block.
    fn is_complete(&self) -> bool;
    /// Waits for every request (and drops their buffers); the first error.
    fn wait(self: Box<Self>) -> Result<(), tensorswap_core::Error>;
}

impl<P: IoPending + Send, B: HostBuf> Inflight for Vec<IoTicket<P, B>> {
    fn is_complete(&self) -> bool {
        self.iter().all(IoTicket::is_complete)
    }

    fn wait(self: Box<Self>) -> Result<(), tensorswap_core::Error> {
        let mut first = Ok(());
        for ticket in *self {
            if let Err(failed) = ticket.wait() {
                if first.is_ok() {
                    first = Err(failed.error);
                }
            }
        }
        first
    }
}
