//! The emulated driver's state: one device, its primary context, and the
//! live streams, events, host registrations and host allocations, by
//! handle. Work that fails while a stream runs it (a device address that
//! went bad after it was queued) leaves a sticky error, as on a GPU.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::event::Event;
use crate::heap::{ContextId, Heap};
use crate::result::{refuse, Status};
use crate::stream::Stream;

/// The one context: the device's primary context, as an opaque handle.
pub const PRIMARY: usize = 0x000c_0000;
/// Its id in the heap.
pub const CONTEXT: ContextId = 1;
/// Device memory of the emulated GPU unless `TENSORSWAP_CUDA_EMULATOR_MEMORY`
/// says otherwise (bytes); nothing is allocated until asked for.
const DEFAULT_CAPACITY: usize = 8 << 30;

/// `CUDA_ERROR_ILLEGAL_ADDRESS`: what work that failed on a stream leaves.
pub const ILLEGAL_ADDRESS: Status = Status(700);

/// The process's emulated driver.
pub struct Driver {
    initialised: AtomicBool,
    /// The device's memory.
    pub heap: Heap,
    next_handle: AtomicUsize,
    streams: Mutex<HashMap<usize, Arc<Stream>>>,
    events: Mutex<HashMap<usize, Event>>,
    /// Registered host ranges: start -> length.
    registered: Mutex<BTreeMap<usize, usize>>,
    /// `cuMemHostAlloc` blocks: start -> length.
    host_blocks: Mutex<HashMap<usize, usize>>,
    sticky: AtomicU32,
    order: Mutex<Order>,
}

/// What each stream is known to come after, as the host queued it: a
/// vector clock per stream (items queued on each stream it is ordered
/// after), per recorded event, and for the host (what it synchronised
/// with). Checked when work is queued, so the verdict does not depend on
/// timing.
#[derive(Default)]
struct Order {
    streams: HashMap<usize, Clock>,
    events: HashMap<usize, Clock>,
    host: Clock,
    /// Stream-ordered allocations: start -> (stream, its item that made it).
    made: HashMap<u64, (usize, u64)>,
    /// Queued uses of device memory: start -> stream -> its latest item
    /// using it.
    uses: HashMap<u64, HashMap<usize, u64>>,
}

type Clock = HashMap<usize, u64>;

fn merge(into: &mut Clock, from: &Clock) {
    for (&stream, &seq) in from {
        let at = into.entry(stream).or_insert(0);
        *at = (*at).max(seq);
    }
}

impl Order {
    /// A new item on `stream`, after everything the host already knows of.
    /// What `stream` is known to come after, the host's knowledge included.
    fn knows(&self, stream: usize, of: usize) -> u64 {
        let own = self.streams.get(&stream).and_then(|c| c.get(&of)).copied();
        own.unwrap_or(0)
            .max(self.host.get(&of).copied().unwrap_or(0))
    }

