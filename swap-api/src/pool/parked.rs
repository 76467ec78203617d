//! [`Parked`]: slabs a pool's user holds between its calls, so that a lease
//! that could only wait for them fails instead of waiting forever.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::PoolInner;

/// A value that holds one slab of a pool between its owner's calls: a
/// gradient swapper's half-filled slab, a write whose ticket is waited only
/// on the owner's next call, a read-ahead kept for the next step.
///
/// Such a slab comes back only when its owner is called again, so a lease
/// that finds every leased slab parked would wait forever (the owner may be
/// the very thread that waits). [`PinnedPool::wait_lease`] fails then with
/// [`Error::PoolStalled`](crate::Error::PoolStalled) instead, and
/// [`PinnedPool::lease`] keeps waiting.
///
/// The slab is unparked before it is released (when this drops, or by
/// [`Parked::into_inner`]), so waiters never see a parked count above the
/// leased one.
///
/// [`PinnedPool::wait_lease`]: super::PinnedPool::wait_lease
/// [`PinnedPool::lease`]: super::PinnedPool::lease
pub struct Parked<T> {
    // Declared first: dropped (unparked) before the value releases its slab.
    guard: Guard,
    value: T,
}

struct Guard {
    pool: Arc<PoolInner>,
}

impl<T> Parked<T> {
    pub(super) fn new(pool: Arc<PoolInner>, value: T) -> Self {
        pool.lock().parked += 1;
        // A waiter may now be waiting only on parked slabs.
        pool.returned.notify_all();
        Self {
            guard: Guard { pool },
            value,
        }
    }

    /// Unparks the slab and hands the value back.
    pub fn into_inner(self) -> T {
        let Self { guard, value } = self;
        drop(guard);
        value
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        state.parked = state.parked.saturating_sub(1);
    }
}

impl<T> Deref for Parked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Parked<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Parked<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Parked").field(&self.value).finish()
    }
}
