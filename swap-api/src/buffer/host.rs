//! Page-aligned host memory, optionally registered (pinned) with a device.

use std::any::Any;
use std::fmt;
use std::ops::{Deref, DerefMut};

use super::{HostBuf, HostBufMut};
use crate::sys::aligned::AlignedAlloc;
use crate::sys::page_size;
use crate::Result;

/// Owned host memory aligned for DMA and direct I/O, zero-initialised.
///
/// Made by [`HostBuffer::new`] (plain, page-aligned) or by
/// [`crate::DeviceExt::alloc_host`] (registered with a device, so transfers
/// run at full speed). The registration is released before the memory is
/// freed.
///
/// ```
/// use tensorswap_core::HostBuffer;
/// let mut buf = HostBuffer::new(10_000)?;
/// buf[..4].copy_from_slice(b"abcd");
/// assert_eq!(buf.len(), 10_000);
/// assert_eq!(buf.as_ptr() as usize % 4096, 0);
/// # Ok::<(), tensorswap_core::Error>(())
/// ```
pub struct HostBuffer {
    // Dropped in Drop before `alloc`: a registration must never outlive its memory.
    registration: Option<Box<dyn Any + Send + Sync>>,
    pinned: bool,
    alloc: AlignedAlloc,
}

impl HostBuffer {
    /// Allocates `len` zeroed bytes aligned to the page size.
    pub fn new(len: usize) -> Result<Self> {
        Self::with_alignment(len, page_size())
    }

    /// Allocates `len` zeroed bytes aligned to `align` (a power of two;
    /// raised to the page size when smaller).
    pub fn with_alignment(len: usize, align: usize) -> Result<Self> {
        Ok(Self {
            registration: None,
            pinned: false,
            alloc: AlignedAlloc::zeroed(len, align.max(page_size()))?,
        })
    }

    /// Attaches a device registration that must be dropped before the memory.
    pub(crate) fn attach_registration(
        &mut self,
        registration: Box<dyn Any + Send + Sync>,
        pinned: bool,
    ) {
        self.registration = Some(registration);
        self.pinned = pinned;
    }

    /// True when the memory is page-locked by a device registration.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// Alignment of the start address.
    pub fn alignment(&self) -> usize {
        self.alloc.align()
    }
}

impl Deref for HostBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.alloc.as_slice()
    }
}

impl DerefMut for HostBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.alloc.as_mut_slice()
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        drop(self.registration.take());
    }
}

impl fmt::Debug for HostBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostBuffer")
            .field("len", &self.len())
            .field("align", &self.alignment())
            .field("pinned", &self.pinned)
            .finish()
    }
}

// SAFETY: the bytes live in an AlignedAlloc heap block owned by self, which
// does not move when self is moved; all of it is initialised (zeroed).
unsafe impl HostBuf for HostBuffer {
    fn stable_ptr(&self) -> *const u8 {
        self.alloc.as_ptr()
    }
    fn bytes_len(&self) -> usize {
        self.alloc.len()
    }
    fn is_registered(&self) -> bool {
        self.registration.is_some()
    }
}

// SAFETY: same block as stable_ptr; any byte pattern is a valid [u8].
unsafe impl HostBufMut for HostBuffer {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.alloc.as_mut_ptr()
    }
}