    fn tick(&mut self, stream: usize) -> u64 {
        let host = self.host.clone();
        let clock = self.streams.entry(stream).or_default();
        merge(clock, &host);
        let seq = clock.entry(stream).or_insert(0);
        *seq += 1;
        *seq
    }
}

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Driver {
    /// The process's driver, made on first use.
    pub fn get() -> &'static Driver {
        static DRIVER: OnceLock<Driver> = OnceLock::new();
        DRIVER.get_or_init(|| Driver {
            initialised: AtomicBool::new(false),
            heap: Heap::new(
                std::env::var("TENSORSWAP_CUDA_EMULATOR_MEMORY")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(DEFAULT_CAPACITY),
            ),
            next_handle: AtomicUsize::new(1),
            streams: Mutex::new(HashMap::new()),
            events: Mutex::new(HashMap::new()),
            registered: Mutex::new(BTreeMap::new()),
            host_blocks: Mutex::new(HashMap::new()),
            sticky: AtomicU32::new(0),
            order: Mutex::new(Order::default()),
        })
    }

    /// `cuInit`.
    pub fn init(&self) {
        if !self.initialised.swap(true, Ordering::SeqCst) {
            eprintln!(
                "cuda-emulator: the CUDA driver is EMULATED on the CPU (tensorswap's test fixture), {} bytes of device memory",
                self.heap.capacity()
            );
        }
    }

    /// Refuses calls before `cuInit`, and reports a sticky error.
    pub fn ready(&self) -> Result<(), Status> {
        if !self.initialised.load(Ordering::SeqCst) {
            return Err(Status::NOT_INITIALIZED);
        }
        match self.sticky.load(Ordering::SeqCst) {
            0 => Ok(()),
            code => Err(Status(code)),
        }
    }

    /// Ready, with the primary context current on this thread.
    pub fn in_context(&self) -> Result<(), Status> {
        self.ready()?;
        if CURRENT.with(Cell::get) != PRIMARY {
            return Err(refuse(
                Status::INVALID_CONTEXT,
                format_args!("no context is current on this thread"),
            ));
        }
        Ok(())
    }

    /// `cuCtxSetCurrent`.
    pub fn set_current(&self, ctx: usize) -> Result<(), Status> {
        if ctx != 0 && ctx != PRIMARY {
            return Err(refuse(
                Status::INVALID_CONTEXT,
                format_args!("context {ctx:#x} is not a live context"),
            ));
        }
        CURRENT.with(|c| c.set(ctx));
        Ok(())
    }

    /// The context current on this thread (0 for none).
    pub fn current(&self) -> usize {
        CURRENT.with(Cell::get)
    }

    /// Work on a stream failed: every later call sees it.
    pub fn fail(&self, status: Status) {
        let _ = self
            .sticky
            .compare_exchange(0, status.0, Ordering::SeqCst, Ordering::SeqCst);
    }

    fn handle(&self) -> usize {
        // Even, far from small integers and from device addresses.
        0x5000_0000 + 16 * self.next_handle.fetch_add(1, Ordering::Relaxed)
    }

    /// A new stream's handle.
    pub fn create_stream(&self) -> Result<usize, Status> {
        let stream = Arc::new(Stream::new()?);
        let handle = self.handle();
        lock(&self.streams).insert(handle, stream);
        Ok(handle)
    }

    /// The stream behind a handle; 0 (the legacy default stream) is a
    /// stream of its own, made on first use.
    pub fn stream(&self, handle: usize) -> Result<Arc<Stream>, Status> {
        let mut streams = lock(&self.streams);
        if handle == 0 {
            if let Some(s) = streams.get(&0) {
                return Ok(Arc::clone(s));
            }
            let s = Arc::new(Stream::new()?);
            streams.insert(0, Arc::clone(&s));
            return Ok(s);
        }
        streams.get(&handle).cloned().ok_or_else(|| {
            refuse(
                Status::INVALID_HANDLE,
                format_args!("stream {handle:#x} is not live"),
            )
        })
    }

    /// Destroys a stream (its queued work still runs).
    pub fn destroy_stream(&self, handle: usize) -> Result<(), Status> {
        let removed = lock(&self.streams).remove(&handle);
        removed.map(drop).ok_or_else(|| {
            refuse(
                Status::INVALID_HANDLE,
                format_args!("destroying stream {handle:#x}, which is not live"),
            )
        })
    }

    /// Waits for every stream's queued work.
    pub fn synchronize_all(&self) -> Result<(), Status> {
        let streams: Vec<Arc<Stream>> = lock(&self.streams).values().cloned().collect();
        for s in streams {
            s.synchronize()?;
        }
        Ok(())
    }

    /// A new event's handle.
    pub fn create_event(&self) -> usize {
        let handle = self.handle();
        lock(&self.events).insert(handle, Event::new());
        handle
    }

    /// The event behind a handle.
    pub fn event(&self, handle: usize) -> Result<Event, Status> {
        lock(&self.events).get(&handle).cloned().ok_or_else(|| {
            refuse(
                Status::INVALID_HANDLE,
                format_args!("event {handle:#x} is not live"),
            )
        })
    }

    /// Destroys an event.
    pub fn destroy_event(&self, handle: usize) -> Result<(), Status> {
        lock(&self.events).remove(&handle).map(drop).ok_or_else(|| {
            refuse(
                Status::INVALID_HANDLE,
                format_args!("destroying event {handle:#x}, which is not live"),
            )
        })
    }

    /// A copy queued on `stream` that uses the device memory at `addr`.
    pub fn used(&self, addr: u64, stream: usize) {
        let base = self.heap.base_of(addr);
        let mut order = lock(&self.order);
        let seq = order.tick(stream);
        if let Some(base) = base {
            order.uses.entry(base).or_default().insert(stream, seq);
        }
    }

    /// Refuses a free queued on `stream` while a use of the memory queued
    /// on another stream is not ordered before it (the memory could be
    /// freed, and reused, under that copy).
    pub fn check_free(&self, base: u64, stream: usize) -> Result<(), Status> {
        let order = lock(&self.order);
        let uses = order.uses.get(&base).into_iter().flatten();
        for (&other, &seq) in uses {
            if other != stream && order.knows(stream, other) < seq {
                return Err(refuse(
                    Status::INVALID_VALUE,
                    format_args!(
                        "{base:#x} freed on stream {stream:#x} while its use on stream {other:#x} is not ordered before the free"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `cuEventRecord`: the event carries what its stream is ordered after.
    pub fn recorded(&self, event: usize, stream: usize) {
        let mut order = lock(&self.order);
        order.tick(stream);
        let snapshot = order.streams.get(&stream).cloned().unwrap_or_default();
        order.events.insert(event, snapshot);
    }

    /// `cuStreamWaitEvent`: the stream is ordered after the event's record.
    pub fn waited(&self, stream: usize, event: usize) {
        let mut order = lock(&self.order);
        let snapshot = order.events.get(&event).cloned().unwrap_or_default();
        order.tick(stream);
        merge(order.streams.entry(stream).or_default(), &snapshot);
    }

    /// The host synchronised with a stream (`None`: with every stream).
    pub fn host_synced_stream(&self, stream: Option<usize>) {
        let mut order = lock(&self.order);
        let clocks: Vec<Clock> = match stream {
            Some(s) => order.streams.get(&s).cloned().into_iter().collect(),
            None => order.streams.values().cloned().collect(),
        };
        for clock in clocks {
            merge(&mut order.host, &clock);
        }
    }

    /// The host synchronised with an event.
    pub fn host_synced_event(&self, event: usize) {
        let mut order = lock(&self.order);
        let snapshot = order.events.get(&event).cloned().unwrap_or_default();
        merge(&mut order.host, &snapshot);
    }

    /// `cuMemAllocAsync` made `base` on `stream`.
    pub fn allocated_on(&self, base: u64, stream: usize) {
        let mut order = lock(&self.order);
        let seq = order.tick(stream);
        order.made.insert(base, (stream, seq));
    }

    /// `base` was freed.
    pub fn freed(&self, base: u64) {
        let mut order = lock(&self.order);
        order.made.remove(&base);
        order.uses.remove(&base);
    }

    /// Refuses device memory used on `stream` before its stream-ordered
    /// allocation is ordered there (an event recorded after the allocation
    /// and waited for by `stream`, or a host synchronisation in between).
    pub fn check_ordered(&self, addr: u64, stream: usize) -> Result<(), Status> {
        let Some(base) = self.heap.base_of(addr) else {
            return Ok(()); // refused by the access itself
        };
        let order = lock(&self.order);
        let Some(&(made_on, seq)) = order.made.get(&base) else {
            return Ok(());
        };
        if made_on != stream && order.knows(stream, made_on) < seq {
            return Err(refuse(
                Status::INVALID_VALUE,
                format_args!(
                    "{addr:#x} used on stream {stream:#x} before its allocation on stream {made_on:#x} is ordered there (no event wait)"
                ),
            ));
        }
        Ok(())
    }

    /// `cuMemHostRegister`: refused for a range that overlaps one already
    /// registered, as the driver does.
    pub fn register_host(&self, start: usize, len: usize) -> Result<(), Status> {
        if len == 0 || start == 0 {
            return Err(refuse(
                Status::INVALID_VALUE,
                format_args!("registering {len} bytes at {start:#x}"),
            ));
        }
        let mut registered = lock(&self.registered);
        let end = start.checked_add(len).ok_or(Status::INVALID_VALUE)?;
        let before = registered.range(..end).next_back();
        if before.is_some_and(|(&s, &l)| s + l > start) {
            return Err(refuse(
                Status::HOST_MEMORY_ALREADY_REGISTERED,
                format_args!("registering {len} bytes at {start:#x}: overlaps a registered range"),
            ));
        }
        registered.insert(start, len);
        Ok(())
    }

    /// `cuMemHostUnregister`: `start` must begin a registered range.
    pub fn unregister_host(&self, start: usize) -> Result<(), Status> {
        lock(&self.registered)
            .remove(&start)
            .map(drop)
            .ok_or_else(|| {
                refuse(
                    Status::HOST_MEMORY_NOT_REGISTERED,
                    format_args!(
                        "unregistering {start:#x}, which does not start a registered range"
                    ),
                )
            })
    }

    /// Remembers a `cuMemHostAlloc` block.
    pub fn add_host_block(&self, start: usize, len: usize) {
        lock(&self.host_blocks).insert(start, len);
    }

    /// Forgets a `cuMemHostAlloc` block, giving its length.
    pub fn take_host_block(&self, start: usize) -> Result<usize, Status> {
        lock(&self.host_blocks).remove(&start).ok_or_else(|| {
            refuse(
                Status::INVALID_VALUE,
                format_args!("cuMemFreeHost of {start:#x}, which cuMemHostAlloc did not give"),
            )
        })
    }
}
