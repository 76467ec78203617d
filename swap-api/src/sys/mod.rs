//! The only place in `tensorswap-core` that calls the allocator and the OS
//! directly: each submodule wraps one facility in a small type.
//!
//! Public for the backends: [`aligned`] (aligned allocations, on huge pages
//! from 2 MiB), [`memlock`] (page locking and its limit), [`memory`] (how
//! much may still be allocated) and [`page_size`];
//! for reports, [`volume`] (a folder's file system and free space). Crate-private: `fs`
//! (`pread`/`pwrite`, `statx`, `openat`, ...) and `eventfd`.
//!
//! `unsafe` is not confined to this folder. Outside it, it appears in:
//! the `Device` and `IoEngine` contracts and the `HostBuf` trait (what
//! implementors promise); the safe layers that hold callers to those
//! contracts (`ext.rs`, `storage/ext.rs`, `storage/ticket.rs`); the engines
//! that hand raw buffers to the kernel (`storage/uring.rs`,
//! `storage/threads.rs`), and the striped file that cuts one request into
//! several (`storage/stripes.rs`); the host buffers, pool slabs and typed views that
//! build slices from raw memory (`buffer/`, `pool/`, `tensor.rs`); and the
//! decorators forwarding the contracts (`faulty.rs`, `storage/faulty.rs`,
//! `storage/throttled.rs`, `storage/any.rs`). Every block there has its `// SAFETY:` line.

pub mod aligned;
pub(crate) mod eventfd;
pub(crate) mod fs;
pub mod memlock;
pub mod memory;
pub mod volume;

/// The system page size in bytes (4096 when it cannot be queried).
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| s.is_power_of_two())
        .unwrap_or(4096)
}

/// Bytes this process may still allocate, if anything tells: the least of
/// what the kernel says is available, what its memory cgroup leaves and
/// what `RLIMIT_AS` leaves ([`memory::tightest`], which also says which).
pub fn available_memory() -> Option<usize> {
    let room = memory::tightest()?.room();
    Some(usize::try_from(room).unwrap_or(usize::MAX))
}

/// Physical memory of this machine in bytes, if the OS tells.
pub fn physical_memory() -> Option<usize> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    usize::try_from(pages).ok()?.checked_mul(page_size())
}
