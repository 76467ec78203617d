//! [`WgpuDevice`] and its [`Device`] implementation.

use std::ptr::NonNull;
use std::sync::Arc;

use tensorswap_core::{Capabilities, Device, DeviceInfo, Direction, OwnerToken, Result};

use crate::memory::WgpuMemory;
use tensorswap_core::sync::{Latch, LatchPending};

use crate::window::ALIGN;
use crate::worker::{HostPtr, Job, Staging, Transfer, Transfers};
use crate::WgpuPending;
use crate::BACKEND;

/// A wgpu device; see the [crate docs](crate).
///
/// Cheap to clone: clones share the transfer thread and its staging
/// buffers, which stop (after finishing queued transfers) when the last
/// clone is dropped.
#[derive(Debug, Clone)]
pub struct WgpuDevice {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: wgpu::AdapterInfo,
    max_allocation: usize,
    usage: wgpu::BufferUsages,
    owner: OwnerToken,
    transfers: Transfers,
}

impl WgpuDevice {
    pub(crate) fn start(
        device: wgpu::Device,
        queue: wgpu::Queue,
        staging: Staging,
        usage: wgpu::BufferUsages,
    ) -> Result<Self> {
        let adapter = device.adapter_info();
        let largest = device.limits().max_buffer_size.min(isize::MAX as u64);
        let max_allocation = (largest / ALIGN * ALIGN) as usize;
        // A staging buffer is a buffer too.
        let staging = Staging {
            chunk: staging.chunk.min(max_allocation as u64).max(ALIGN),
            ..staging
        };
        let transfers = Transfers::start(device.clone(), queue.clone(), staging)?;
        tracing::debug!(adapter = %adapter.name, backend = ?adapter.backend, max_allocation, ?staging, "wgpu device opened");
        Ok(Self {
            shared: Arc::new(Shared {
                device,
                queue,
                adapter,
                max_allocation,
                usage,
                owner: OwnerToken::new(),
                transfers,
            }),
        })
    }

    /// The wgpu device, to run your own work on the same GPU.
    pub fn wgpu_device(&self) -> &wgpu::Device {
        &self.shared.device
    }

    /// The queue transfers are submitted to.
    pub fn wgpu_queue(&self) -> &wgpu::Queue {
        &self.shared.queue
    }

    /// The adapter the device runs on.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.shared.adapter
    }

    fn transfer(
        &self,
        direction: Direction,
        host: *mut u8,
        len: usize,
        memory: &WgpuMemory,
        offset: usize,
    ) -> Result<WgpuPending> {
        let ticket = Latch::new(1);
        self.shared.transfers.submit(Job {
            host: HostPtr(host),
            buffer: memory.buffer().clone(),
            transfer: Arc::new(Transfer {
                direction,
                offset,
                len,
                ticket: Arc::clone(&ticket),
            }),
        })?;
        Ok(LatchPending::new(ticket))
    }
}

impl Device for WgpuDevice {
    type Memory = WgpuMemory;
    type Pending = WgpuPending;
    type Registration = ();

    fn info(&self) -> DeviceInfo {
        let a = &self.shared.adapter;
        let name = format!("{} ({:?}, {:?})", a.name, a.backend, a.device_type);
        DeviceInfo::new(BACKEND, name, None)
    }

    fn capabilities(&self) -> Capabilities {
        // Transfers go through wgpu's own mapped staging buffers; host
        // memory is never page-locked or registered with the driver, and
        // files never reach device memory directly.
        Capabilities::new(self.shared.max_allocation)
            .with_async_transfers(true)
            // One transfer thread, one queue: pieces are submitted in order.
            .with_ordered_transfers(true)
    }

    fn allocate_memory(&self, len: usize) -> Result<WgpuMemory> {
        let shared = &self.shared;
        WgpuMemory::allocate(
            &shared.owner,
            &shared.device,
            len,
            shared.max_allocation,
            shared.usage,
        )
    }

    fn owns(&self, memory: &WgpuMemory) -> bool {
        memory.belongs_to(&self.shared.owner)
    }

    unsafe fn register_host(&self, _ptr: NonNull<u8>, _len: usize) -> Result<()> {
        // Nothing to pin: the staging buffers are the DMA-able memory.
        Ok(())
    }

    unsafe fn submit_upload(
        &self,
        src: *const u8,
        len: usize,
        dst: &WgpuMemory,
        dst_offset: usize,
    ) -> Result<WgpuPending> {
        self.transfer(Direction::Upload, src.cast_mut(), len, dst, dst_offset)
    }

    unsafe fn submit_download(
        &self,
        src: &WgpuMemory,
        src_offset: usize,
        dst: *mut u8,
        len: usize,
    ) -> Result<WgpuPending> {
        self.transfer(Direction::Download, dst, len, src, src_offset)
    }
}
