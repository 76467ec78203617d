//! [`Swapper`]: tensors in device memory, swapped to a store and back.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{Result, SwapError};
use crate::into;
use crate::meta::{TensorId, TensorMeta};
use crate::path::DataPath;
use crate::shared::Shared;
use crate::state::TensorState;
use crate::status::TensorStatus;
use crate::store::SwapStore;
use crate::table::{Entry, Home, Slot, Table};
use crate::ticket::SwapTicket;
use crate::worker::{self, Item, Job, Place, Way};
use tensorswap_core::sync::WorkerThread;
use tensorswap_core::{AnyEngine, Device, DeviceBuffer, Error, HostBufMut, IoEngine, Rejected};

/// Tensors that live in device memory and are swapped out to a
/// [`SwapStore`] (or to pinned host memory, up to `max_in_cpu` bytes) and
/// back, with the states and checks of [`TensorState`].
///
/// - Swaps run on the swapper's worker thread; `swap_out`/`swap_in` return
///   at once with a [`SwapTicket`], `prefetch` with nothing (its failures
///   show in `get` and `status`).
/// - Device -> slab -> file (and back) is pipelined: while one slab is being
///   written, the next is being downloaded, so a stream of tensors moves at
///   the rate of the slowest link. Tensors larger than a slab stream through
///   several slabs; small tensors share a slab and the one store file.
/// - A failed swap leaves the tensor readable where it was, with the error
///   (tensor, file, offset, errno) on the ticket and in `status`.
/// - Dropping the swapper finishes the job in progress, cancels queued ones,
///   and frees everything: device memory, slabs, the file.
///
/// ```
/// use tensorswap_swapper::{SwapStore, Swapper, TensorMeta, TensorState};
/// use tensorswap_core::DeviceExt;
/// let dev = tensorswap_cpu::CpuDevice::new()?;
/// let store = SwapStore::builder().slab_size(1 << 20).build_for(&dev)?;
/// let swapper = Swapper::new(dev, store)?;
/// let buf = swapper.device().alloc(4096)?;
/// swapper.register(7, TensorMeta::bytes_of(4096), buf)?;
/// swapper.swap_out(&[7])?.wait()?;
/// assert_eq!(swapper.status(7)?.state, TensorState::Stored);
/// swapper.prefetch(&[7])?;
/// let tensor = swapper.get(7)?; // waits for the swap-in
/// assert_eq!(tensor.len(), 4096);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Swapper<D: Device, E: IoEngine = AnyEngine> {
    pub(super) shared: Arc<Shared<D, E>>,
    /// Runs the jobs; dropping it finishes (or cancels) the queued ones and
    /// joins the thread.
    worker: WorkerThread<Job<D>>,
}

/// A resident tensor, from [`Swapper::get`]: its device memory, shared.
///
/// While a handle is alive the tensor cannot be swapped out (that is an
/// [`SwapError::InvalidState`]); `release` and `remove` may still drop the
/// swapper's reference, and the memory lives until the last handle drops.
pub struct TensorHandle<D: Device> {
    id: TensorId,
    meta: TensorMeta,
    buf: Arc<DeviceBuffer<D>>,
}

impl<D: Device> TensorHandle<D> {
    /// The tensor's id.
    pub fn id(&self) -> TensorId {
        self.id
    }

    /// Its element type and shape.
    pub fn meta(&self) -> &TensorMeta {
        &self.meta
    }

    /// The shared device memory, e.g. for
    /// [`DeviceExt::download_shared`](tensorswap_core::DeviceExt::download_shared).
    pub fn buffer(&self) -> &Arc<DeviceBuffer<D>> {
        &self.buf
    }
}

impl<D: Device> Deref for TensorHandle<D> {
    type Target = DeviceBuffer<D>;
    fn deref(&self) -> &DeviceBuffer<D> {
        &self.buf
    }
}

impl<D: Device> fmt::Debug for TensorHandle<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorHandle")
            .field("id", &self.id)
            .field("meta", &self.meta)
            .finish()
    }
}

