//! The crate's unsafe code: candle's host storage seen as bytes, and typed
//! vectors filled byte by byte.
//!
//! Only the element types of [`Plain`] are ever viewed this way: plain
//! numbers with no padding, for which every bit pattern is a value.

use std::mem::{size_of, MaybeUninit};

use candle_core::WithDType;
use float8::F8E4M3;
use half::{bf16, f16};

/// Element types with no padding and no invalid bit patterns.
///
/// # Safety
///
/// Implemented only for such types.
pub(crate) unsafe trait Plain: WithDType {}

// SAFETY: all are integers or IEEE-like floats of 1, 2, 4 or 8 bytes with no
// padding; every bit pattern is a value (NaNs included).
unsafe impl Plain for u8 {}
// SAFETY: as above.
unsafe impl Plain for u32 {}
// SAFETY: as above.
unsafe impl Plain for i16 {}
// SAFETY: as above.
unsafe impl Plain for i32 {}
// SAFETY: as above.
unsafe impl Plain for i64 {}
// SAFETY: as above.
unsafe impl Plain for bf16 {}
// SAFETY: as above.
unsafe impl Plain for f16 {}
// SAFETY: as above.
unsafe impl Plain for f32 {}
// SAFETY: as above.
unsafe impl Plain for f64 {}
// SAFETY: as above (`F8E4M3` is a `#[repr(transparent)]` `u8`).
unsafe impl Plain for F8E4M3 {}

/// The bytes of a slice of plain elements.
pub(crate) fn bytes_of<T: Plain>(elements: &[T]) -> &[u8] {
    // SAFETY: `Plain` types have no padding, so every byte of the slice is
    // initialised; u8 has alignment 1, and the length is the slice's size.
    unsafe {
        std::slice::from_raw_parts(
            elements.as_ptr().cast::<u8>(),
            std::mem::size_of_val(elements),
        )
    }
}

/// A vector of `T` written in order, byte by byte, as a file's bytes
/// arrive; it becomes a `Vec<T>` once every byte is written.
pub(crate) struct Filling<T: Plain> {
    vec: Vec<T>,
    elements: usize,
    written: usize,
}

impl<T: Plain> Filling<T> {
    /// Room for `bytes` bytes (a multiple of the element size).
    pub(crate) fn new(bytes: usize) -> Option<Self> {
        if bytes % size_of::<T>() != 0 {
            return None;
        }
        let elements = bytes / size_of::<T>();
        let mut vec = Vec::new();
        vec.try_reserve_exact(elements).ok()?;
        Some(Self {
            vec,
            elements,
            written: 0,
        })
    }

    /// Appends `src`; false (and nothing written) when it does not fit.
    pub(crate) fn push(&mut self, src: &[u8]) -> bool {
        let total = self.elements * size_of::<T>();
        if src.len() > total - self.written {
            return false;
        }
        let spare: &mut [MaybeUninit<T>] = &mut self.vec.spare_capacity_mut()[..self.elements];
        // SAFETY: `spare` is `total` bytes of this vector's allocation, not
        // yet part of its length; viewing it as bytes is allowed because
        // MaybeUninit<u8> has alignment 1 and no validity requirement.
        let room = unsafe {
            std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<MaybeUninit<u8>>(), total)
        };
        for (dst, &byte) in room[self.written..self.written + src.len()]
            .iter_mut()
            .zip(src)
        {
            dst.write(byte);
        }
        self.written += src.len();
        true
    }

    /// The vector, once every byte has been written.
    pub(crate) fn finish(mut self) -> Option<Vec<T>> {
        if self.written != self.elements * size_of::<T>() {
            return None;
        }
        // SAFETY: the first `elements` elements are initialised: all their
        // bytes were written, and every bit pattern is a `T` (`Plain`).
        unsafe { self.vec.set_len(self.elements) };
        Some(self.vec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filling_in_pieces_gives_the_values() {
        let values: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bytes = bytes_of(&values);
        let mut fill = Filling::<f32>::new(bytes.len()).unwrap();
        for piece in bytes.chunks(7) {
            assert!(fill.push(piece));
        }
        assert!(!fill.push(&[0]), "a byte past the end is refused");
        assert_eq!(fill.finish().unwrap(), values);
    }

    #[test]
    fn an_unfinished_or_odd_filling_is_refused() {
        assert!(Filling::<u32>::new(6).is_none());
        let mut fill = Filling::<u32>::new(8).unwrap();
        assert!(fill.push(&[1, 2, 3]));
        assert!(fill.finish().is_none());
    }
}
