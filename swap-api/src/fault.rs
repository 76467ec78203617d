//! [`FaultStage`]: when a fault injected by the decorators
//! ([`FaultyDevice`](crate::FaultyDevice),
//! [`FaultyEngine`](crate::FaultyEngine)) shows.

/// When an injected fault shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultStage {
    /// The submission itself is refused (the buffers come straight back).
    Submit,
    /// The submission is accepted and its ticket completes with the error:
    /// a faulty device skips the copy; a faulty engine lets the file
    /// operation run first, as a disk failing part-way would.
    Complete,
}
