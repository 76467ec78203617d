//! The pool's one allocation and whatever pins it.

use std::any::Any;
use std::ptr::NonNull;

use crate::sys::aligned::AlignedAlloc;
use crate::PinnedAlloc;

/// One aligned allocation, optionally locked or registered with a device.
pub(crate) struct Arena {
    // Dropped before `memory` (field order): a registration must never
    // outlive the memory it covers.
    registration: Option<Box<dyn Any + Send + Sync>>,
    base: NonNull<u8>,
    len: usize,
    /// Owns the bytes: an `AlignedAlloc`, or a device's `PinnedAlloc`.
    _memory: Box<dyn Any + Send + Sync>,
}

// SAFETY: the arena owns its allocation; `base` is only handed out as raw
// pointers to disjoint slabs, each owned by exactly one lease.
unsafe impl Send for Arena {}
// SAFETY: as above; the arena itself never reads or writes the bytes.
unsafe impl Sync for Arena {}

impl Arena {
    pub(crate) fn new(mut alloc: AlignedAlloc) -> Self {
        let base = NonNull::new(alloc.as_mut_ptr()).unwrap_or(NonNull::dangling());
        Self {
            registration: None,
            base,
            len: alloc.len(),
            _memory: Box::new(alloc),
        }
    }

    /// An arena in memory a device allocated page-locked.
    pub(crate) fn pinned(alloc: PinnedAlloc) -> Self {
        Self {
            registration: None,
            base: alloc.ptr(),
            len: alloc.len(),
            _memory: Box::new(alloc),
        }
    }

    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Attaches what pins the memory; dropped before the memory is freed.
    pub(crate) fn set_registration(&mut self, registration: Box<dyn Any + Send + Sync>) {
        self.registration = Some(registration);
    }
}
