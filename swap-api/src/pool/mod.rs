//! [`PinnedPool`]: one aligned, page-locked arena leased in fixed-size slabs.

mod arena;
mod parked;
mod part;
mod slab;

use std::ptr::NonNull;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

pub use parked::Parked;
pub use part::SlabPart;
pub use slab::Slab;

use crate::storage::{IoEngine, Region};
use crate::sys::aligned::AlignedAlloc;
use crate::sys::memlock::{Locked, MemlockLimit};
use crate::sys::page_size;
use crate::{Device, Error, Pinning, Result};
use arena::Arena;

/// Pinned host memory allocated once and leased in fixed-size [`Slab`]s.
///
/// - The arena is aligned to at least the page size (pass a swap folder's
///   [`alignment`](crate::SwapDir::alignment) so slabs serve `O_DIRECT`).
/// - It is locked once — by the pool, or by a device's registration
///   ([`PinnedPoolBuilder::build_for`]) — and can be registered with an I/O
///   engine ([`PinnedPool::register_with`]).
/// - [`PinnedPool::lease`] blocks until a slab is free (back-pressure);
///   [`PinnedPool::try_lease`] returns [`Error::PoolExhausted`] instead;
///   [`PinnedPool::wait_lease`] blocks too, but fails with
///   [`Error::PoolStalled`] when every leased slab is [`Parked`] (held
///   between its user's calls), where waiting could never end. Slabs return
///   on drop.
///
/// ```
/// use tensorswap_core::PinnedPool;
/// let pool = PinnedPool::builder().slab_size(1 << 20).slabs(2).build()?;
/// let a = pool.lease();
/// let _b = pool.try_lease()?;
/// assert!(pool.try_lease().is_err()); // exhausted
/// drop(a);
/// assert_eq!(pool.stats().free, 1);
/// assert_eq!(pool.stats().peak, 2);
/// # Ok::<(), tensorswap_core::Error>(())
/// ```
#[derive(Clone)]
pub struct PinnedPool {
    inner: Arc<PoolInner>,
}

pub(crate) struct PoolInner {
    arena: Arc<Arena>,
    slab_size: usize,
    slabs: usize,
    pinned: bool,
    state: Mutex<State>,
    returned: Condvar,
}

struct State {
    free: Vec<usize>,
    peak: usize,
    /// Leased slabs held between their users' calls ([`Parked`]).
    parked: usize,
}

/// A snapshot of a pool's use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Slabs in the pool.
    pub slabs: usize,
    /// Bytes per slab.
    pub slab_size: usize,
    /// Slabs leased now.
    pub leased: usize,
    /// Slabs free now.
    pub free: usize,
    /// Most slabs ever leased at once.
    pub peak: usize,
}

/// Settings of a [`PinnedPool`].
#[derive(Debug, Clone)]
pub struct PinnedPoolBuilder {
    slab_size: usize,
    slabs: usize,
    alignment: usize,
    pinning: Pinning,
}

impl Default for PinnedPoolBuilder {
    fn default() -> Self {
        Self {
            slab_size: 1 << 20,
            slabs: 4,
            alignment: page_size(),
            pinning: Pinning::Auto,
        }
    }
}

impl PinnedPoolBuilder {
    /// Bytes per slab (default 1 MiB), rounded up to the alignment.
    pub fn slab_size(mut self, bytes: usize) -> Self {
        self.slab_size = bytes;
        self
    }

    /// Number of slabs (default 4).
    pub fn slabs(mut self, count: usize) -> Self {
        self.slabs = count;
        self
    }

    /// Alignment of the arena and of every slab (a power of two, at least the page size).
    pub fn alignment(mut self, align: usize) -> Self {
        self.alignment = align;
        self
    }

    /// Page-locking policy (default [`Pinning::Auto`]).
    pub fn pinning(mut self, pinning: Pinning) -> Self {
        self.pinning = pinning;
        self
    }

    /// Allocates the arena and locks it (`mlock`) as the policy says.
    pub fn build(self) -> Result<PinnedPool> {
        self.pin(
            |arena| {
                // SAFETY: the guard is stored in the arena and dropped before the memory.
                let guard = unsafe { Locked::new(arena.base().as_ptr(), arena.len())? };
                Ok((Box::new(guard), true))
            },
            |_| {
                Err(Error::Unsupported {
                    component: "pool",
                    what: "page-locked memory other than mlock".into(),
                })
            },
        )
    }

