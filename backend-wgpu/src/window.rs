//! Copy alignment: the 4-byte aligned device window a byte range needs, cut
//! into staging-sized pieces.
//!
//! wgpu copies between buffers only at offsets and sizes that are multiples
//! of [`wgpu::COPY_BUFFER_ALIGNMENT`] (4). A transfer of `len` bytes at
//! `offset` therefore moves the aligned window around it; the bytes of the
//! window outside the request (at most 3 at each end) are the *edges*, which
//! an upload must write back unchanged.

use std::ops::Range;

/// wgpu's copy alignment in bytes.
pub(crate) const ALIGN: u64 = wgpu::COPY_BUFFER_ALIGNMENT;

/// Rounds `n` up to the copy alignment.
pub(crate) const fn align_up(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

const fn align_down(n: u64) -> u64 {
    n / ALIGN * ALIGN
}

/// A requested byte range and the aligned device window that covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// First requested byte.
    offset: u64,
    /// One past the last requested byte.
    end: u64,
    /// Aligned start (`<= offset`).
    start: u64,
    /// Aligned end (`>= end`).
    stop: u64,
}

/// One copy of a window: device bytes `device`, of which the requested ones
/// sit at `staged` inside the staging buffer and at `host` in host memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    /// Aligned device range copied to or from staging offset 0.
    pub(crate) device: Range<u64>,
    /// Where the requested bytes lie in the staging buffer.
    pub(crate) staged: Range<usize>,
    /// Where the same bytes lie in the host buffer.
    pub(crate) host: Range<usize>,
}

impl Piece {
    /// Bytes the copy moves (a multiple of the copy alignment).
    pub(crate) fn size(&self) -> u64 {
        self.device.end - self.device.start
    }
}

impl Window {
    /// The window of `len` bytes at `offset` (the caller checked that the
    /// range fits in the buffer, so `offset + len` does not overflow).
    pub(crate) fn new(offset: usize, len: usize) -> Self {
        let offset = offset as u64;
        let end = offset + len as u64;
        Self {
            offset,
            end,
            start: align_down(offset),
            stop: align_up(end),
        }
    }

    /// Device offset of the aligned word holding the first requested byte,
    /// when the request starts inside it (its leading bytes must be kept).
    pub(crate) fn head_word(&self) -> Option<u64> {
        (self.offset != self.end && self.offset != self.start).then_some(self.start)
    }

    /// Device offset of the aligned word holding the last requested byte,
    /// when the request ends inside it (its trailing bytes must be kept).
    pub(crate) fn tail_word(&self) -> Option<u64> {
        (self.offset != self.end && self.end != self.stop).then(|| self.stop - ALIGN)
    }

    /// Bytes of the window before the request (0..=3).
    pub(crate) fn head_len(&self) -> usize {
        (self.offset - self.start) as usize
    }

    /// Bytes of the window after the request (0..=3).
    pub(crate) fn tail_len(&self) -> usize {
        (self.stop - self.end) as usize
    }

    /// The window cut into pieces of at most `chunk` bytes (`chunk` is a
    /// positive multiple of the copy alignment); none for an empty request.
    pub(crate) fn pieces(&self, chunk: u64) -> impl Iterator<Item = Piece> + '_ {
        debug_assert!(chunk > 0 && chunk % ALIGN == 0);
        let count = if self.offset == self.end {
            0
        } else {
            (self.stop - self.start).div_ceil(chunk)
        };
        (0..count).map(move |i| {
            let from = self.start + i * chunk;
            let to = (from + chunk).min(self.stop);
            let first = from.max(self.offset);
            let last = to.min(self.end);
            Piece {
                device: from..to,
                staged: (first - from) as usize..(last - from) as usize,
                host: (first - self.offset) as usize..(last - self.offset) as usize,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn aligned_requests_have_no_edges() {
        let w = Window::new(8, 16);
        assert_eq!((w.head_word(), w.tail_word()), (None, None));
        let pieces: Vec<_> = w.pieces(8).collect();
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[1].device, 16..24);
        assert_eq!(pieces[1].staged, 0..8);
        assert_eq!(pieces[1].host, 8..16);
    }

    #[test]
    fn unaligned_requests_keep_their_edges() {
        // Bytes 5..7 live in the word at 4; bytes 1 and 4 of it are edges.
        let w = Window::new(5, 2);
        assert_eq!((w.head_word(), w.tail_word()), (Some(4), Some(4)));
        assert_eq!((w.head_len(), w.tail_len()), (1, 1));
        let pieces: Vec<_> = w.pieces(4096).collect();
        assert_eq!(
            pieces,
            vec![Piece {
                device: 4..8,
                staged: 1..3,
                host: 0..2
            }]
        );
        let empty = Window::new(3, 0);
        assert_eq!(empty.pieces(4).count(), 0);
        assert_eq!((empty.head_word(), empty.tail_word()), (None, None));
        assert_eq!(Window::new(0, 0).tail_word(), None);
    }

    proptest! {
        /// The pieces tile the aligned window in order, each aligned and at
        /// most a chunk, and their requested bytes tile the request exactly.
        #[test]
        fn pieces_tile_the_request(offset in 0usize..10_000, len in 0usize..10_000, words in 1u64..64) {
            let chunk = words * ALIGN;
            let w = Window::new(offset, len);
            let mut device = align_down(offset as u64);
            let mut host = 0;
            for piece in w.pieces(chunk) {
                prop_assert_eq!(piece.device.start, device);
                prop_assert!(piece.device.start % ALIGN == 0 && piece.size() % ALIGN == 0);
                prop_assert!(piece.size() <= chunk && piece.size() > 0);
                prop_assert_eq!(piece.host.start, host);
                prop_assert_eq!(piece.staged.len(), piece.host.len());
                prop_assert_eq!(piece.device.start + piece.staged.start as u64, (offset + host) as u64);
                prop_assert!(piece.staged.end as u64 <= piece.size());
                device = piece.device.end;
                host = piece.host.end;
            }
            prop_assert_eq!(host, len);
            if len > 0 {
                prop_assert_eq!(device, align_up((offset + len) as u64));
            }
        }
    }
}
