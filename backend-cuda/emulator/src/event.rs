//! Events: a record on a stream completes when the stream reaches it; the
//! host or another stream waits for the latest record.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::result::Status;

/// An event (`CUevent`). Clones are the same event.
#[derive(Clone, Default)]
pub struct Event {
    shared: Arc<(Mutex<Records>, Condvar)>,
}

#[derive(Default)]
struct Records {
    /// Records made so far (a generation number).
    recorded: u64,
    /// The latest record its stream has reached.
    completed: u64,
}

impl Event {
    /// An event never recorded (waiting for it returns at once, as CUDA's).
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new record; its stream completes it with [`Event::complete`].
    pub(crate) fn record(&self) -> u64 {
        let mut records = self.lock();
        records.recorded += 1;
        records.recorded
    }

    /// The stream reached record `generation`.
    pub(crate) fn complete(&self, generation: u64) {
        let mut records = self.lock();
        records.completed = records.completed.max(generation);
        self.shared.1.notify_all();
    }

    /// The latest record, which a wait made now waits for.
    pub(crate) fn latest(&self) -> u64 {
        self.lock().recorded
    }

    /// Blocks until record `generation` is complete.
    pub(crate) fn wait_for(&self, generation: u64) {
        let mut records = self.lock();
        while records.completed < generation {
            records = self
                .shared
                .1
                .wait(records)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// `cuEventSynchronize`: blocks until the latest record is complete.
    pub fn synchronize(&self) {
        self.wait_for(self.latest());
    }

    /// `cuEventQuery`: success once the latest record is complete, else
    /// `CUDA_ERROR_NOT_READY`.
    pub fn query(&self) -> Status {
        let records = self.lock();
        if records.completed >= records.recorded {
            Status::SUCCESS
        } else {
            Status::NOT_READY
        }
    }
}
