//! Threading building blocks shared by the I/O engines and the backends, so
//! each mechanism exists once: [`WorkerThread`] (a queue and the threads
//! serving it, closed and joined on drop) and [`Latch`] (the completion of
//! an operation whose parts finish on other threads).
//!
//! Uses only `std`, [`crate::Error`] and [`crate::PendingOp`].

mod latch;
mod worker;

pub use latch::{Latch, LatchPending};
pub use worker::{next_shared, WorkerThread};