    /// Allocates the arena and registers it with `device` (which pins it
    /// the way the backend does: `mlock`, `cuMemHostRegister`, ...), so slabs
    /// transfer at full speed. Where the device refuses, the arena is
    /// allocated by the device instead ([`Device::allocate_pinned`]), where
    /// it can.
    pub fn build_for<D: Device>(self, device: &D) -> Result<PinnedPool> {
        let locked = device.capabilities().pinned_host;
        self.pin(
            |arena| {
                // SAFETY: the registration is stored in the arena, which drops it
                // before freeing the memory, so the range outlives it.
                let registration = unsafe { device.register_host(arena.base(), arena.len())? };
                Ok((Box::new(registration), locked))
            },
            |bytes| Ok((Arena::pinned(device.allocate_pinned(bytes)?), locked)),
        )
    }

    /// Allocates the arena and, where the budget and policy allow, pins it
    /// with `register` (which returns the registration and whether the
    /// memory is now page-locked); when that is refused, `replace` may
    /// allocate a page-locked arena of the same size instead. Under
    /// `Pinning::Auto` a refusal of both leaves the pool unlocked with a
    /// warning.
    fn pin(
        self,
        register: impl FnOnce(&Arena) -> Result<(Box<dyn std::any::Any + Send + Sync>, bool)>,
        replace: impl FnOnce(usize) -> Result<(Arena, bool)>,
    ) -> Result<PinnedPool> {
        let (mut arena, bytes) = self.allocate()?;
        let mut pinned = false;
        if self.lock_allowed(bytes)? {
            match register(&arena) {
                Ok((registration, locked)) => {
                    arena.set_registration(registration);
                    pinned = locked;
                }
                Err(err) => match replace(bytes).and_then(|r| self.aligned(r)) {
                    Ok((replacement, locked)) => {
                        tracing::warn!(%err, "the pool's memory could not be registered; using page-locked memory the device allocated");
                        arena = replacement;
                        pinned = locked;
                    }
                    Err(_) if self.pinning == Pinning::Auto => {
                        tracing::warn!(%err, "pinned pool runs unlocked");
                    }
                    Err(_) => return Err(err),
                },
            }
        }
        Ok(self.finish(arena, pinned))
    }

    /// Refuses a replacement arena that is not aligned as the pool must be.
    fn aligned(&self, (arena, locked): (Arena, bool)) -> Result<(Arena, bool)> {
        let align = self.alignment.max(page_size());
        if arena.base().as_ptr() as usize % align == 0 {
            Ok((arena, locked))
        } else {
            Err(Error::HostAlloc {
                len: arena.len(),
                align,
            })
        }
    }

    fn allocate(&self) -> Result<(Arena, usize)> {
        if self.slabs == 0 || self.slab_size == 0 {
            return Err(Error::Config {
                reason: format!(
                    "a pinned pool needs at least one slab of at least one byte (asked: {} slabs of {} bytes)",
                    self.slabs, self.slab_size
                ),
            });
        }
        if !self.alignment.is_power_of_two() {
            return Err(Error::Config {
                reason: format!("pool alignment {} is not a power of two", self.alignment),
            });
        }
        let align = self.alignment.max(page_size());
        let bytes = self
            .slab_size
            .checked_next_multiple_of(align)
            .and_then(|slab| slab.checked_mul(self.slabs))
            .ok_or(Error::HostAlloc {
                len: usize::MAX,
                align,
            })?;
        Ok((Arena::new(AlignedAlloc::zeroed(bytes, align)?), bytes))
    }

    /// Whether to lock, after checking the budget against RLIMIT_MEMLOCK.
    fn lock_allowed(&self, bytes: usize) -> Result<bool> {
        if self.pinning == Pinning::Off {
            return Ok(false);
        }
        let limit = MemlockLimit::current();
        if limit.allows(bytes as u64) {
            return Ok(true);
        }
        let error = Error::MemlockBudget {
            requested: bytes as u64,
            limit: limit.lockable().unwrap_or(0),
        };
        if self.pinning == Pinning::Required {
            return Err(error);
        }
        tracing::warn!(%error, "pinned pool runs unlocked");
        Ok(false)
    }

    fn finish(&self, arena: Arena, pinned: bool) -> PinnedPool {
        let slab_size = arena.len() / self.slabs;
        PinnedPool {
            inner: Arc::new(PoolInner {
                arena: Arc::new(arena),
                slab_size,
                slabs: self.slabs,
                pinned,
                state: Mutex::new(State {
                    free: (0..self.slabs).rev().collect(),
                    peak: 0,
                    parked: 0,
                }),
                returned: Condvar::new(),
            }),
        }
    }
}

impl PinnedPool {
    /// Starts building a pool.
    pub fn builder() -> PinnedPoolBuilder {
        PinnedPoolBuilder::default()
    }

