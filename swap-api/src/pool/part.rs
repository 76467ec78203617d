//! Disjoint parts of one slab, so several small tensors share a slab.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use super::Slab;
use crate::{check_range, Error, HostBuf, HostBufMut, Result};

/// An owned, disjoint byte range of a [`Slab`], from [`Slab::split`].
///
/// Each part can be handed to its own transfer or file request; the slab
/// goes back to the pool when its last part drops.
pub struct SlabPart {
    // Only keeps the lease alive: never dereferenced, because other parts
    // hold mutable access to the rest of the slab.
    _lease: Arc<Slab>,
    ptr: NonNull<u8>,
    offset: usize,
    capacity: usize,
    len: usize,
}

// SAFETY: a part is the only handle to its byte range (split hands out
// disjoint ranges and the shared slab is never dereferenced), like a Box<[u8]>.
unsafe impl Send for SlabPart {}
// SAFETY: shared access only gives &[u8] of the part's own range.
unsafe impl Sync for SlabPart {}

impl Slab {
    /// Cuts the slab into consecutive parts of the given lengths, from its
    /// start (lengths that are multiples of the pool's alignment keep every
    /// part aligned). Fails, handing nothing out, when they do not fit.
    pub fn split(mut self, lens: &[usize]) -> Result<Vec<SlabPart>> {
        let total = lens
            .iter()
            .try_fold(0usize, |sum, &len| sum.checked_add(len))
            .ok_or(Error::OutOfRange {
                what: "slab",
                offset: 0,
                len: usize::MAX,
                size: self.capacity(),
            })?;
        check_range("slab", 0, total, self.capacity())?;
        let base = NonNull::new(self.stable_mut_ptr()).unwrap_or(NonNull::dangling());
        let lease = Arc::new(self);
        let mut offset = 0;
        Ok(lens
            .iter()
            .map(|&len| {
                // SAFETY: offset + len <= total <= capacity, so the pointer
                // stays inside the slab's range of the arena.
                let ptr = unsafe { base.add(offset) };
                let part = SlabPart {
                    _lease: Arc::clone(&lease),
                    ptr,
                    offset,
                    capacity: len,
                    len,
                };
                offset += len;
                part
            })
            .collect())
    }
}

impl SlabPart {
    /// Byte offset of the part in its slab.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes the part covers.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sets how many bytes (from the part's start) requests move.
    pub fn set_len(&mut self, len: usize) -> Result<()> {
        check_range("slab part", 0, len, self.capacity)?;
        self.len = len;
        Ok(())
    }
}

impl Deref for SlabPart {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len lies in this part's range, which no other part
        // or the slab handle touches, and the Arc keeps the arena alive.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for SlabPart {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref; &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl fmt::Debug for SlabPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlabPart")
            .field("offset", &self.offset)
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .finish()
    }
}

// SAFETY: the range lies in the arena, which does not move and which the
// lease keeps alive; len <= capacity keeps it inside the part.
unsafe impl HostBuf for SlabPart {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    fn bytes_len(&self) -> usize {
        self.len
    }
    /// The pool pins (or leaves unpinned) its whole arena.
    fn is_registered(&self) -> bool {
        true
    }
}

// SAFETY: same range as stable_ptr; any bytes are a valid [u8].
unsafe impl HostBufMut for SlabPart {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

#[cfg(test)]
mod tests {
    use crate::PinnedPool;

    #[test]
    fn parts_are_disjoint_and_return_the_slab_together() {
        let pool = PinnedPool::builder()
            .slab_size(8192)
            .slabs(1)
            .build()
            .unwrap();
        let mut parts = pool.lease().split(&[4096, 1000, 0]).unwrap();
        parts[0].fill(1);
        parts[1].fill(2);
        assert_eq!((parts[1].offset(), parts[2].capacity()), (4096, 0));
        assert!(parts[0].iter().all(|&b| b == 1) && parts[1].iter().all(|&b| b == 2));
        parts[1].set_len(10).unwrap();
        assert!(parts[1].set_len(1001).is_err());
        let last = parts.pop().unwrap();
        drop(parts);
        assert_eq!(pool.stats().free, 0, "one part still holds the slab");
        drop(last);
        assert_eq!(pool.stats().free, 1);
        assert!(pool.lease().split(&[8192, 1]).is_err());
        assert!(pool.lease().split(&[usize::MAX, 2]).is_err());
        assert_eq!(pool.stats().free, 1, "a refused split returns the slab");
    }
}
