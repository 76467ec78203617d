//! An owned, zero-initialised, aligned allocation.
//!
//! Allocations of at least [`HUGE_PAGE`] bytes are mapped straight from the
//! kernel at a [`HUGE_PAGE`]-aligned address and advised for transparent
//! huge pages (`MADV_HUGEPAGE`), so the kernel backs them with 2 MiB pages
//! where it has them. That is for the disk: a direct-I/O request's memory
//! goes to the block device as one segment per physically contiguous run,
//! and a 1 MiB request in 4 KiB pages is 256 segments, more than a
//! virtio-blk disk takes in one request (254 here), so the block layer
//! splits every such request in two. In a huge page it is one segment.
//! Smaller allocations come from the heap.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use crate::{Error, Result};

/// The size and alignment of a transparent huge page on x86-64 and arm64
/// with 4 KiB base pages; allocations this large or larger are mapped.
pub const HUGE_PAGE: usize = 2 << 20;

/// The kernel's transparent-huge-page mode (`always`, `madvise` or
/// `never`), or None where it does not say (no THP, not Linux). Under
/// `always` and `madvise` large allocations get huge pages where the kernel
/// has free ones; under `never` they stay in base pages.
pub fn transparent_huge_pages() -> Option<String> {
    let modes = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    let (_, rest) = modes.split_once('[')?;
    let (mode, _) = rest.split_once(']')?;
    Some(mode.to_string())
}

/// Owned bytes whose start is aligned to a power of two (a page, or the
/// file system's direct-I/O alignment). Zero-length allocations are allowed
/// and do not touch the allocator.
pub struct AlignedAlloc {
    ptr: NonNull<u8>,
    len: usize,
    align: usize,
    backing: Backing,
}

/// Where the bytes came from, which says how to give them back.
#[derive(Debug)]
enum Backing {
    /// Nothing was allocated (zero length).
    None,
    /// `alloc::alloc_zeroed` with this layout.
    Heap(Layout),
    /// An anonymous mapping of this many bytes (`len` rounded up to pages).
    Mapped(usize),
}

// SAFETY: AlignedAlloc uniquely owns its allocation, like Box<[u8]>; the raw
// pointer is never shared outside of &self / &mut self borrows.
unsafe impl Send for AlignedAlloc {}
// SAFETY: shared access only hands out &[u8]; mutation needs &mut self.
unsafe impl Sync for AlignedAlloc {}

impl AlignedAlloc {
    /// Allocates `len` zeroed bytes aligned to `align` (a power of two);
    /// from [`HUGE_PAGE`] bytes on (and an `align` no larger), a mapping
    /// advised for huge pages, aligned to [`HUGE_PAGE`].
    ///
    /// Fails with [`Error::HostAlloc`] when the allocator (or `mmap`)
    /// refuses or the size/alignment pair is not representable.
    pub fn zeroed(len: usize, align: usize) -> Result<Self> {
        let layout =
            Layout::from_size_align(len, align).map_err(|_| Error::HostAlloc { len, align })?;
        let (raw, backing) = if len == 0 {
            // A dangling pointer with the requested alignment, as Vec does.
            (align as *mut u8, Backing::None)
        } else if len >= HUGE_PAGE && align <= HUGE_PAGE {
            let (raw, mapped) = map_huge(len).ok_or(Error::HostAlloc { len, align })?;
            (raw, Backing::Mapped(mapped))
        } else {
            // SAFETY: layout has a non-zero size (checked above).
            (
                unsafe { alloc::alloc_zeroed(layout) },
                Backing::Heap(layout),
            )
        };
        let ptr = NonNull::new(raw).ok_or(Error::HostAlloc { len, align })?;
        Ok(Self {
            ptr,
            len,
            align,
            backing,
        })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the allocation holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Alignment of the start address (as asked; a mapped allocation's
    /// start is [`HUGE_PAGE`]-aligned too).
    pub fn align(&self) -> usize {
        self.align
    }

    /// Start address; valid for `len()` bytes while `self` lives.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Mutable start address; valid for `len()` bytes while `self` lives.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid, initialised (zeroed) and aligned for len bytes,
        // and the borrow of self keeps it alive and unaliased by &mut.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in as_slice, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

/// Maps `len` zeroed bytes (rounded up to whole pages) at a
/// [`HUGE_PAGE`]-aligned address and advises huge pages for them; the start
/// and the mapped length, or None when `mmap` refuses.
fn map_huge(len: usize) -> Option<(*mut u8, usize)> {
    let mapped = len.checked_next_multiple_of(super::page_size())?;
    // Room to slide the start up to the next huge-page boundary.
    let reserve = mapped.checked_add(HUGE_PAGE)?;
    // SAFETY: a fresh private anonymous mapping; it aliases nothing.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            reserve,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        tracing::debug!(err = %std::io::Error::last_os_error(), len, "mmap refused");
        return None;
    }
    let base = raw as usize;
    let head = base.next_multiple_of(HUGE_PAGE) - base;
    let tail = reserve - head - mapped;
    // SAFETY: both ranges lie inside the mapping just made and outside the
    // part kept; mmap's result is page-aligned, so are `head` and `tail`.
    unsafe {
        if head > 0 {
            libc::munmap(raw, head);
        }
        if tail > 0 {
            libc::munmap(raw.cast::<u8>().add(head + mapped).cast(), tail);
        }
    }
    // SAFETY: `head` < HUGE_PAGE < reserve, inside the mapping.
    let start = unsafe { raw.cast::<u8>().add(head) };
    advise_huge(start, mapped);
    Some((start, mapped))
}

/// Asks for transparent huge pages on a fresh mapping, before any page of
/// it is touched. Where the kernel has none (THP off or not built in) the
/// pages stay 4 KiB: slower requests, same bytes.
fn advise_huge(start: *mut u8, len: usize) {
    // SAFETY: madvise with MADV_HUGEPAGE changes no contents and only
    // applies to our own mapping.
    if unsafe { libc::madvise(start.cast(), len, libc::MADV_HUGEPAGE) } != 0 {
        tracing::debug!(err = %std::io::Error::last_os_error(), len, "no transparent huge pages");
    }
}

impl Drop for AlignedAlloc {
    fn drop(&mut self) {
        match self.backing {
            Backing::None => {}
            // SAFETY: ptr was returned by alloc_zeroed with exactly this layout.
            Backing::Heap(layout) => unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) },
            // SAFETY: ptr..ptr+mapped is the mapping map_huge kept, unmapped once.
            Backing::Mapped(mapped) => unsafe {
                libc::munmap(self.ptr.as_ptr().cast(), mapped);
            },
        }
    }
}