    /// Leases a slab, blocking until one is free.
    pub fn lease(&self) -> Slab {
        let mut state = self.inner.lock();
        loop {
            if let Some(index) = self.inner.take(&mut state) {
                return Slab::new(self.inner.clone(), index);
            }
            state = self
                .inner
                .returned
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Leases a slab, blocking while one will come back, or fails with
    /// [`Error::PoolStalled`] when every leased slab is [`Parked`]: held by
    /// its users between their calls, so waiting could never end (say, a
    /// `GradientSwapper`'s open slab in
    /// the one-slab pool a `Swapper` shares).
    ///
    /// ```
    /// use tensorswap_core::{Error, PinnedPool};
    /// let pool = PinnedPool::builder().slab_size(4096).slabs(1).build()?;
    /// let held = pool.park(pool.lease());
    /// assert!(matches!(pool.wait_lease(), Err(Error::PoolStalled { slabs: 1, parked: 1 })));
    /// drop(held);
    /// assert!(pool.wait_lease().is_ok());
    /// # Ok::<(), tensorswap_core::Error>(())
    /// ```
    pub fn wait_lease(&self) -> Result<Slab> {
        self.lease_or_stall().map_err(Error::from)
    }

    /// [`wait_lease`](Self::wait_lease), its failure as a `Copy` value
    /// (for a caller that refuses many requests with it).
    pub fn lease_or_stall(&self) -> std::result::Result<Slab, Stalled> {
        let mut state = self.inner.lock();
        loop {
            if let Some(index) = self.inner.take(&mut state) {
                return Ok(Slab::new(self.inner.clone(), index));
            }
            let leased = self.inner.slabs - state.free.len();
            if leased <= state.parked {
                return Err(Stalled {
                    slabs: self.inner.slabs,
                    parked: state.parked,
                });
            }
            state = self
                .inner
                .returned
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Marks `value` (which holds one leased slab of this pool) as held
    /// between its owner's calls; see [`Parked`].
    pub fn park<T>(&self, value: T) -> Parked<T> {
        Parked::new(self.inner.clone(), value)
    }

    /// Leases a slab, or fails with [`Error::PoolExhausted`] when none is free.
    pub fn try_lease(&self) -> Result<Slab> {
        let mut state = self.inner.lock();
        match self.inner.take(&mut state) {
            Some(index) => Ok(Slab::new(self.inner.clone(), index)),
            None => Err(Error::PoolExhausted {
                slabs: self.inner.slabs,
                slab_size: self.inner.slab_size,
            }),
        }
    }

    /// Current use of the pool.
    pub fn stats(&self) -> PoolStats {
        let state = self.inner.lock();
        PoolStats {
            slabs: self.inner.slabs,
            slab_size: self.inner.slab_size,
            leased: self.inner.slabs - state.free.len(),
            free: state.free.len(),
            peak: state.peak,
        }
    }

    /// Bytes per slab.
    pub fn slab_size(&self) -> usize {
        self.inner.slab_size
    }

    /// True when the arena is page-locked.
    pub fn is_pinned(&self) -> bool {
        self.inner.pinned
    }

    /// Offers the arena to `engine` for registration (io_uring fixed
    /// buffers). Returns whether the engine registered it; requests on slabs
    /// work either way.
    pub fn register_with<E: IoEngine>(&self, engine: &E) -> bool {
        let arena = &self.inner.arena;
        engine.register_region(Region {
            ptr: NonNull::new(arena.base().as_ptr()).unwrap_or(NonNull::dangling()),
            len: arena.len(),
            keep_alive: arena.clone(),
        })
    }
}

/// A lease that would wait only for parked slabs
/// ([`PinnedPool::lease_or_stall`]); it converts into
/// [`Error::PoolStalled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stalled {
    /// The pool's slabs.
    pub slabs: usize,
    /// How many of them are parked.
    pub parked: usize,
}

impl From<Stalled> for Error {
    fn from(Stalled { slabs, parked }: Stalled) -> Self {
        Error::PoolStalled { slabs, parked }
    }
}

impl PoolInner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, state: &mut State) -> Option<usize> {
        let index = state.free.pop()?;
        state.peak = state.peak.max(self.slabs - state.free.len());
        Some(index)
    }

    fn give_back(&self, index: usize) {
        self.lock().free.push(index);
        // Every waiter: one takes the slab, the others re-check for a stall.
        self.returned.notify_all();
    }
}

impl std::fmt::Debug for PinnedPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedPool")
            .field("stats", &self.stats())
            .field("pinned", &self.inner.pinned)
            .finish()
    }
}
