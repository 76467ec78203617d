//! [`Rejected`]: an error that hands the caller's input back.

use std::fmt;

use crate::Error;

/// A refused or failed call that hands its input back, so nothing is lost:
/// the one "error plus the buffers back" type of every layer (a failed
/// transfer is a [`Failed`](crate::Failed), a failed file request an
/// [`IoFailed`](crate::IoFailed)).
///
/// The error is the core [`Error`] by default; the swappers hand back
/// `Rejected<T, SwapError>` (`tensorswap_swapper::SwapError`).
pub struct Rejected<T, E = Error> {
    /// What went wrong.
    pub error: E,
    /// What the call was given (for a transfer or file request: its buffers).
    pub value: T,
}

impl<T, E> Rejected<T, E> {
    /// Drops the value and keeps the error.
    pub fn into_error(self) -> E {
        self.error
    }

    /// The same rejection with the error converted (e.g. into a
    /// `tensorswap_swapper::SwapError`).
    pub fn map_err<F: From<E>>(self) -> Rejected<T, F> {
        Rejected {
            error: self.error.into(),
            value: self.value,
        }
    }
}

impl<T, E: fmt::Debug> fmt::Debug for Rejected<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T, E: fmt::Display> fmt::Display for Rejected<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<T, E: std::error::Error> std::error::Error for Rejected<T, E> {
    /// The error's own cause: the message already is the error's.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl<T> From<Rejected<T>> for Error {
    fn from(rejected: Rejected<T>) -> Self {
        rejected.error
    }
}
