//! Every mode checks what it is about to allocate against what this process
//! may take (available memory, the memory cgroup's limit, `RLIMIT_AS`), and
//! refuses with the figures before allocating, instead of being killed.

use anyhow::bail;

use super::size::show_approx;

/// Fails when `needed` bytes for `what` do not fit in the memory this
/// process may take now; the message says which limit binds and `knob`,
/// what to lower.
pub(crate) fn check(needed: usize, what: &str, knob: &str) -> anyhow::Result<()> {
    let Some(limit) = tensorswap_core::sys::memory::tightest() else {
        return Ok(());
    };
    if needed as u64 > limit.room() {
        bail!(
            "{what} needs about {} of memory, but this process may allocate only {} now ({limit}); {knob}",
            show_approx(needed),
            show_approx(usize::try_from(limit.room()).unwrap_or(usize::MAX))
        );
    }
    Ok(())
}
