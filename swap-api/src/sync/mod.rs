//! Threading building blocks shared by the I/O engines and the backends, so
//! each mechanism exists once: [`WorkerThread`] (a queue and the threads
//! serving it, closed and joined on drop), [`Latch`] (the completion of
//! an operation whose parts finish on other threads) and [`TicketFuture`]
//! (a [`Ticket`] awaited on any executor).
//!
//! Uses only `std`, `tracing`, [`crate::Error`] and [`crate::PendingOp`].

mod future;
mod latch;
mod worker;

pub use future::{Ticket, TicketFuture};
pub use latch::{Latch, LatchPending};
pub use worker::{next_shared, WorkerThread};
