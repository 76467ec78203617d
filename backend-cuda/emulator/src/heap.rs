//! Device memory: host memory behind opaque device addresses, every access
//! checked against the live allocations.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::result::{refuse, Status};

/// Where device addresses start (far from any host pointer, so that a host
/// pointer passed as a device one is refused).
const BASE: u64 = 0x7e00_0000_0000;
/// Allocations are aligned as the driver's are.
const ALIGN: u64 = 256;
/// Room left between allocations, so that an access running off the end of
/// one never lands in the next.
const GUARD: u64 = 4096;

/// Which context an allocation belongs to (an opaque number).
pub type ContextId = u64;

struct Allocation {
    ctx: ContextId,
    bytes: Vec<u8>,
}

struct Inner {
    live: BTreeMap<u64, Allocation>,
    next: u64,
    used: usize,
}

/// The device memory of one emulated GPU.
pub struct Heap {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl Heap {
    /// A device of `capacity` bytes: allocations beyond it are
    /// `CUDA_ERROR_OUT_OF_MEMORY`.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                live: BTreeMap::new(),
                next: BASE,
                used: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `len` bytes for `ctx`, zeroed; the driver refuses zero.
    pub fn alloc(&self, ctx: ContextId, len: usize) -> Result<u64, Status> {
        if len == 0 {
            return Err(refuse(
                Status::INVALID_VALUE,
                format_args!("allocating 0 bytes"),
            ));
        }
        let mut inner = self.lock();
        if inner.used.saturating_add(len) > self.capacity {
            return Err(Status::OUT_OF_MEMORY);
        }
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(len)
            .map_err(|_| Status::OUT_OF_MEMORY)?;
        bytes.resize(len, 0);
        let addr = inner.next;
        inner.next = (addr + len as u64 + GUARD).next_multiple_of(ALIGN);
        inner.used += len;
        inner.live.insert(addr, Allocation { ctx, bytes });
        Ok(addr)
    }

    /// Frees the allocation that starts at `addr`.
    pub fn free(&self, ctx: ContextId, addr: u64) -> Result<(), Status> {
        let mut inner = self.lock();
        match inner.live.get(&addr) {
            Some(a) if a.ctx == ctx => {}
            Some(_) => {
                return Err(refuse(
                    Status::INVALID_VALUE,
                    format_args!("freeing {addr:#x}, which belongs to another context"),
                ))
            }
            None => {
                return Err(refuse(
                    Status::INVALID_VALUE,
                    format_args!("freeing {addr:#x}, which is not the start of a live allocation"),
                ))
            }
        }
        if let Some(a) = inner.live.remove(&addr) {
            inner.used -= a.bytes.len();
        }
        Ok(())
    }

    /// The start of the live allocation holding `addr`, if any.
    pub fn base_of(&self, addr: u64) -> Option<u64> {
        let inner = self.lock();
        let (&base, allocation) = inner.live.range(..=addr).next_back()?;
        (addr - base < allocation.bytes.len() as u64).then_some(base)
    }

    /// Bytes allocated now.
    pub fn used(&self) -> usize {
        self.lock().used
    }

    /// The device's size.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Runs `f` on the `len` bytes at `addr`, refused unless they lie inside
    /// one live allocation of `ctx`.
    pub fn with_bytes<R>(
        &self,
        ctx: ContextId,
        addr: u64,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Status> {
        let mut inner = self.lock();
        let found = inner.live.range_mut(..=addr).next_back();
        let Some((&base, allocation)) = found else {
            return Err(refuse(
                Status::INVALID_VALUE,
                format_args!("{len} bytes at {addr:#x}: no allocation there"),
            ));
        };
        let offset = (addr - base) as usize;
        if offset
            .checked_add(len)
            .is_none_or(|end| end > allocation.bytes.len())
        {
            return Err(refuse(
                Status::INVALID_VALUE,
                format_args!(
                    "{len} bytes at {addr:#x}: past the end of the {}-byte allocation at {base:#x} (freed, or out of bounds)",
                    allocation.bytes.len()
                ),
            ));
        }
        if allocation.ctx != ctx {
            return Err(refuse(
                Status::INVALID_VALUE,
                format_args!("{len} bytes at {addr:#x}: memory of another context"),
            ));
        }
        Ok(f(&mut allocation.bytes[offset..offset + len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_inside_an_allocation_work_and_see_each_other() {
        let heap = Heap::new(1 << 20);
        let a = heap.alloc(1, 1000).unwrap();
        heap.with_bytes(1, a + 10, 4, |b| b.copy_from_slice(&[1, 2, 3, 4]))
            .unwrap();
        let got = heap.with_bytes(1, a + 8, 8, |b| b.to_vec()).unwrap();
        assert_eq!(got, [0, 0, 1, 2, 3, 4, 0, 0]);
        assert_eq!(a % ALIGN, 0);
        assert_eq!(heap.used(), 1000);
    }

    #[test]
    fn every_wrong_access_is_refused() {
        let heap = Heap::new(1 << 20);
        let a = heap.alloc(1, 1000).unwrap();
        let b = heap.alloc(1, 100).unwrap();
        assert!(b > a + 1000, "allocations have a gap between them");
        let refused =
            |ctx, addr, len| heap.with_bytes(ctx, addr, len, |_| ()) == Err(Status::INVALID_VALUE);
        assert!(refused(1, a + 999, 2), "running off the end");
        assert!(refused(1, a + 1000, 1), "one past the end");
        assert!(refused(1, BASE - 1, 1), "before any allocation");
        assert!(refused(1, 0x1000, 8), "a host-like pointer");
        assert!(refused(2, a, 8), "another context's memory");
        assert!(refused(1, a, usize::MAX), "a length that overflows");
        heap.free(1, a).unwrap();
        assert!(refused(1, a, 1), "freed memory");
        assert_eq!(heap.free(1, a), Err(Status::INVALID_VALUE), "a double free");
        assert_eq!(
            heap.free(1, b + 8),
            Err(Status::INVALID_VALUE),
            "not the start"
        );
        assert_eq!(
            heap.free(2, b),
            Err(Status::INVALID_VALUE),
            "another context's"
        );
        assert_eq!(heap.alloc(1, 0), Err(Status::INVALID_VALUE));
    }

    #[test]
    fn the_capacity_is_enforced_and_freed_memory_counts_again() {
        let heap = Heap::new(4096);
        let a = heap.alloc(1, 3000).unwrap();
        assert_eq!(heap.alloc(1, 2000), Err(Status::OUT_OF_MEMORY));
        heap.free(1, a).unwrap();
        heap.alloc(1, 4096).unwrap();
        assert_eq!(heap.used(), 4096);
    }
}
