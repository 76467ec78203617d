//! An owned device allocation with its length.

use std::fmt;

use crate::Device;

/// Device memory allocated through [`crate::DeviceExt::alloc`]; freed on drop.
///
/// Transfers take a `DeviceBuffer` by value and hand it back when they
/// complete, so safe code cannot free it or start a second transfer on it
/// while a copy is running.
pub struct DeviceBuffer<D: Device> {
    memory: D::Memory,
    len: usize,
    backend: &'static str,
}

impl<D: Device> DeviceBuffer<D> {
    pub(crate) fn new(memory: D::Memory, len: usize, backend: &'static str) -> Self {
        Self {
            memory,
            len,
            backend,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length allocation.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Name of the backend that allocated it.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Wraps memory a backend made outside [`crate::DeviceExt::alloc`] (e.g.
    /// a framework's allocation the backend adopted), for the safe transfer
    /// API and the swappers.
    ///
    /// # Safety
    ///
    /// `memory` is at least `len` bytes of `backend`'s device memory that
    /// nothing else reads or writes while this buffer is in a transfer.
    pub unsafe fn from_memory(memory: D::Memory, len: usize, backend: &'static str) -> Self {
        Self::new(memory, len, backend)
    }

    /// The backend's handle, for backend-specific interop (e.g. handing a CUDA
    /// allocation to a kernel).
    pub fn memory(&self) -> &D::Memory {
        &self.memory
    }

    /// The backend's handle, leaving the buffer (to fill it in place, or to
    /// hand the allocation to a framework that frees it itself). An owned
    /// buffer is in no transfer: transfers take it by value until they
    /// complete.
    pub fn into_memory(self) -> D::Memory {
        self.memory
    }
}

impl<D: Device> fmt::Debug for DeviceBuffer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceBuffer")
            .field("backend", &self.backend)
            .field("len", &self.len)
            .finish()
    }
}