impl<D: Device, E: IoEngine + 'static> Swapper<D, E> {
    /// A swapper of `device`'s memory into `store` through its pinned
    /// slabs, with no host tier.
    pub fn new(device: D, store: SwapStore<E>) -> Result<Self> {
        Self::start(device, store, false)
    }

    /// A swapper that moves tensors between device memory and the store's
    /// file directly (GPUDirect Storage, DeepSpeed's `use_gds`) where the
    /// device can, and through the pinned slabs otherwise, saying why
    /// ([`Swapper::data_path`]).
    pub fn with_direct_storage(device: D, store: SwapStore<E>) -> Result<Self> {
        Self::start(device, store, true)
    }

    fn start(device: D, store: SwapStore<E>, direct: bool) -> Result<Self> {
        let path = DataPath::choose(&device, &store, direct);
        let shared = Arc::new(Shared::new(device, store, path));
        let for_worker = Arc::clone(&shared);
        let worker = WorkerThread::spawn("tensorswap-swapper".into(), move |jobs| {
            worker::run(&for_worker, jobs)
        })
        .map_err(|cause| Error::ThreadStart {
            component: "swapper",
            cause,
        })?;
        Ok(Self { shared, worker })
    }
}

impl<D: Device, E: IoEngine> Swapper<D, E> {
    /// Keeps up to `bytes` of swapped-out tensors in pinned host memory
    /// instead of the file (DeepSpeed's `max_in_cpu`, here in bytes). A
    /// tensor's home is chosen at its first swap-out and kept.
    pub fn with_max_in_cpu(self, bytes: usize) -> Self {
        self.shared.lock().max_in_cpu = bytes;
        self
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.shared.device
    }

    /// The store.
    pub fn store(&self) -> &SwapStore<E> {
        &self.shared.store
    }

    /// How tensors move between device memory and the store's file:
    /// through pinned slabs, or directly when the swapper was made
    /// [`with_direct_storage`](Self::with_direct_storage) and the device can
    /// ([`DataPath`]).
    pub fn data_path(&self) -> &DataPath {
        &self.shared.path
    }

    /// Adds a resident tensor: `buf` holds its `meta.bytes()` bytes (it may be
    /// longer). Refused, with the buffer handed back, for an id already in
    /// use, a buffer too short or of another device.
    pub fn register(
        &self,
        id: TensorId,
        meta: TensorMeta,
        buf: DeviceBuffer<D>,
    ) -> Result<(), Rejected<DeviceBuffer<D>, SwapError>> {
        let checked = (|| -> tensorswap_core::Result<_> {
            let logical = meta.bytes()?;
            if buf.len() < logical {
                return Err(Error::Layout {
                    reason: format!(
                        "tensor {id} ({} {:?}) needs {logical} bytes, its device buffer has {}",
                        meta.dtype,
                        meta.shape,
                        buf.len()
                    ),
                });
            }
            if !self.shared.device.owns(buf.memory()) {
                return Err(Error::ForeignMemory {
                    memory: buf.backend(),
                    device: self.shared.device.info().backend,
                });
            }
            Ok((logical, self.shared.store.padded(logical)?))
        })();
        let (logical, padded) = match checked {
            Ok(sizes) => sizes,
            Err(error) => {
                return Err(Rejected {
                    error: error.into(),
                    value: buf,
                })
            }
        };
        let mut table = self.shared.lock();
        if let Some(entry) = table.tensors.get(&id) {
            let error = entry.refuse(id, "register", "; ids must be unique");
            return Err(Rejected { error, value: buf });
        }
        let entry = Entry {
            meta,
            logical,
            padded,
            slot: Slot::resident(buf, false),
            home: Home::Unassigned,
            readers: 0,
            last_error: None,
        };
        table.tensors.insert(id, entry);
        Ok(())
    }

    /// Starts writing resident tensors out; each becomes `Stored` (or `Host`)
    /// when its write succeeds, and its device memory is freed then.
    ///
    /// Nothing starts unless every tensor is resident, listed once, and has
    /// no [`TensorHandle`] alive.
    pub fn swap_out(&self, ids: &[TensorId]) -> Result<SwapTicket> {
        let mut table = self.shared.lock();
        table.check_all("swap_out", ids, |id, entry| match &entry.slot {
            Slot::Resident { buf, .. } if Arc::strong_count(buf) > 1 => Err(entry.refuse(
                id,
                "swap_out",
                "; a handle from get() is still alive: drop it first",
            )),
            Slot::Resident { .. } => Ok(()),
            _ => Err(entry.refuse(id, "swap_out", "")),
        })?;
        // Homes first (the only step that can fail), so that either every
        // tensor starts swapping out or none does.
        let places = ids
            .iter()
            .map(|&id| self.assign_home(&mut table, id))
            .collect::<Result<Vec<Place>>>()?;
        let mut items = Vec::with_capacity(ids.len());
        for (&id, place) in ids.iter().zip(places) {
            let entry = table.entry_mut(id)?;
            let buf = match std::mem::replace(&mut entry.slot, Slot::SwappingOut) {
                Slot::Resident { buf, clean } => match Arc::try_unwrap(buf) {
                    Ok(buf) => buf,
                    Err(buf) => {
                        entry.slot = Slot::Resident { buf, clean };
                        continue;
                    }
                },
                other => {
                    entry.slot = other;
                    continue;
                }
            };
            items.push(Item {
                id,
                logical: entry.logical,
                padded: entry.padded,
                buf: Some(buf),
                place: Some(place),
            });
        }
        drop(table);
        Ok(self
            .submit(Way::Out, items, true)
            .unwrap_or_else(|| SwapTicket::new(0)))
    }

