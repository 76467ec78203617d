//! The state a [`Swapper`](crate::Swapper) and its worker thread share: the
//! device, the store, the table of tensors and the condition variable its
//! changes are announced on.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tensorswap_core::{Device, IoEngine};

use crate::error::{SwapError, SwapOp};
use crate::meta::TensorId;
use crate::path::DataPath;
use crate::store::SwapStore;
use crate::table::{Home, Slot, Table};

/// What the API and the worker share.
pub(crate) struct Shared<D: Device, E: IoEngine> {
    pub(crate) device: D,
    pub(crate) store: SwapStore<E>,
    pub(crate) path: DataPath,
    table: Mutex<Table<D>>,
    pub(crate) changed: Condvar,
    pub(crate) closing: AtomicBool,
}

impl<D: Device, E: IoEngine> Shared<D, E> {
    pub(crate) fn new(device: D, store: SwapStore<E>, path: DataPath) -> Self {
        Shared {
            device,
            store,
            path,
            table: Mutex::new(Table {
                tensors: HashMap::new(),
                host_used: 0,
                max_in_cpu: 0,
            }),
            changed: Condvar::new(),
            closing: AtomicBool::new(false),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Table<D>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn wait<'a>(&self, guard: MutexGuard<'a, Table<D>>) -> MutexGuard<'a, Table<D>> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// Records a finished job's outcome for `id`. A home the tensor keeps no
    /// copy in (`keep_home` false: its swap-out failed and it stays resident)
    /// is freed, so that a retry chooses afresh: the failed attempt's extent
    /// may sit where the disk ran out of space.
    pub(crate) fn settle(
        &self,
        id: TensorId,
        slot: Slot<D>,
        (home, keep_home): (Home, bool),
        op: SwapOp,
        failure: Option<Arc<SwapError>>,
    ) {
        let mut table = self.lock();
        let released = match table.tensors.get_mut(&id) {
            Some(entry) => {
                entry.slot = slot;
                entry.last_error = failure.map(|error| (op, error));
                if keep_home {
                    entry.home = home;
                    None
                } else {
                    entry.home = Home::Unassigned;
                    Some((home, entry.logical))
                }
            }
            None => None,
        };
        if let Some((home, logical)) = released {
            self.free_home(&mut table, home, logical);
        }
        drop(table);
        self.changed.notify_all();
    }

    /// Gives a home's extent back to the store, or its bytes back to the
    /// host tier's budget.
    pub(crate) fn free_home(&self, table: &mut Table<D>, home: Home, logical: usize) {
        match home {
            Home::File(extent) => self.store.free(extent),
            Home::Host(_) => table.host_used -= logical,
            Home::Unassigned => {}
        }
    }

    /// Blocks while `swap_into` calls read any of `ids` from home.
    pub(crate) fn wait_for_readers(&self, ids: impl Iterator<Item = TensorId> + Clone) {
        let mut table = self.lock();
        while ids
            .clone()
            .any(|id| table.tensors.get(&id).is_some_and(|e| e.readers > 0))
        {
            table = self.wait(table);
        }
    }

    /// Adds (`+1`) or removes (`-1`) a `swap_into` reader of `id`.
    pub(crate) fn readers(&self, id: TensorId, delta: isize) {
        let mut table = self.lock();
        if let Some(entry) = table.tensors.get_mut(&id) {
            entry.readers = entry.readers.saturating_add_signed(delta);
        }
        drop(table);
        self.changed.notify_all();
    }
}