impl std::fmt::Debug for AlignedAlloc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedAlloc")
            .field("ptr", &self.ptr)
            .field("len", &self.len())
            .field("align", &self.align())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_and_zeroing_hold_for_odd_sizes() {
        for (len, align) in [(0, 4096), (1, 4096), (4097, 4096), (3, 8), (1 << 20, 65536)] {
            let mut a = AlignedAlloc::zeroed(len, align).unwrap();
            assert_eq!(a.as_ptr() as usize % align, 0);
            assert_eq!(a.len(), len);
            assert!(a.as_slice().iter().all(|&b| b == 0));
            a.as_mut_slice().fill(0xAB);
            assert!(a.as_slice().iter().all(|&b| b == 0xAB));
        }
    }

    #[test]
    fn large_allocations_are_mapped_on_huge_page_boundaries() {
        for len in [HUGE_PAGE, 3 * HUGE_PAGE + 5] {
            let mut a = AlignedAlloc::zeroed(len, 4096).unwrap();
            assert_eq!(a.as_ptr() as usize % HUGE_PAGE, 0);
            assert!(matches!(a.backing, Backing::Mapped(m) if m >= len && m - len < 4096));
            assert!(a.as_slice().iter().all(|&b| b == 0));
            a.as_mut_slice().fill(0xCD);
            assert_eq!(a.as_slice()[len - 1], 0xCD);
        }
        // An alignment beyond a huge page is the heap's to give.
        let a = AlignedAlloc::zeroed(HUGE_PAGE, 2 * HUGE_PAGE).unwrap();
        assert!(matches!(a.backing, Backing::Heap(_)));
        assert_eq!(a.as_ptr() as usize % (2 * HUGE_PAGE), 0);
    }

    /// The kernel's view of the mapping: advised for huge pages, which it
    /// reports as `THPeligible: 1` in `/proc/self/smaps` (where THP is not
    /// switched off).
    #[test]
    fn large_allocations_are_eligible_for_transparent_huge_pages() {
        let mode = transparent_huge_pages();
        if !matches!(mode.as_deref(), Some("madvise" | "always")) {
            eprintln!("skipped: transparent huge pages are off here ({mode:?})");
            return;
        }
        let a = AlignedAlloc::zeroed(4 * HUGE_PAGE, 4096).unwrap();
        let start = a.as_ptr() as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut lines = smaps.lines().skip_while(|line| {
            let range = line.split_whitespace().next().unwrap_or_default();
            let from = range.split('-').next().unwrap_or_default();
            usize::from_str_radix(from, 16) != Ok(start)
        });
        assert!(lines.next().is_some(), "no mapping starts at {start:#x}");
        // Every mapping's block has the line: the first one is this mapping's.
        let eligible = lines
            .find_map(|line| line.strip_prefix("THPeligible:"))
            .map(str::trim);
        assert_eq!(
            eligible,
            Some("1"),
            "the mapping at {start:#x} is not advised"
        );
    }

    #[test]
    fn impossible_requests_are_typed_errors() {
        assert!(matches!(
            AlignedAlloc::zeroed(16, 3),
            Err(Error::HostAlloc { len: 16, align: 3 })
        ));
        assert!(matches!(
            AlignedAlloc::zeroed(usize::MAX - 10, 4096),
            Err(Error::HostAlloc { .. })
        ));
        // A valid layout that `mmap` refuses: 128 TiB is a whole 47-bit
        // user address space, which has other mappings in it already.
        #[cfg(target_pointer_width = "64")]
        assert!(matches!(
            AlignedAlloc::zeroed(1 << 47, 4096),
            Err(Error::HostAlloc { len, align: 4096 }) if len == 1 << 47
        ));
    }
}