    /// Where a tensor's stored copy goes: its home, chosen now if it has none.
    fn assign_home(&self, table: &mut Table<D>, id: TensorId) -> Result<Place> {
        let fits_host = {
            let entry = table.entry(id)?;
            matches!(entry.home, Home::Unassigned)
                && table.max_in_cpu > 0
                && table.host_used.saturating_add(entry.logical) <= table.max_in_cpu
        };
        let logical = table.entry(id)?.logical;
        if fits_host {
            table.host_used += logical;
            table.entry_mut(id)?.home = Home::Host(None);
        }
        let entry = table.entry_mut(id)?;
        match &mut entry.home {
            Home::Unassigned => {
                let extent = self.shared.store.alloc(entry.padded)?;
                entry.home = Home::File(extent);
                Ok(Place::File(extent))
            }
            Home::File(extent) => Ok(Place::File(*extent)),
            Home::Host(host) => Ok(Place::Host(host.take())),
        }
    }

    /// Starts reading stored tensors back into new device memory, in order;
    /// each becomes `Resident` as soon as it is in.
    pub fn swap_in(&self, ids: &[TensorId]) -> Result<SwapTicket> {
        self.start_in(ids, true)
            .map(|ticket| ticket.unwrap_or_else(|| SwapTicket::new(0)))
    }

    /// Like [`swap_in`](Self::swap_in), as a hint: tensors already resident or
    /// swapping in are skipped, and failures show in `get` and `status`.
    pub fn prefetch(&self, ids: &[TensorId]) -> Result<()> {
        self.start_in(ids, false).map(drop)
    }

    fn start_in(&self, ids: &[TensorId], strict: bool) -> Result<Option<SwapTicket>> {
        let mut table = self.shared.lock();
        table.check_all("swap_in", ids, |id, entry| match (&entry.slot, strict) {
            (Slot::Stored, _) => Ok(()),
            (Slot::Resident { .. } | Slot::SwappingIn, false) => Ok(()),
            _ => Err(entry.refuse(id, "swap_in", "")),
        })?;
        let mut items = Vec::with_capacity(ids.len());
        for &id in ids {
            let entry = table.entry_mut(id)?;
            if !matches!(entry.slot, Slot::Stored) {
                continue;
            }
            let place = match &mut entry.home {
                Home::File(extent) => Place::File(*extent),
                Home::Host(host) => Place::Host(host.take()),
                Home::Unassigned => continue,
            };
            entry.slot = Slot::SwappingIn;
            items.push(Item {
                id,
                logical: entry.logical,
                padded: entry.padded,
                buf: None,
                place: Some(place),
            });
        }
        drop(table);
        Ok(self.submit(Way::In, items, strict))
    }

    fn submit(&self, way: Way, items: Vec<Item<D>>, with_ticket: bool) -> Option<SwapTicket> {
        let ticket = with_ticket.then(|| SwapTicket::new(items.len()));
        let job = Job {
            way,
            items,
            ticket: ticket.clone(),
        };
        if let Err(job) = self.worker.send(job) {
            worker::cancel(&self.shared, job);
        }
        ticket
    }

    /// The resident tensor `id`, waiting while it is being swapped in.
    ///
    /// A stored tensor is an [`SwapError::InvalidState`] (swap it in or prefetch
    /// it first); one whose swap-in failed is that failure ([`SwapError::Tensor`]).
    pub fn get(&self, id: TensorId) -> Result<TensorHandle<D>> {
        let mut table = self.shared.lock();
        loop {
            let entry = table.entry(id)?;
            match &entry.slot {
                Slot::SwappingIn => table = self.shared.wait(table),
                Slot::Resident { buf, .. } => {
                    return Ok(TensorHandle {
                        id,
                        meta: entry.meta.clone(),
                        buf: Arc::clone(buf),
                    })
                }
                _ => {
                    return Err(entry.failure(id).unwrap_or_else(|| {
                        entry.refuse(id, "get", "; swap_in or prefetch it first")
                    }))
                }
            }
        }
    }

