//! The traits that let a transfer take ownership of host memory.

use bytemuck::Pod;

/// Host memory that a transfer may own while the device reads it.
///
/// Modelled on the io_uring rule (tokio-uring's `IoBuf`): the transfer takes
/// the buffer by value and gives it back on completion, so the address must
/// not change when the value is moved.
///
/// # Safety
/// Implementors guarantee that `stable_ptr()` is valid for reads of
/// `bytes_len()` bytes, and that both stay unchanged when `self` is moved,
/// as long as `self` is not dropped or mutated through other methods.
pub unsafe trait HostBuf: Send + Sync + 'static {
    /// Start of the bytes.
    fn stable_ptr(&self) -> *const u8;
    /// Number of bytes a transfer moves.
    fn bytes_len(&self) -> usize;
    /// True when whoever made the memory registers or page-locks it already
    /// (a pinned pool's slab, [`DeviceExt::alloc_host`](crate::DeviceExt::alloc_host)'s
    /// buffer, a [`Pinned`](crate::Pinned) buffer), so that
    /// [`DeviceExt::pin_memory`](crate::DeviceExt::pin_memory) refuses it
    /// rather than register the range twice. The default is false: plain
    /// memory.
    fn is_registered(&self) -> bool {
        false
    }
}

/// Host memory that a transfer may own while the device writes it.
///
/// # Safety
/// As for [`HostBuf`]; in addition `stable_mut_ptr()` returns the same address
/// as `stable_ptr()`, valid for writes of `bytes_len()` bytes, and any bit
/// pattern written there leaves `self` valid.
pub unsafe trait HostBufMut: HostBuf {
    /// Start of the bytes, for writing.
    fn stable_mut_ptr(&mut self) -> *mut u8;
}

// SAFETY: a Vec's heap block does not move when the Vec is moved; `len`
// elements are initialised; T: Pod makes every byte pattern a valid T.
unsafe impl<T: Pod + Send + Sync> HostBuf for Vec<T> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr().cast()
    }
    fn bytes_len(&self) -> usize {
        std::mem::size_of_val(self.as_slice())
    }
}

// SAFETY: as above.
unsafe impl<T: Pod + Send + Sync> HostBufMut for Vec<T> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr().cast()
    }
}

// SAFETY: a boxed slice's heap block does not move when the Box is moved.
unsafe impl<T: Pod + Send + Sync> HostBuf for Box<[T]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr().cast()
    }
    fn bytes_len(&self) -> usize {
        std::mem::size_of_val(&**self)
    }
}

// SAFETY: as above.
unsafe impl<T: Pod + Send + Sync> HostBufMut for Box<[T]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr().cast()
    }
}

/// The bytes of an owned host buffer, mutably.
pub fn bytes_mut<B: HostBufMut>(buf: &mut B) -> &mut [u8] {
    let len = buf.bytes_len();
    let ptr = buf.stable_mut_ptr();
    if len == 0 {
        return &mut [];
    }
    // SAFETY: HostBufMut guarantees ptr is valid for writes of bytes_len()
    // initialised bytes, any pattern allowed; `&mut buf` makes the access
    // exclusive for the slice's lifetime.
    unsafe { std::slice::from_raw_parts_mut(ptr, len) }
}
