//! Reused, mappable staging buffers: the host side of every transfer.
//!
//! Uploads write into `MAP_WRITE` buffers that are mapped while idle;
//! downloads land in `MAP_READ` buffers that are mapped once their copy has
//! finished. Buffers are created on first use, at most `count` per lane, and
//! reused: fresh buffers would cost a page fault per page on every transfer.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::scope::captured;

/// Which way a staging buffer carries bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Host to device: `MAP_WRITE | COPY_SRC`, mapped while idle.
    Up,
    /// Device to host: `MAP_READ | COPY_DST`, unmapped while idle.
    Down,
}

const PENDING: u8 = 0;
const MAPPED: u8 = 1;
const FAILED: u8 = 2;

/// Where a staging buffer's mapping stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MapState {
    /// Requested; its callback has not run yet.
    Pending,
    /// Mapped: the host may touch it.
    Mapped,
    /// The mapping failed (the device was lost).
    Failed,
}

/// One staging buffer and the state of its last map request.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) buffer: wgpu::Buffer,
    state: Arc<AtomicU8>,
}

impl Slot {
    /// A staging buffer of `size` bytes for `lane`; an `Up` buffer starts
    /// mapped.
    pub(crate) fn new(device: &wgpu::Device, lane: Lane, size: u64) -> Result<Self, wgpu::Error> {
        let usage = match lane {
            Lane::Up => wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
            Lane::Down => wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        };
        let (buffer, error) = captured(device, || {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tensorswap staging"),
                size,
                usage,
                mapped_at_creation: lane == Lane::Up,
            })
        });
        match error {
            Some(error) => Err(error),
            None => Ok(Self {
                buffer,
                state: Arc::new(AtomicU8::new(match lane {
                    Lane::Up => MAPPED,
                    Lane::Down => PENDING,
                })),
            }),
        }
    }

    /// Asks for the first `size` bytes to be mapped once the GPU is done
    /// with the buffer; the callback may run on any thread that polls. A
    /// request wgpu refuses (e.g. on a destroyed device) reads as failed.
    pub(crate) fn request_map(&self, device: &wgpu::Device, mode: wgpu::MapMode, size: u64) {
        self.state.store(PENDING, Ordering::Release);
        let state = Arc::clone(&self.state);
        let ((), error) = captured(device, || {
            self.buffer.map_async(mode, 0..size, move |result| {
                let now = if result.is_ok() { MAPPED } else { FAILED };
                state.store(now, Ordering::Release);
            })
        });
        if error.is_some() {
            self.state.store(FAILED, Ordering::Release);
        }
    }

    pub(crate) fn map_state(&self) -> MapState {
        match self.state.load(Ordering::Acquire) {
            MAPPED => MapState::Mapped,
            FAILED => MapState::Failed,
            _ => MapState::Pending,
        }
    }
}

/// The idle staging buffers of one lane.
#[derive(Debug)]
pub(crate) struct Ring {
    lane: Lane,
    size: u64,
    count: usize,
    /// Buffers in existence (idle or in flight).
    created: usize,
    idle: Vec<Slot>,
}

impl Ring {
    /// A lane of at most `count` buffers of `size` bytes each.
    pub(crate) fn new(lane: Lane, size: u64, count: usize) -> Self {
        Self {
            lane,
            size,
            count,
            created: 0,
            idle: Vec::new(),
        }
    }

    /// An idle buffer, creating one while fewer than `count` exist; `None`
    /// when all are in flight.
    pub(crate) fn take(&mut self, device: &wgpu::Device) -> Option<Result<Slot, wgpu::Error>> {
        if let Some(slot) = self.idle.pop() {
            return Some(Ok(slot));
        }
        if self.created == self.count {
            return None;
        }
        let slot = Slot::new(device, self.lane, self.size);
        if slot.is_ok() {
            self.created += 1;
        }
        Some(slot)
    }

    /// Returns a buffer that is idle again (an `Up` buffer mapped, a `Down`
    /// buffer unmapped).
    pub(crate) fn put_back(&mut self, slot: Slot) {
        self.idle.push(slot);
    }

    /// Forgets a buffer whose mapping failed; a new one may take its place.
    pub(crate) fn discard(&mut self, slot: Slot) {
        drop(slot);
        self.created -= 1;
    }
}
