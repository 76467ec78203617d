//! The only place in `swap-api` that talks to the allocator and the OS directly.
//!
//! Each submodule wraps one facility in a small safe type; outside this
//! folder `unsafe` appears only in the documented `Device` and `IoEngine`
//! contracts and in the engines that submit raw buffers to the kernel.

pub mod aligned;
#[cfg(target_os = "linux")]
pub mod eventfd;
pub mod fs;
pub mod memlock;

/// The system page size in bytes (4096 when it cannot be queried).
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| s.is_power_of_two())
        .unwrap_or(4096)
}

/// Physical memory of this machine in bytes, if the OS tells.
pub fn physical_memory() -> Option<usize> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    usize::try_from(pages).ok()?.checked_mul(page_size())
}
