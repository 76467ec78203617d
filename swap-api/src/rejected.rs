//! [`Rejected`]: an error that hands the caller's input back.

use std::fmt;

use crate::Error;

/// A refused or failed call that hands its input back, so nothing is lost:
/// the one "error plus the buffers back" type of every layer (a failed
/// transfer is a [`Failed`](crate::Failed), a failed file request an
/// [`IoFailed`](crate::IoFailed)).
pub struct Rejected<T> {
    /// What went wrong.
    pub error: Error,
    /// What the call was given (for a transfer or file request: its buffers).
    pub value: T,
}

impl<T> Rejected<T> {
    /// Drops the value and keeps the error.
    pub fn into_error(self) -> Error {
        self.error
    }
}

impl<T> fmt::Debug for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<T> std::error::Error for Rejected<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<T> From<Rejected<T>> for Error {
    fn from(rejected: Rejected<T>) -> Self {
        rejected.error
    }
}
