//! A process at `vm.max_map_count` cannot page-lock, whatever its memlock
//! limit; the error says so instead of blaming RLIMIT_MEMLOCK. In its own
//! binary: the test fills this process's mappings almost to the limit.

use tensorswap_core::sys::memlock::{mapping_count, Locked};
use tensorswap_core::Error;

const PAGE: usize = 4096;

/// Maps `pages` pages with `prot`.
fn map(pages: usize, prot: libc::c_int) -> *mut libc::c_void {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: an anonymous private mapping with no address hint has no preconditions.
    unsafe { libc::mmap(std::ptr::null_mut(), pages * PAGE, prot, flags, -1, 0) }
}

#[test]
fn mlock_at_the_map_count_limit_names_vm_max_map_count() {
    let Some(limit) = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&l| l <= 1 << 20)
    else {
        eprintln!("skipped: vm.max_map_count is unreadable or too large to fill in a test");
        return;
    };
    // Three pages in one mapping: locking the middle one splits it in three.
    let region = map(3, libc::PROT_READ | libc::PROT_WRITE);
    assert_ne!(region, libc::MAP_FAILED);
    // Pages until mmap refuses (the limit); alternating protections keep
    // neighbours from merging. Small allocations still come from the heap.
    let base = mapping_count().expect("/proc/self/maps");
    let mut filler = Vec::with_capacity(limit as usize);
    for i in 0..limit.saturating_sub(base) + 16 {
        let p = map(
            1,
            if i % 2 == 0 {
                libc::PROT_READ
            } else {
                libc::PROT_NONE
            },
        );
        if p == libc::MAP_FAILED {
            break;
        }
        filler.push(p);
    }
    let middle = region.cast::<u8>().wrapping_add(PAGE);
    // SAFETY: the middle page is mapped and stays mapped until the munmap below.
    let locked = unsafe { Locked::new(middle, PAGE) };
    let at = mapping_count();
    for p in filler {
        // SAFETY: p is a page mapped above and used by nothing.
        unsafe { libc::munmap(p, PAGE) };
    }
    match locked {
        Err(Error::MapCount { limit: l, .. }) => assert_eq!(l, limit),
        Err(other) => panic!("at {at:?} of {limit} mappings: expected MapCount, got {other}"),
        Ok(guard) => {
            drop(guard);
            eprintln!("skipped: mlock split a mapping at {at:?} of {limit} mappings");
        }
    }
    // SAFETY: region is the 3-page mapping above; the guard (if any) is gone.
    unsafe { libc::munmap(region, 3 * PAGE) };
}
