//! [`TensorSwap`]: the front door, with the six verbs a DeepSpeed user looks
//! for, over the best device and a swap store in the system temp folder.

use std::sync::atomic::{AtomicU64, Ordering};

use tensorswap_core::{
    AnyEngine, Device, DeviceBuffer, DeviceExt, Done, HostBuf, HostBufMut, IoEngine, Pinned,
    Rejected, TransferResult,
};
use tensorswap_swapper::{
    Result, SwapError, SwapStore, Swapper, TensorId, TensorMeta, TensorStatus,
};

use crate::{open_best, AnyDevice};

/// Device memory of the device a [`TensorSwap`] runs on: the untyped bytes
/// of a tensor (its dtype and shape are the caller's).
pub type AnyDeviceBuffer = DeviceBuffer<AnyDevice>;

/// What a failed [`TensorSwap::swap_tensor`] hands back with its error.
#[derive(Debug)]
pub enum Unswapped {
    /// The tensor's device memory, bytes intact: what every failure the
    /// swapper reports (a full disk, an I/O error, memory of another
    /// device) gives back.
    Memory(AnyDeviceBuffer),
    /// The swapper kept the tensor and could not hand its memory back (it
    /// broke its own rule that a failed swap-out leaves a tensor resident;
    /// logged as an error). Nothing is lost: the handle still reaches it
    /// ([`TensorSwap::load_tensor`], [`TensorSwap::discard`]).
    Kept(SwapHandle),
}

impl Unswapped {
    /// The device memory, when it came back.
    pub fn into_memory(self) -> Option<AnyDeviceBuffer> {
        match self {
            Unswapped::Memory(memory) => Some(memory),
            Unswapped::Kept(_) => None,
        }
    }
}

/// The six verbs of DeepSpeed's tensor swapping, each a thin call into the
/// types underneath: [`pin_memory`](Self::pin_memory),
/// [`unpin_memory`](Self::unpin_memory), [`to_device`](Self::to_device),
/// [`from_device`](Self::from_device), [`swap_tensor`](Self::swap_tensor)
/// and [`load_tensor`](Self::load_tensor).
///
/// [`TensorSwap::open`] takes the best device this machine has
/// ([`open_best`]) and a [`SwapStore`] in a private folder of the system
/// temp folder (removed when the TensorSwap drops); [`TensorSwap::with`]
/// takes both from the caller (any engine: `E` is the store's). Every call
/// is safe to make from several threads.
///
/// ```
/// use tensorswap::TensorSwap;
/// let ts = TensorSwap::open()?;
/// let host = ts.pin_memory(vec![0.5f32; 1 << 20])?;         // pin_memory
/// let done = ts.to_device(host)?;                           // to_device
/// let handle = ts.swap_tensor(done.device)?;                // swap_tensor: now on disk
/// ts.prefetch(&handle)?;                                    // optional: start reading it back
/// let weights = ts.load_tensor(handle)?;                    // load_tensor
/// let back = ts.from_device(weights, vec![0f32; 1 << 20])?; // from_device
/// assert!(back.host.iter().all(|&x| x == 0.5));
/// let _vec: Vec<f32> = ts.unpin_memory(done.host);          // unpin_memory
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TensorSwap<E: IoEngine = AnyEngine> {
    swapper: Swapper<AnyDevice, E>,
    next_id: AtomicU64,
}

/// A tensor [`TensorSwap::swap_tensor`] wrote to the store; give it to
/// [`TensorSwap::load_tensor`] to have the tensor back in device memory, or
/// to [`TensorSwap::discard`] to free its place in the store.
///
/// A handle dropped without either keeps its place until the TensorSwap
/// drops.
#[derive(Debug)]
#[must_use = "a swapped tensor is loaded back or discarded through its handle"]
pub struct SwapHandle {
    id: TensorId,
    len: usize,
}

impl SwapHandle {
    /// The tensor's id in the TensorSwap's [`Swapper`].
    pub fn id(&self) -> TensorId {
        self.id
    }

