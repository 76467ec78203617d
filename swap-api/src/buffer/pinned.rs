//! [`Pinned`]: a caller's own host buffer, registered (page-locked) with a
//! device until it is unpinned or dropped.

use std::any::Any;
use std::fmt;
use std::ops::Deref;

use bytemuck::Pod;

use super::{bytes_mut, HostBuf, HostBufMut};

/// A host buffer the caller owns (a `Vec<T>`, a `Box<[T]>`, a
/// [`HostBuffer`](crate::HostBuffer), any [`HostBuf`]), registered with a
/// device by [`DeviceExt::pin_memory`](crate::DeviceExt::pin_memory)
/// (DeepSpeed's `pin_memory`).
///
/// The value owns the buffer: it takes part in transfers and file requests
/// like any host buffer (it is a [`HostBuf`], and a [`HostBufMut`] when the
/// buffer is), reads through [`Deref`] to the buffer and writes through
/// [`Pinned::bytes_mut`] or [`Pinned::as_mut_slice`], but never hands out
/// `&mut` to the buffer itself, so safe code cannot grow, shrink or free the
/// memory while it is registered. [`Pinned::unpin`] unregisters and gives
/// the buffer back (DeepSpeed's `unpin_memory`); dropping unregisters, then
/// frees.
///
/// ```
/// use tensorswap_core::DeviceExt;
/// let dev = tensorswap_cpu::CpuDevice::new()?;
/// let mut pinned = dev.pin_memory(vec![0u32; 1024])?;
/// pinned.as_mut_slice()[7] = 42;
/// let done = dev.upload_blocking(pinned, dev.alloc(4096)?, 0)?; // DMA from the user's Vec
/// let weights: Vec<u32> = done.host.unpin();                     // the same Vec, unregistered
/// assert_eq!(weights[7], 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pinned<B: HostBuf> {
    // Declared before `buf`, so dropped first: the registration never
    // outlives the memory it covers.
    registration: Box<dyn Any + Send + Sync>,
    locked: bool,
    buf: B,
}

impl<B: HostBuf> Pinned<B> {
    /// Wraps `buf` with the registration that covers its bytes.
    pub(crate) fn new(buf: B, registration: Box<dyn Any + Send + Sync>, locked: bool) -> Self {
        Self {
            registration,
            locked,
            buf,
        }
    }

    /// True when the device page-locked the memory; false where pinning is a
    /// no-op (wgpu, a device opened with pinning off), though the buffer
    /// still takes part in transfers.
    pub fn is_pinned(&self) -> bool {
        self.locked
    }

    /// Unregisters the memory and gives the buffer back, unchanged but for
    /// what transfers wrote into it.
    pub fn unpin(self) -> B {
        let Self {
            registration, buf, ..
        } = self;
        drop(registration);
        buf
    }

    /// The buffer's bytes, for writing (the buffer's own length and
    /// capacity stay as they are).
    pub fn bytes_mut(&mut self) -> &mut [u8]
    where
        B: HostBufMut,
    {
        bytes_mut(&mut self.buf)
    }
}

impl<T: Pod + Send + Sync> Pinned<Vec<T>> {
    /// The elements, for writing.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        self.buf.as_mut_slice()
    }
}

impl<T: Pod + Send + Sync> Pinned<Box<[T]>> {
    /// The elements, for writing.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.buf
    }
}

impl<B: HostBuf> Deref for Pinned<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.buf
    }
}

impl<B: HostBuf + fmt::Debug> fmt::Debug for Pinned<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinned")
            .field("pinned", &self.locked)
            .field("buf", &self.buf)
            .finish()
    }
}

// SAFETY: the bytes are the owned buffer's, whose HostBuf guarantee holds:
// `buf` moves with self and is only ever mutated through `bytes_mut` or
// `as_mut_slice`, which change bytes, never the address or the length.
// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
unsafe impl<B: HostBuf> HostBuf for Pinned<B> {
    fn stable_ptr(&self) -> *const u8 {
        self.buf.stable_ptr()
    }
    fn bytes_len(&self) -> usize {
        self.buf.bytes_len()
    }
    fn is_registered(&self) -> bool {
        true
    }
}

// SAFETY: as above; the buffer's own HostBufMut guarantee covers writes.
// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
unsafe impl<B: HostBufMut> HostBufMut for Pinned<B> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.buf.stable_mut_ptr()
    }
}