    /// Copies the tensor's current bytes into `buf` (exactly its logical
    /// length) from wherever they are: device memory for a resident tensor,
    /// the file or host memory for a stored one (read straight into `buf`,
    /// leaving the tensor stored). A tensor being swapped is an
    /// [`SwapError::InvalidState`]. The buffer comes back either way.
    pub fn swap_into<H: HostBufMut>(
        &self,
        id: TensorId,
        buf: H,
    ) -> Result<H, Rejected<H, SwapError>> {
        into::swap_into(&self.shared, id, buf)
    }

    /// Drops the device copy of resident tensors whose stored copy is still
    /// current (swapped in and not swapped out since), without writing: they
    /// go back to `Stored`/`Host`. Changes made to the device memory since
    /// the swap-in are discarded; use `swap_out` to keep them.
    pub fn release(&self, ids: &[TensorId]) -> Result<()> {
        let mut table = self.shared.lock();
        table.check_all("release", ids, |id, entry| match &entry.slot {
            Slot::Resident { clean: true, .. } => Ok(()),
            Slot::Resident { .. } => Err(entry.refuse(
                id,
                "release",
                "; its stored copy is not current (never swapped out, or a swap-out failed): swap_out writes it",
            )),
            _ => Err(entry.refuse(id, "release", "")),
        })?;
        for &id in ids {
            table.entry_mut(id)?.slot = Slot::Stored;
        }
        self.shared.changed.notify_all();
        Ok(())
    }

    /// Hands over the device copy of a resident tensor whose stored copy is
    /// still current (waiting while it is being swapped in), and leaves the
    /// tensor `Stored`, as [`release`](Self::release) does: the caller owns
    /// the memory from then on, and a later swap-in reads the stored copy
    /// again. This is how a framework takes a swapped-in tensor as its own
    /// allocation, with no copy.
    ///
    /// Refused while a [`TensorHandle`] of it is alive, and for a tensor whose
    /// device copy is newer than its stored one.
    pub fn take(&self, id: TensorId) -> Result<DeviceBuffer<D>> {
        let mut table = self.shared.lock();
        loop {
            let entry = table.entry(id)?;
            match &entry.slot {
                Slot::SwappingIn => table = self.shared.wait(table),
                Slot::Resident { buf, clean: true } if Arc::strong_count(buf) == 1 => break,
                Slot::Resident { clean: true, .. } => {
                    return Err(entry.refuse(id, "take", "; a handle from get() is still alive: drop it first"))
                }
                Slot::Resident { .. } => {
                    return Err(entry.refuse(
                        id,
                        "take",
                        "; its stored copy is not current (never swapped out, or a swap-out failed): swap_out writes it",
                    ))
                }
                _ => {
                    return Err(entry.failure(id).unwrap_or_else(|| {
                        entry.refuse(id, "take", "; swap_in or prefetch it first")
                    }))
                }
            }
        }
        let entry = table.entry_mut(id)?;
        match std::mem::replace(&mut entry.slot, Slot::Stored) {
            Slot::Resident { buf, clean } => match Arc::try_unwrap(buf) {
                Ok(buf) => {
                    self.shared.changed.notify_all();
                    Ok(buf)
                }
                Err(buf) => {
                    entry.slot = Slot::Resident { buf, clean };
                    Err(entry.refuse(id, "take", "; a handle from get() is still alive"))
                }
            },
            other => {
                entry.slot = other;
                Err(entry.refuse(id, "take", ""))
            }
        }
    }

