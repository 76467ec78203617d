//! [`PendingOp`]: the completion of one asynchronous operation, as every
//! backend and engine hands it out.

use crate::Result;

/// A backend's or engine's in-flight operation.
///
/// # Contract
/// - `is_complete` never blocks; once it returns true, `wait` returns at once.
/// - `wait` blocks until the operation has finished touching both buffers and
///   returns its outcome. After `wait` returns (with `Ok` or `Err`) the
///   backend no longer reads or writes the memory involved.
/// - Dropping a pending operation without waiting must not free or reuse any
///   memory involved; the safe layer ([`crate::Transfer`]) always waits.
pub trait PendingOp: Send + 'static {
    /// True when the operation has finished (successfully or not).
    fn is_complete(&self) -> bool;
    /// Blocks until the operation has finished and returns its outcome.
    fn wait(self) -> Result<()>;
}
