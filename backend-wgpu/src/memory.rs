//! Device memory of the wgpu backend: one `wgpu::Buffer` per allocation.

use tensorswap_core::{Error, OwnerToken, Result};

use crate::scope::captured;
use crate::window::align_up;
use crate::BACKEND;

/// A wgpu device allocation: one buffer, usable as a copy source and
/// destination and with the usages the device was built with
/// ([`crate::WgpuDeviceBuilder::usage`]; `STORAGE` by default), so shaders
/// can bind it.
///
/// The buffer is [`WgpuMemory::len`] rounded up to a multiple of 4 bytes
/// (wgpu's copy alignment); transfers never touch the padding. Dropping it
/// frees the buffer once the GPU is done with it, also after the device
/// handle itself is gone.
#[derive(Debug)]
pub struct WgpuMemory {
    buffer: wgpu::Buffer,
    len: usize,
    owner: OwnerToken,
}

impl WgpuMemory {
    /// Allocates `len` bytes; `max` is the largest allocation the device allows.
    pub(crate) fn allocate(
        owner: &OwnerToken,
        device: &wgpu::Device,
        len: usize,
        max: usize,
        usage: wgpu::BufferUsages,
    ) -> Result<Self> {
        if len > max {
            return Err(Error::TooLarge {
                backend: BACKEND,
                requested: len,
                max,
                limit: "max_buffer_size",
            });
        }
        let (buffer, error) = captured(device, || {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tensorswap"),
                size: align_up(len.max(1) as u64),
                usage: usage | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        match error {
            None => Ok(Self {
                buffer,
                len,
                owner: owner.clone(),
            }),
            Some(wgpu::Error::OutOfMemory { .. }) => Err(Error::OutOfMemory {
                backend: BACKEND,
                requested: len,
                available: None,
            }),
            Some(error) => Err(Error::Device {
                component: BACKEND,
                op: "allocate",
                reason: error.to_string(),
            }),
        }
    }

    /// The buffer, to bind in your own shaders or copy with your own encoder
    /// (while no transfer of tensorswap uses it).
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Length in bytes (the buffer may be up to 3 bytes longer).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length allocation.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn belongs_to(&self, owner: &OwnerToken) -> bool {
        self.owner.same(owner)
    }
}
