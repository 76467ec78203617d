//! The ticket of one CUDA transfer: an event recorded after the copy.

use cudarc::driver::{CudaEvent, DriverError};
use swap_api::{Direction, Error, PendingOp, Result};

use crate::driver::describe;
use crate::BACKEND;

/// An in-flight CUDA transfer; see [`PendingOp`]. Waiting sleeps in the
/// driver (the event is created with `CU_EVENT_BLOCKING_SYNC`).
#[derive(Debug)]
pub struct CudaPending {
    /// None for a transfer that moved nothing.
    event: Option<CudaEvent>,
    direction: Direction,
    offset: usize,
    len: usize,
}

impl CudaPending {
    pub(crate) fn new(
        event: Option<CudaEvent>,
        direction: Direction,
        offset: usize,
        len: usize,
    ) -> Self {
        Self {
            event,
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
        match &self.event {
            None => Ok(()),
            Some(event) => event.synchronize().map_err(|e| self.error(&e)),
        }
    }
}
