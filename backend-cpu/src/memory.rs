//! Device memory of the CPU backend: budgeted, page-aligned, optionally locked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tensorswap_core::sys::aligned::AlignedAlloc;
use tensorswap_core::sys::memlock::Locked;
use tensorswap_core::sys::{available_memory, page_size};
use tensorswap_core::{Error, Result};

use crate::BACKEND;

/// The capacity of one device and how much of it is allocated.
#[derive(Debug)]
pub(crate) struct Budget {
    capacity: usize,
    used: AtomicUsize,
    /// Freed blocks kept for reuse, like a GPU caching allocator: fresh
    /// memory costs a zeroing page fault per page (about 1 GB/s), reused
    /// memory nothing. Cached bytes do not count as used.
    cache: Mutex<Vec<Block>>,
}

/// Cached bytes at most: a quarter of the capacity, and 4 GiB.
fn cache_limit(capacity: usize) -> usize {
    (capacity / 4).min(4 << 30)
}

/// One allocation and the lock on it (dropped first: field order).
#[derive(Debug)]
struct Block {
    lock: Option<Locked>,
    alloc: AlignedAlloc,
}

impl Budget {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            used: AtomicUsize::new(0),
            cache: Mutex::new(Vec::new()),
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
                available: Some(self.capacity.saturating_sub(used)),
            })
    }

    fn release(&self, len: usize) {
        self.used.fetch_sub(len, Ordering::AcqRel);
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Vec<Block>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A cached block of exactly `len` bytes, if there is one.
    fn reuse(&self, len: usize) -> Option<Block> {
        let mut cache = self.cached();
        let at = cache.iter().position(|b| b.alloc.len() == len)?;
        Some(cache.swap_remove(at))
    }

    /// Keeps a freed block for reuse, or frees it when the cache is full.
    fn recycle(&self, block: Block) {
        let mut cache = self.cached();
        let held: usize = cache.iter().map(|b| b.alloc.len()).sum();
        if held + block.alloc.len() <= cache_limit(self.capacity) && !block.alloc.is_empty() {
            cache.push(block);
        }
    }
}

/// A CPU device allocation: host memory standing in for device memory.
///
/// Freed, unlocked and returned to its device's budget on drop, also after
/// the device handle itself is gone.
#[derive(Debug)]
pub struct CpuMemory {
    // Some until dropped, when it goes back to the budget's cache.
    block: Option<Block>,
    budget: Arc<Budget>,
}

impl CpuMemory {
    pub(crate) fn allocate(budget: &Arc<Budget>, len: usize, pinned: bool) -> Result<Self> {
        budget.reserve(len)?;
        if let Some(block) = budget.reuse(len) {
            return Ok(Self {
                block: Some(block),
                budget: Arc::clone(budget),
            });
        }
        // The capacity is all of RAM, which the rest of the process shares:
        // memory the kernel cannot give now would come from the OOM killer.
        if let Some(available) = available_memory().filter(|&a| len > a) {
            budget.release(len);
            return Err(Error::OutOfMemory {
                backend: BACKEND,
                requested: len,
                available: Some(available),
            });
        }
        let alloc = match AlignedAlloc::zeroed(len, page_size()) {
            Ok(alloc) => alloc,
            Err(_) => {
                budget.release(len);
                return Err(Error::OutOfMemory {
                    backend: BACKEND,
                    requested: len,
                    available: Some(budget.capacity().saturating_sub(budget.used())),
                });
            }
        };
        let lock = if pinned {
            // SAFETY: `alloc` is stored beside the guard in a Block, which
            // drops the guard first (field order).
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
            block: Some(Block { lock, alloc }),
            budget: Arc::clone(budget),
        })
    }

    fn alloc(&self) -> &AlignedAlloc {
        match &self.block {
            Some(block) => &block.alloc,
            None => unreachable!("the block is only taken in drop"),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.alloc().len()
    }

    /// True for a zero-length allocation.
    pub fn is_empty(&self) -> bool {
        self.alloc().is_empty()
    }

    /// The bytes, for computing on "device" memory in place (e.g. through a
    /// swapper's `TensorHandle`).
    ///
    /// Sound from safe code: the safe transfer API writes device memory only
    /// through an owned `DeviceBuffer`, which cannot exist while this borrow
    /// does, and the raw `Device::submit_upload` forbids any other access
    /// to its destination until the upload is waited.
    pub fn as_slice(&self) -> &[u8] {
        self.alloc().as_slice()
    }

    /// The bytes, to fill in place (memory taken out of its buffer with
    /// [`DeviceBuffer::into_memory`](tensorswap_core::DeviceBuffer::into_memory) is
    /// in no transfer).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.block {
            Some(block) => block.alloc.as_mut_slice(),
            None => unreachable!("the block is only taken in drop"),
        }
    }

    /// True when the memory is page-locked.
    pub fn is_locked(&self) -> bool {
        self.block.as_ref().is_some_and(|b| b.lock.is_some())
    }

    pub(crate) fn belongs_to(&self, budget: &Arc<Budget>) -> bool {
        Arc::ptr_eq(&self.budget, budget)
    }

    pub(crate) fn base(&self) -> *mut u8 {
        self.alloc().as_ptr().cast_mut()
    }
}

impl Drop for CpuMemory {
    fn drop(&mut self) {
        if let Some(block) = self.block.take() {
            self.budget.release(block.alloc.len());
            self.budget.recycle(block);
        }
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
                available: Some(4_000),
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
