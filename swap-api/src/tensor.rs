//! Typed views: `Pod` elements over a host buffer, logical length apart from padded length.

use std::marker::PhantomData;

use bytemuck::Pod;

use crate::buffer::{HostBuf, HostBufMut, HostBuffer};
use crate::{Error, Result};

/// Rounds `bytes` up to a multiple of `align` (a power of two), checking overflow.
///
/// ```
/// use tensorswap_core::padded_len;
/// assert_eq!(padded_len(0, 4096)?, 0);
/// assert_eq!(padded_len(1, 4096)?, 4096);
/// assert_eq!(padded_len(4096, 4096)?, 4096);
/// assert!(padded_len(usize::MAX, 4096).is_err());
/// # Ok::<(), tensorswap_core::Error>(())
/// ```
pub fn padded_len(bytes: usize, align: usize) -> Result<usize> {
    if !align.is_power_of_two() {
        return Err(Error::Layout {
            reason: format!("alignment {align} is not a power of two"),
        });
    }
    bytes
        .checked_next_multiple_of(align)
        .ok_or_else(|| Error::Layout {
            reason: format!("{bytes} bytes padded to {align} overflows usize"),
        })
}

/// A host tensor: `len` elements of `T` at the start of a [`HostBuffer`] whose
/// length is padded for I/O.
///
/// Transfers move the logical bytes (`len * size_of::<T>()`); file I/O moves
/// the padded bytes. `f16`/`bf16` tensors use `u16` (or the `half` crate's
/// types, which are `Pod`).
///
/// ```
/// use tensorswap_core::{HostBuffer, HostTensor};
/// let mut t = HostTensor::<f32>::new(HostBuffer::new(4096)?, 1000)?;
/// t.as_mut_slice()[999] = 1.5;
/// assert_eq!(t.logical_bytes(), 4000);
/// assert_eq!(t.padded_bytes(), 4096);
/// assert_eq!(t.as_slice()[999], 1.5);
/// # Ok::<(), tensorswap_core::Error>(())
/// ```
pub struct HostTensor<T: Pod> {
    buf: HostBuffer,
    len: usize,
    _elem: PhantomData<T>,
}

impl<T: Pod> HostTensor<T> {
    /// Views the first `len` elements of `buf` as `T`.
    ///
    /// Fails with [`Error::Layout`] when `len` elements do not fit, or `T`
    /// needs more alignment than the buffer has.
    pub fn new(buf: HostBuffer, len: usize) -> Result<Self> {
        let bytes = Self::bytes_for(len)?;
        if bytes > buf.len() {
            return Err(Error::Layout {
                reason: format!(
                    "{len} elements of {} bytes need {bytes} bytes, the buffer has {}",
                    std::mem::size_of::<T>(),
                    buf.len()
                ),
            });
        }
        if buf.alignment() % std::mem::align_of::<T>() != 0 {
            return Err(Error::Layout {
                reason: format!(
                    "element alignment {} exceeds buffer alignment {}",
                    std::mem::align_of::<T>(),
                    buf.alignment()
                ),
            });
        }
        Ok(Self {
            buf,
            len,
            _elem: PhantomData,
        })
    }

    /// Bytes taken by `len` elements of `T`, checking overflow.
    pub fn bytes_for(len: usize) -> Result<usize> {
        len.checked_mul(std::mem::size_of::<T>())
            .ok_or_else(|| Error::Layout {
                reason: format!(
                    "{len} elements of {} bytes overflow usize",
                    std::mem::size_of::<T>()
                ),
            })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the elements.
    pub fn logical_bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }

    /// Bytes of the underlying, I/O-padded buffer.
    pub fn padded_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        bytemuck::cast_slice(&self.buf[..self.logical_bytes()])
    }

    /// The elements, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let n = self.logical_bytes();
        bytemuck::cast_slice_mut(&mut self.buf[..n])
    }

    /// The underlying buffer, padding included.
    pub fn buffer(&self) -> &HostBuffer {
        &self.buf
    }

    /// Gives the buffer back.
    pub fn into_buffer(self) -> HostBuffer {
        self.buf
    }
}

impl<T: Pod> std::fmt::Debug for HostTensor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostTensor")
            .field("elem", &std::any::type_name::<T>())
            .field("len", &self.len)
            .field("padded_bytes", &self.padded_bytes())
            .finish()
    }
}

// SAFETY: the bytes are the first logical_bytes() of the owned HostBuffer,
// whose heap block does not move with self.
unsafe impl<T: Pod + Send + Sync> HostBuf for HostTensor<T> {
    fn stable_ptr(&self) -> *const u8 {
        self.buf.stable_ptr()
    }
    fn bytes_len(&self) -> usize {
        self.logical_bytes()
    }
    fn is_registered(&self) -> bool {
        self.buf.is_registered()
    }
}

// SAFETY: same block; T: Pod accepts any bit pattern.
unsafe impl<T: Pod + Send + Sync> HostBufMut for HostTensor<T> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.buf.stable_mut_ptr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_views_keep_logical_and_padded_apart() {
        let t = HostTensor::<u16>::new(HostBuffer::new(4096).unwrap(), 3).unwrap();
        assert_eq!((t.len(), t.logical_bytes(), t.padded_bytes()), (3, 6, 4096));
        assert_eq!(t.bytes_len(), 6);
        let empty = HostTensor::<i8>::new(HostBuffer::new(0).unwrap(), 0).unwrap();
        assert!(empty.is_empty() && empty.as_slice().is_empty());
    }

    #[test]
    fn bad_layouts_are_typed_errors() {
        let too_many = HostTensor::<f32>::new(HostBuffer::new(4096).unwrap(), 1025);
        assert!(matches!(too_many, Err(Error::Layout { .. })));
        assert!(matches!(
            HostTensor::<u64>::bytes_for(usize::MAX),
            Err(Error::Layout { .. })
        ));
        assert!(matches!(padded_len(10, 3), Err(Error::Layout { .. })));
    }
}
