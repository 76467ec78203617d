//! [`Signal`]: a result handed from the committer thread to a ticket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// A result set once by one thread and taken once by another.
pub(crate) struct Signal<T> {
    slot: Mutex<Option<T>>,
    set: Condvar,
    done: AtomicBool,
}

impl<T> Signal<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            slot: Mutex::new(None),
            set: Condvar::new(),
            done: AtomicBool::new(false),
        })
    }

    /// Hands `value` over and wakes the waiter.
    pub(crate) fn set(&self, value: T) {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
        self.done.store(true, Ordering::Release);
        self.set.notify_all();
    }

    pub(crate) fn is_set(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Blocks until the value is set, and takes it.
    pub(crate) fn take(&self) -> T {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(value) = slot.take() {
                return value;
            }
            slot = self.set.wait(slot).unwrap_or_else(PoisonError::into_inner);
        }
    }
}