    /// Forgets a resident tensor and hands its device memory back, whether
    /// or not its stored copy is current: the inverse of
    /// [`register`](Self::register), and how a caller gets its memory back
    /// after a failed `swap_out` (the tensor stays resident then). Its file
    /// extent or host memory are freed. Waits while the tensor is being
    /// swapped in or copied by `swap_into`.
    ///
    /// Refused while a [`TensorHandle`] of it is alive, and for a tensor
    /// that is not resident.
    pub fn unregister(&self, id: TensorId) -> Result<DeviceBuffer<D>> {
        let mut table = self.shared.lock();
        loop {
            let entry = table.entry(id)?;
            match &entry.slot {
                Slot::SwappingIn => table = self.shared.wait(table),
                _ if entry.readers > 0 => table = self.shared.wait(table),
                Slot::Resident { buf, .. } if Arc::strong_count(buf) == 1 => break,
                Slot::Resident { .. } => {
                    return Err(entry.refuse(
                        id,
                        "unregister",
                        "; a handle from get() is still alive: drop it first",
                    ))
                }
                _ => return Err(entry.refuse(
                    id,
                    "unregister",
                    "; only a resident tensor hands its memory back: swap_in or prefetch it first",
                )),
            }
        }
        let mut entry = table
            .tensors
            .remove(&id)
            .ok_or(SwapError::UnknownTensor { id })?;
        let kept = match std::mem::replace(&mut entry.slot, Slot::Stored) {
            Slot::Resident { buf, clean } => match Arc::try_unwrap(buf) {
                Ok(buf) => {
                    self.shared.free_home(&mut table, entry.home, entry.logical);
                    self.shared.changed.notify_all();
                    return Ok(buf);
                }
                Err(buf) => Slot::Resident { buf, clean },
            },
            other => other,
        };
        // Checked above under the same lock, so not reached; put it back.
        entry.slot = kept;
        let error = entry.refuse(id, "unregister", "");
        table.tensors.insert(id, entry);
        Err(error)
    }

    /// Forgets a tensor that is not being swapped: its device copy (once no
    /// handle holds it), its file extent or host memory are freed.
    pub fn remove(&self, id: TensorId) -> Result<()> {
        let mut table = self.shared.lock();
        loop {
            let entry = table.entry(id)?;
            match entry.slot {
                Slot::SwappingIn | Slot::SwappingOut => {
                    return Err(entry.refuse(id, "remove", "; wait for its swap first"))
                }
                _ if entry.readers > 0 => table = self.shared.wait(table),
                _ => break,
            }
        }
        let entry = table
            .tensors
            .remove(&id)
            .ok_or(SwapError::UnknownTensor { id })?;
        self.shared.free_home(&mut table, entry.home, entry.logical);
        self.shared.changed.notify_all();
        Ok(())
    }

    /// A snapshot of one tensor.
    pub fn status(&self, id: TensorId) -> Result<TensorStatus> {
        Ok(self.shared.lock().entry(id)?.status())
    }

    /// The registered ids, sorted.
    pub fn ids(&self) -> Vec<TensorId> {
        let mut ids: Vec<TensorId> = self.shared.lock().tensors.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The byte range of [`SwapStore::path`] holding the tensor's stored copy,
    /// if its home is the file (for diagnostics and tests).
    pub fn stored_range(&self, id: TensorId) -> Result<Option<Range<u64>>> {
        Ok(match self.shared.lock().entry(id)?.home {
            Home::File(extent) => Some(extent.offset..extent.offset + extent.len),
            _ => None,
        })
    }

    /// Tensors in device memory or on their way there (resident or swapping in).
    pub fn in_memory(&self) -> usize {
        self.shared
            .lock()
            .tensors
            .values()
            .filter(|e| matches!(e.slot, Slot::Resident { .. } | Slot::SwappingIn))
            .count()
    }

    /// Bytes of tensors whose home is pinned host memory.
    pub fn host_bytes(&self) -> usize {
        self.shared.lock().host_used
    }

    /// Blocks until no tensor is swapping out or in.
    pub fn wait_idle(&self) {
        let mut table = self.shared.lock();
        while table.tensors.values().any(|e| {
            matches!(
                e.state(),
                TensorState::SwappingIn | TensorState::SwappingOut
            )
        }) {
            table = self.shared.wait(table);
        }
    }
}

impl<D: Device, E: IoEngine> Drop for Swapper<D, E> {
    fn drop(&mut self) {
        // Jobs still queued are cancelled; the worker is joined when the
        // field drops.
        self.shared.closing.store(true, Ordering::SeqCst);
    }
}

impl<D: Device, E: IoEngine> fmt::Debug for Swapper<D, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = self.shared.lock();
        f.debug_struct("Swapper")
            .field("device", &self.shared.device.info())
            .field("store", &self.shared.store)
            .field("tensors", &table.tensors.len())
            .field("host_bytes", &table.host_used)
            .finish()
    }
}
