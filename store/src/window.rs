//! A caller's buffer shared by the file requests that move its parts (a
//! value split over several extents), and given back whole once they are
//! done. The only `unsafe` code of the crate.

use std::cell::UnsafeCell;
use std::ops::Range;
use std::sync::Arc;

use tensorswap_core::{HostBuf, HostBufMut};

/// A host buffer's bytes.
pub(crate) fn host_bytes<B: HostBuf>(buf: &B) -> &[u8] {
    // SAFETY: HostBuf promises stable_ptr is valid for reads of bytes_len
    // bytes while the buffer is alive and not mutated: the borrow keeps it
    // alive, and the only mutation while shared is through ReadWindow, which
    // never shares a buffer with a WriteShare or this borrow.
    unsafe { std::slice::from_raw_parts(buf.stable_ptr(), buf.bytes_len()) }
}

/// A buffer being written out: every window only reads it, and so may the
/// store (its CRCs are computed while the writes run).
pub(crate) struct WriteShare<B: HostBuf> {
    buf: Arc<B>,
}

impl<B: HostBuf> WriteShare<B> {
    pub(crate) fn new(buf: B) -> Self {
        Self { buf: Arc::new(buf) }
    }

    /// The buffer's bytes (windows only read them too).
    pub(crate) fn bytes(&self) -> &[u8] {
        host_bytes(&*self.buf)
    }

    /// A window on `range` of the buffer (inside it).
    pub(crate) fn window(&self, range: Range<usize>) -> WriteWindow<B> {
        assert!(range.start <= range.end && range.end <= self.buf.bytes_len());
        WriteWindow {
            buf: Arc::clone(&self.buf),
            range,
        }
    }

    /// The buffer back, once every window is dropped; else the share.
    pub(crate) fn into_inner(self) -> Result<B, Self> {
        Arc::try_unwrap(self.buf).map_err(|buf| Self { buf })
    }
}

/// Part of a buffer being written out.
pub(crate) struct WriteWindow<B: HostBuf> {
    buf: Arc<B>,
    range: Range<usize>,
}

// SAFETY: the window's bytes lie inside the shared buffer (checked when it
// was made), which the Arc keeps alive and unmoved, and which nothing
// mutates while it is shared.
unsafe impl<B: HostBuf> HostBuf for WriteWindow<B> {
    fn stable_ptr(&self) -> *const u8 {
        self.buf.stable_ptr().wrapping_add(self.range.start)
    }
    fn bytes_len(&self) -> usize {
        self.range.len()
    }
    fn is_registered(&self) -> bool {
        self.buf.is_registered()
    }
}

/// A buffer being filled by reads into disjoint windows.
pub(crate) struct ReadShare<B: HostBufMut> {
    inner: Arc<ReadInner<B>>,
}

struct ReadInner<B> {
    /// Not touched while windows live: they write through `ptr`.
    buf: UnsafeCell<B>,
    ptr: *mut u8,
}

// SAFETY: `buf` is only reached through `into_inner`, once the Arc is
// unique; the windows write disjoint ranges through `ptr`.
unsafe impl<B: Send> Send for ReadInner<B> {}
// SAFETY: as above: no shared access to `buf` itself exists.
unsafe impl<B: Send + Sync> Sync for ReadInner<B> {}

impl<B: HostBufMut> ReadShare<B> {
    /// Shares `buf` among windows on `ranges`, which must be inside it and
    /// disjoint; otherwise the buffer back.
    pub(crate) fn split(
        mut buf: B,
        ranges: &[Range<usize>],
    ) -> Result<(Self, Vec<ReadWindow<B>>), B> {
        let mut sorted: Vec<&Range<usize>> = ranges.iter().collect();
        sorted.sort_by_key(|r| r.start);
        let fits = sorted
            .iter()
            .all(|r| r.start <= r.end && r.end <= buf.bytes_len())
            && sorted.windows(2).all(|w| w[0].end <= w[1].start);
        if !fits {
            return Err(buf);
        }
        let ptr = buf.stable_mut_ptr();
        let inner = Arc::new(ReadInner {
            buf: UnsafeCell::new(buf),
            ptr,
        });
        let windows = ranges
            .iter()
            .map(|range| ReadWindow {
                inner: Arc::clone(&inner),
                range: range.clone(),
            })
            .collect();
        Ok((Self { inner }, windows))
    }

    /// The buffer back, once every window is dropped; else the share.
    pub(crate) fn into_inner(self) -> Result<B, Self> {
        Arc::try_unwrap(self.inner)
            .map(|inner| inner.buf.into_inner())
            .map_err(|inner| Self { inner })
    }
}

/// Part of a buffer being filled by a read.
pub(crate) struct ReadWindow<B: HostBufMut> {
    inner: Arc<ReadInner<B>>,
    range: Range<usize>,
}

// SAFETY: the range lies inside the buffer and no other window's range
// overlaps it (checked by `split`); the Arc keeps the buffer alive and
// unmoved, and nobody else reaches it while windows live.
unsafe impl<B: HostBufMut> HostBuf for ReadWindow<B> {
    fn stable_ptr(&self) -> *const u8 {
        self.inner.ptr.wrapping_add(self.range.start)
    }
    fn bytes_len(&self) -> usize {
        self.range.len()
    }
}

// SAFETY: as above; the pointer came from stable_mut_ptr, valid for writes,
// and any bytes written leave B valid (HostBufMut's contract).
unsafe impl<B: HostBufMut> HostBufMut for ReadWindow<B> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.inner.ptr.wrapping_add(self.range.start)
    }
}

#[cfg(test)]
mod tests {
    use tensorswap_core::buffer::bytes_mut;

    use super::*;

    #[test]
    fn disjoint_windows_fill_the_buffer_which_comes_back_whole() {
        let (share, windows) = ReadShare::split(vec![0u8; 10], &[6..10, 0..6]).unwrap();
        for (i, mut w) in windows.into_iter().enumerate() {
            bytes_mut(&mut w).fill(i as u8 + 1);
            assert!(i > 0 || w.bytes_len() == 4);
        }
        let buf = share.into_inner().ok().unwrap();
        assert_eq!(buf, [2, 2, 2, 2, 2, 2, 1, 1, 1, 1]);
    }

    #[test]
    fn overlapping_or_outside_windows_are_refused() {
        assert!(ReadShare::split(vec![0u8; 10], &[0..6, 5..10]).is_err());
        assert!(ReadShare::split(vec![0u8; 10], std::slice::from_ref(&(0..11))).is_err());
    }

    #[test]
    fn a_shared_buffer_comes_back_only_when_no_window_is_left() {
        let share = WriteShare::new(vec![1u8, 2, 3, 4]);
        let w = share.window(1..3);
        assert_eq!(w.bytes_len(), 2);
        let share = share.into_inner().err().unwrap();
        assert_eq!(share.bytes(), [1, 2, 3, 4]);
        drop(w);
        assert_eq!(share.into_inner().ok().unwrap(), [1, 2, 3, 4]);
    }
}
