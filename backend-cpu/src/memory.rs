//! Device memory of the CPU backend: budgeted, page-aligned, optionally locked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use swap_api::sys::aligned::AlignedAlloc;
use swap_api::sys::memlock::Locked;
use swap_api::sys::page_size;
use swap_api::{Error, Result};

use crate::BACKEND;

/// The capacity of one device and how much of it is allocated.
#[derive(Debug)]
pub(crate) struct Budget {
    capacity: usize,
    used: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            used: AtomicUsize::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Reserves `len` bytes or says how many are left.
    fn reserve(&self, len: usize) -> Result<()> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(len)
                    .filter(|&total| total <= self.capacity)
            })
            .map(drop)
            .map_err(|used| Error::OutOfMemory {
                backend: BACKEND,
                requested: len,
                available: self.capacity.saturating_sub(used),
            })
    }

    fn release(&self, len: usize) {
        self.used.fetch_sub(len, Ordering::AcqRel);
    }
}

/// A CPU device allocation: host memory standing in for device memory.
///
/// Freed, unlocked and returned to its device's budget on drop, also after
/// the device handle itself is gone.
#[derive(Debug)]
pub struct CpuMemory {
    // Field order is drop order: unlock before freeing.
    lock: Option<Locked>,
    alloc: AlignedAlloc,
    budget: Arc<Budget>,
}

impl CpuMemory {
    pub(crate) fn allocate(budget: &Arc<Budget>, len: usize, pinned: bool) -> Result<Self> {
        budget.reserve(len)?;
        let alloc = match AlignedAlloc::zeroed(len, page_size()) {
            Ok(alloc) => alloc,
            Err(_) => {
                budget.release(len);
                return Err(Error::OutOfMemory {
                    backend: BACKEND,
                    requested: len,
                    available: budget.capacity().saturating_sub(budget.used()),
                });
            }
        };
        let lock = if pinned {
            // SAFETY: `alloc` is stored beside the guard and, by field order,
            // dropped after it.
            match unsafe { Locked::new(alloc.as_ptr(), len) } {
                Ok(lock) => Some(lock),
                Err(error) => {
                    budget.release(len);
                    return Err(error);
                }
            }
        } else {
            None
        };
        Ok(Self {
            lock,
            alloc,
            budget: Arc::clone(budget),
        })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.alloc.len()
    }

    /// True for a zero-length allocation.
    pub fn is_empty(&self) -> bool {
        self.alloc.is_empty()
    }

    /// The bytes, for computing on "device" memory in place (e.g. through a
    /// swapper's [`TensorHandle`](swap_api::swapper::TensorHandle)).
    ///
    /// Sound from safe code: the safe transfer API writes device memory only
    /// through an owned `DeviceBuffer`, which cannot exist while this borrow
    /// does, and the raw `Device::submit_upload` forbids any other access
    /// to its destination until the upload is waited.
    pub fn as_slice(&self) -> &[u8] {
        self.alloc.as_slice()
    }

    /// True when the memory is page-locked.
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    pub(crate) fn belongs_to(&self, budget: &Arc<Budget>) -> bool {
        Arc::ptr_eq(&self.budget, budget)
    }

    pub(crate) fn base(&self) -> *mut u8 {
        self.alloc.as_ptr().cast_mut()
    }
}

impl Drop for CpuMemory {
    fn drop(&mut self) {
        self.budget.release(self.alloc.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_reserved_and_returned() {
        let budget = Arc::new(Budget::new(10_000));
        let a = CpuMemory::allocate(&budget, 6_000, false).unwrap();
        assert_eq!(budget.used(), 6_000);
        match CpuMemory::allocate(&budget, 5_000, false) {
            Err(Error::OutOfMemory {
                requested: 5_000,
                available: 4_000,
                ..
            }) => {}
            other => panic!("expected OutOfMemory, got {other:?}"),
        }
        assert_eq!(
            budget.used(),
            6_000,
            "a refused allocation reserves nothing"
        );
        drop(a);
        assert_eq!(budget.used(), 0);
        let b = CpuMemory::allocate(&budget, 10_000, false).unwrap();
        assert_eq!(b.len(), 10_000);
    }

    #[test]
    fn allocator_refusal_returns_the_reservation() {
        let budget = Arc::new(Budget::new(usize::MAX));
        let err = CpuMemory::allocate(&budget, usize::MAX - 4096, false).unwrap_err();
        assert!(matches!(err, Error::OutOfMemory { .. }), "{err}");
        assert_eq!(budget.used(), 0);
    }
}
