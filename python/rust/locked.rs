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
use tensorswap_core::sys::aligned::AlignedAlloc;
use tensorswap_core::sys::memlock::Locked;
use tensorswap_core::sys::page_size;

/// One block: page-aligned memory, locked while it is managed.
struct Block {
    /// Declared first: unlocked before the memory is freed.
    lock: Mutex<Option<Locked>>,
    /// Always present; taken only by `Drop`, to be reused.
    memory: Option<AlignedAlloc>,
    /// A bounce buffer's: kept for the next one when dropped.
    scratch: bool,
}

impl Block {
    fn memory(&self) -> &AlignedAlloc {
        // Present until the block's Drop.
        self.memory
            .as_ref()
            .expect("a block's memory lives until its drop")
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if let (true, Some(memory)) = (self.scratch, self.memory.take()) {
            spare::put(memory);
        }
    }
}

/// Bounce buffers' memory kept for reuse: fresh memory costs its page
/// faults (and, where huge pages are off, its zeroing) on every operation.
mod spare {
    use std::sync::Mutex;

    use tensorswap_core::sys::aligned::AlignedAlloc;

    /// At most this many bytes are kept.
    const KEPT: usize = 1 << 30;
    /// At most this many blocks are kept.
    const BLOCKS: usize = 8;

    static SPARE: Mutex<Vec<AlignedAlloc>> = Mutex::new(Vec::new());

    fn lock() -> std::sync::MutexGuard<'static, Vec<AlignedAlloc>> {
        SPARE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A kept block of at least `len` bytes and at most twice that.
    pub(super) fn take(len: usize) -> Option<AlignedAlloc> {
        let mut spare = lock();
        let i = spare
            .iter()
            .position(|m| m.len() >= len && m.len() / 2 <= len)?;
        Some(spare.swap_remove(i))
    }

    /// Keeps `memory` if there is room, else frees it.
    pub(super) fn put(memory: AlignedAlloc) {
        let mut spare = lock();
        let kept: usize = spare.iter().map(AlignedAlloc::len).sum();
        if spare.len() < BLOCKS && kept + memory.len() <= KEPT {
            spare.push(memory);
        }
    }
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
        self.block.memory().as_ptr() as usize
    }

    /// The block's length in bytes.
    #[getter]
    fn nbytes(&self) -> usize {
        self.block.memory().len()
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
pub fn allocate(
    nbytes: usize,
    manage: bool,
) -> tensorswap_core::Result<(LockedBlock, Option<String>)> {
    let memory = AlignedAlloc::zeroed(nbytes.max(1), page_size())?;
    // SAFETY: the range is the allocation just made, which the block owns
    // and frees only after the lock (declared first) is dropped.
    let locked = unsafe { Locked::new(memory.as_ptr(), memory.len()) };
    let (held, refused) = match locked {
        Ok(l) => (Some(l), None),
        // The library's advice names a device's pinning switch, which a
        // Python caller does not have.
        Err(tensorswap_core::Error::Pin { cause, .. }) => (
            None,
            Some(format!(
                "{cause}: the memlock limit (RLIMIT_MEMLOCK) is too low for it; raise it (`ulimit -l`, or memlock in /etc/security/limits.conf or the container's settings)"
            )),
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    let block = Arc::new(Block {
        lock: Mutex::new(held),
        memory: Some(memory),
        scratch: false,
    });
    if manage {
        lock(managed()).insert(block.memory().as_ptr() as usize, Arc::clone(&block));
    }
    Ok((LockedBlock { block }, refused))
}

/// A bounce buffer of `nbytes` (at least one byte): not locked (the
/// engine needs no locked memory), not managed, and kept for reuse once
/// the last tensor over it is gone.
pub fn scratch(nbytes: usize) -> tensorswap_core::Result<LockedBlock> {
    let len = nbytes.max(1);
    let memory = match spare::take(len) {
        Some(memory) => memory,
        None => AlignedAlloc::zeroed(len, page_size())?,
    };
    Ok(LockedBlock {
        block: Arc::new(Block {
            lock: Mutex::new(None),
            memory: Some(memory),
            scratch: true,
        }),
    })
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
        .is_some_and(|end| end <= start + block.memory().len())
}
