//! An owned, zero-initialised, aligned heap allocation.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use crate::{Error, Result};

/// Owned bytes whose start is aligned to a power of two (a page, or the
/// file system's direct-I/O alignment). Zero-length allocations are allowed
/// and do not touch the allocator.
pub struct AlignedAlloc {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: AlignedAlloc uniquely owns its allocation, like Box<[u8]>; the raw
// pointer is never shared outside of &self / &mut self borrows.
unsafe impl Send for AlignedAlloc {}
// SAFETY: shared access only hands out &[u8]; mutation needs &mut self.
unsafe impl Sync for AlignedAlloc {}

impl AlignedAlloc {
    /// Allocates `len` zeroed bytes aligned to `align` (a power of two).
    ///
    /// Fails with [`Error::HostAlloc`] when the allocator refuses or the
    /// size/alignment pair is not representable.
    pub fn zeroed(len: usize, align: usize) -> Result<Self> {
        let layout =
            Layout::from_size_align(len, align).map_err(|_| Error::HostAlloc { len, align })?;
        if len == 0 {
            // A dangling pointer with the requested alignment, as Vec does.
            let ptr = NonNull::new(align as *mut u8).ok_or(Error::HostAlloc { len, align })?;
            return Ok(Self { ptr, layout });
        }
        // SAFETY: layout has a non-zero size (checked above).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or(Error::HostAlloc { len, align })?;
        Ok(Self { ptr, layout })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// True when the allocation holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Alignment of the start address.
    pub fn align(&self) -> usize {
        self.layout.align()
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
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len()) }
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in as_slice, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len()) }
    }
}

impl Drop for AlignedAlloc {
    fn drop(&mut self) {
        if self.layout.size() != 0 {
            // SAFETY: ptr was returned by alloc_zeroed with exactly this layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) };
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
    fn impossible_requests_are_typed_errors() {
        assert!(matches!(
            AlignedAlloc::zeroed(16, 3),
            Err(Error::HostAlloc { len: 16, align: 3 })
        ));
        assert!(matches!(
            AlignedAlloc::zeroed(usize::MAX - 10, 4096),
            Err(Error::HostAlloc { .. })
        ));
    }
}
