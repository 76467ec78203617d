//! A leased slab of a pinned pool.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use super::PoolInner;
use crate::{check_range, HostBuf, HostBufMut, Result};

/// A fixed-capacity slice of a [`PinnedPool`](crate::PinnedPool), returned to
/// the pool on drop.
///
/// Its length (what reads and writes move) starts at the capacity and can be
/// shortened with [`Slab::set_len`]. A reused slab keeps whatever bytes its
/// previous lease left.
pub struct Slab {
    pool: Arc<PoolInner>,
    index: usize,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a slab is the only handle to its byte range (the pool hands each
// index to one lease at a time), like a Box<[u8]>.
unsafe impl Send for Slab {}
// SAFETY: shared access only gives &[u8].
unsafe impl Sync for Slab {}

impl Slab {
    pub(super) fn new(pool: Arc<PoolInner>, index: usize) -> Self {
        let capacity = pool.slab_size;
        // SAFETY: index < slabs, so the offset stays inside the arena.
        let ptr = unsafe { pool.arena.base().add(index * capacity) };
        Self {
            pool,
            index,
            ptr,
            len: capacity,
        }
    }

    /// Which slab of the pool this is.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The slab size of the pool.
    pub fn capacity(&self) -> usize {
        self.pool.slab_size
    }

    /// Sets how many bytes reads and writes move (at most the capacity).
    pub fn set_len(&mut self, len: usize) -> Result<()> {
        check_range("slab", 0, len, self.capacity())?;
        self.len = len;
        Ok(())
    }

    /// True when the pool's memory is page-locked.
    pub fn is_pinned(&self) -> bool {
        self.pool.pinned
    }
}

impl Deref for Slab {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len lies in this slab's range of the arena, which
        // the Arc keeps alive, is initialised (zeroed at allocation) and is
        // not shared with any other lease.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for Slab {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref; &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        self.pool.give_back(self.index);
    }
}

impl fmt::Debug for Slab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slab")
            .field("index", &self.index)
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .finish()
    }
}

// SAFETY: the range lives in the arena, which does not move and outlives the
// slab (Arc); len <= capacity keeps it inside the slab; bytes are initialised.
unsafe impl HostBuf for Slab {
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
unsafe impl HostBufMut for Slab {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}
