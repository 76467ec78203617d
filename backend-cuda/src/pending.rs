//! The ticket of one CUDA transfer: an event recorded after the copy, and
//! for operations that report an outcome of their own (cuFile's), a check
//! run once the event has completed.

use cudarc::driver::{CudaEvent, DriverError};
use tensorswap_core::{Direction, Error, PendingOp, Result};

use crate::driver::describe;
use crate::BACKEND;

/// What an operation reports once its event has completed.
pub(crate) type Check = Box<dyn FnOnce() -> Result<()> + Send>;

/// An in-flight CUDA transfer; see [`PendingOp`]. Waiting sleeps in the
/// driver (the event is created with `CU_EVENT_BLOCKING_SYNC`).
pub struct CudaPending {
    /// None for a transfer that moved nothing.
    event: Option<CudaEvent>,
    check: Option<Check>,
    direction: Direction,
    offset: usize,
    len: usize,
}

impl std::fmt::Debug for CudaPending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaPending")
            .field("event", &self.event)
            .field("checked", &self.check.is_some())
            .field("direction", &self.direction)
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

impl CudaPending {
    pub(crate) fn new(
        event: Option<CudaEvent>,
        check: Option<Check>,
        direction: Direction,
        offset: usize,
        len: usize,
    ) -> Self {
        Self {
            event,
            check,
            direction,
            offset,
            len,
        }
    }

    fn error(&self, error: &DriverError) -> Error {
        Error::Transfer {
            backend: BACKEND,
            direction: self.direction,
            offset: self.offset,
            len: self.len,
            reason: describe(error),
        }
    }
}

impl PendingOp for CudaPending {
    fn is_complete(&self) -> bool {
        match &self.event {
            None => true,
            // A failed copy is complete too: `wait` reports the error.
            Some(event) => !matches!(event.try_is_complete(), Ok(false)),
        }
    }

    fn wait(self) -> Result<()> {
        if let Some(event) = &self.event {
            event.synchronize().map_err(|e| self.error(&e))?;
        }
        self.check.map_or(Ok(()), |check| check())
    }
}