    /// The tensor's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a tensor of no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl TensorSwap {
    /// The best device here ([`open_best`]) and a store with the default
    /// settings (four 16 MiB pinned slabs, the io_uring engine where the
    /// kernel has it) in the system temp folder.
    ///
    /// ```
    /// use tensorswap::Device;
    /// let ts = tensorswap::TensorSwap::open()?;
    /// println!("swapping on {} into {}", ts.device().info(), ts.store().path().display());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open() -> Result<Self> {
        let device = open_best()?.device;
        let store = SwapStore::builder().build_for(&device)?;
        Self::with(device, store)
    }
}

impl<E: IoEngine + 'static> TensorSwap<E> {
    /// A TensorSwap of `device`'s memory into `store` (built for `device`,
    /// e.g. with [`SwapStore::builder`]`().folders([...]).build_for(&device)`).
    pub fn with(device: AnyDevice, store: SwapStore<E>) -> Result<Self> {
        Ok(Self {
            swapper: Swapper::new(device, store)?,
            next_id: AtomicU64::new(0),
        })
    }

    /// The device.
    pub fn device(&self) -> &AnyDevice {
        self.swapper.device()
    }

    /// The store tensors are swapped to.
    pub fn store(&self) -> &SwapStore<E> {
        self.swapper.store()
    }

    /// DeepSpeed's `pin_memory` (`get_accelerator().pin_memory(t)`):
    /// registers a buffer the caller owns with the device, page-locked where
    /// the backend can; [`DeviceExt::pin_memory`] says what is refused. The
    /// pinned value takes part in transfers and file I/O like any host
    /// buffer.
    ///
    /// ```
    /// let ts = tensorswap::TensorSwap::open()?;
    /// let mut pinned = ts.pin_memory(vec![0u8; 4096])?;
    /// pinned.bytes_mut()[0] = 1;
    /// assert_eq!(pinned[0], 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pin_memory<B: HostBuf>(&self, buf: B) -> Result<Pinned<B>, Rejected<B>> {
        self.device().pin_memory(buf)
    }

    /// DeepSpeed's `unpin_memory` (`get_accelerator().unpin_memory(t)`):
    /// unregisters the memory and gives the caller's buffer back
    /// ([`Pinned::unpin`]).
    ///
    /// ```
    /// let ts = tensorswap::TensorSwap::open()?;
    /// let pinned = ts.pin_memory(vec![7u16; 100])?;
    /// let plain: Vec<u16> = ts.unpin_memory(pinned);
    /// assert_eq!(plain, vec![7u16; 100]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unpin_memory<B: HostBuf>(&self, pinned: Pinned<B>) -> B {
        pinned.unpin()
    }

    /// DeepSpeed's `tensor.to(device)`: new device memory holding `host`'s
    /// bytes; returns both, once the copy is done. The host buffer comes
    /// back with the error when the device has no room or the copy fails.
    ///
    /// ```
    /// let ts = tensorswap::TensorSwap::open()?;
    /// let done = ts.to_device(vec![3u32; 256])?;
    /// assert_eq!(done.device.len(), 1024);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_device<H: HostBuf>(&self, host: H) -> Result<Done<AnyDevice, H>, Rejected<H>> {
        let device = match self.device().alloc(host.bytes_len()) {
            Ok(device) => device,
            Err(error) => return Err(Rejected { error, value: host }),
        };
        self.device()
            .upload_blocking(host, device, 0)
            .map_err(|failed| Rejected {
                error: failed.error,
                value: failed.value.host,
            })
    }

    /// DeepSpeed's `tensor.cpu()` / `tensor.to("cpu")`: copies the first
    /// `host.bytes_len()` bytes of `device` into `host` and waits; both
    /// come back, with the error if the copy fails.
    ///
    /// ```
    /// let ts = tensorswap::TensorSwap::open()?;
    /// let on_device = ts.to_device(vec![9u8; 4096])?.device;
    /// let back = ts.from_device(on_device, vec![0u8; 4096])?;
    /// assert!(back.host.iter().all(|&b| b == 9));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    // The error hands the caller's buffers back by value, like every
    // transfer of `DeviceExt`; with every backend compiled in it is large.
    #[allow(clippy::result_large_err)]
    pub fn from_device<H: HostBufMut>(
        &self,
        device: AnyDeviceBuffer,
        host: H,
    ) -> TransferResult<AnyDevice, H> {
        self.device().download_blocking(device, 0, host)
    }

    /// DeepSpeed's `swap_out_tensors` (`AsyncTensorSwapper`, with its
    /// `synchronize`): writes the tensor to the store, frees its device
    /// memory, and returns its handle once the bytes are in the store.
    ///
    /// When the write fails (a full disk, an I/O error), the tensor's
    /// memory comes back with the error, bytes intact
    /// ([`Unswapped::Memory`]); so does memory of another device. For many
    /// tensors in flight at once, use a [`Swapper`] directly.
    ///
    /// ```
    /// let ts = tensorswap::TensorSwap::open()?;
    /// let handle = ts.swap_tensor(ts.to_device(vec![1u8; 1 << 20])?.device)?;
    /// assert_eq!(handle.len(), 1 << 20);
    /// # ts.discard(handle)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::result_large_err)] // as from_device's
    pub fn swap_tensor(
        &self,
        tensor: AnyDeviceBuffer,
    ) -> Result<SwapHandle, Rejected<Unswapped, SwapError>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let len = tensor.len();
        if let Err(refused) = self.swapper.register(id, TensorMeta::bytes_of(len), tensor) {
            return Err(Rejected {
                error: refused.error,
                value: Unswapped::Memory(refused.value),
            });
        }
        let Err(error) = self
            .swapper
            .swap_out(&[id])
            .and_then(|ticket| ticket.wait())
        else {
            return Ok(SwapHandle { id, len });
        };
        // A failed swap-out leaves the tensor resident: hand it back.
        match self.swapper.unregister(id) {
            Ok(tensor) => Err(Rejected {
                error,
                value: Unswapped::Memory(tensor),
            }),
            Err(unregister) => {
                tracing::error!(%error, %unregister, id, "a tensor whose swap-out failed could not be handed back; it stays in the swapper");
                Err(Rejected {
                    error,
                    value: Unswapped::Kept(SwapHandle { id, len }),
                })
            }
        }
    }

    /// Starts reading a swapped tensor back into device memory, so that a
    /// later [`load_tensor`](Self::load_tensor) returns at once (DeepSpeed's
    /// prefetching swap-in). A failure shows in `load_tensor`.
    pub fn prefetch(&self, handle: &SwapHandle) -> Result<()> {
        self.swapper.prefetch(&[handle.id])
    }

    /// DeepSpeed's `swap_in_tensors`: the tensor back in device memory,
    /// waiting for the read (at once after a finished
    /// [`prefetch`](Self::prefetch)); its place in the store is freed.
    ///
    /// When the read fails (an I/O error, a checksum mismatch), the handle
    /// comes back with the error and the tensor stays in the store: try
    /// again, or [`discard`](Self::discard) it.
    ///
    /// ```
    /// let ts = tensorswap::TensorSwap::open()?;
    /// let handle = ts.swap_tensor(ts.to_device(vec![4u8; 8192])?.device)?;
    /// let tensor = ts.load_tensor(handle)?; // waits for the read
    /// assert_eq!(ts.from_device(tensor, vec![0u8; 8192])?.host, vec![4u8; 8192]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_tensor(
        &self,
        handle: SwapHandle,
    ) -> Result<AnyDeviceBuffer, Rejected<SwapHandle, SwapError>> {
        let loaded = self
            .swapper
            .prefetch(&[handle.id])
            // `get` waits for the swap-in and reports its failure.
            .and_then(|()| self.swapper.get(handle.id).map(drop))
            .and_then(|()| self.swapper.unregister(handle.id));
        loaded.map_err(|error| Rejected {
            error,
            value: handle,
        })
    }

    /// The tensor's state, and the error of its last failed swap if any.
    pub fn status(&self, handle: &SwapHandle) -> Result<TensorStatus> {
        self.swapper.status(handle.id)
    }

    /// Forgets a swapped tensor without reading it: its place in the store
    /// is freed.
    pub fn discard(&self, handle: SwapHandle) -> Result<(), Rejected<SwapHandle, SwapError>> {
        self.swapper.remove(handle.id).map_err(|error| Rejected {
            error,
            value: handle,
        })
    }
}

impl<E: IoEngine + 'static> std::fmt::Debug for TensorSwap<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorSwap")
            .field("device", &self.device().info())
            .field("store", &self.store().path())
            .finish_non_exhaustive()
    }
}
