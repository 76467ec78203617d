//! The page-locking policy shared by devices and pinned pools.

/// Whether memory is page-locked (pinned).
///
/// Locking lets DMA engines and `O_DIRECT` use the memory without the kernel
/// pinning pages per request, but a process may lock only up to its
/// `RLIMIT_MEMLOCK` unless it holds `CAP_IPC_LOCK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pinning {
    /// Lock when the limit allows it; otherwise work unlocked and warn once.
    #[default]
    Auto,
    /// Lock, or fail with an error that says which limit to raise.
    Required,
    /// Never lock.
    Off,
}
