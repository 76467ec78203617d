//! Page-locked host memory for tensors (`new_cpu_locked_tensor`), managed
//! process-wide as DeepSpeed's pinned-tensor manager is: every handle, and
//! the `pin_memory` op's `pin_handle`, sees every block; a view inside a
//! block counts as locked.
//!
//! Unlike DeepSpeed's manager, freeing a block only takes it out of the
//! manager (and unlocks it): its memory lives until the last tensor over it
//! is gone, so a tensor used after `free_cpu_locked_tensor` is not a
//! use-after-free.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use pyo3::prelude::*;
use swap_api::sys::aligned::AlignedAlloc;
use swap_api::sys::memlock::Locked;
use swap_api::sys::page_size;

/// One block: page-aligned memory, locked while it is managed.
struct Block {
    /// Declared first: unlocked before the memory is freed.
    lock: Mutex<Option<Locked>>,
    memory: AlignedAlloc,
}

/// The owner of a locked block's memory, held by the tensor over it (the
/// package's `_tensors.locked_tensor` ties it to the tensor).
#[pyclass(module = "tensorswap._native", frozen)]
pub struct LockedBlock {
    block: Arc<Block>,
}

#[pymethods]
impl LockedBlock {
    /// The block's address.
    #[getter]
    pub fn address(&self) -> usize {
        self.block.memory.as_ptr() as usize
    }

    /// The block's length in bytes.
    #[getter]
    fn nbytes(&self) -> usize {
        self.block.memory.len()
    }

    /// Whether `mlock` holds the block in RAM (false where the memlock
    /// limit refused it, or once freed).
    #[getter]
    fn locked(&self) -> bool {
        lock(&self.block.lock).is_some()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The managed blocks, by start address.
fn managed() -> &'static Mutex<BTreeMap<usize, Arc<Block>>> {
    static MANAGED: OnceLock<Mutex<BTreeMap<usize, Arc<Block>>>> = OnceLock::new();
    MANAGED.get_or_init(Default::default)
}

/// A new block of `nbytes` (at least one byte), locked where the memlock
/// limit allows, and managed (seen by [`is_managed`]) if asked; the error
/// says why the memory could not be had. Gives the block and, where
/// locking was refused, why.
pub fn allocate(nbytes: usize, manage: bool) -> swap_api::Result<(LockedBlock, Option<String>)> {
    let memory = AlignedAlloc::zeroed(nbytes.max(1), page_size())?;
    // SAFETY: the range is the allocation just made, which the block owns
    // and frees only after the lock (declared first) is dropped.
    let locked = unsafe { Locked::new(memory.as_ptr(), memory.len()) };
    let (held, refused) = match locked {
        Ok(l) => (Some(l), None),
        // The library's advice names a device's pinning switch, which a
        // Python caller does not have.
        Err(swap_api::Error::Pin { cause, .. }) => (
            None,
            Some(format!(
                "{cause}: the memlock limit (RLIMIT_MEMLOCK) is too low for it; raise it (`ulimit -l`, or memlock in /etc/security/limits.conf or the container's settings)"
            )),
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    let block = Arc::new(Block {
        lock: Mutex::new(held),
        memory,
    });
    if manage {
        lock(managed()).insert(block.memory.as_ptr() as usize, Arc::clone(&block));
    }
    Ok((LockedBlock { block }, refused))
}

/// Takes the block starting at `address` out of the manager and unlocks
/// it; false when no managed block starts there (DeepSpeed's answer).
pub fn free(address: usize) -> bool {
    let Some(block) = lock(managed()).remove(&address) else {
        return false;
    };
    lock(&block.lock).take();
    true
}

/// Whether `address..address + nbytes` lies inside one managed block.
pub fn is_managed(address: usize, nbytes: usize) -> bool {
    let blocks = lock(managed());
    let Some((&start, block)) = blocks.range(..=address).next_back() else {
        return false;
    };
    address
        .checked_add(nbytes)
        .is_some_and(|end| end <= start + block.memory.len())
}
