//! Cutting a list of tensors into slab-sized batches: large tensors stream
//! through several slabs, small ones share a slab.

/// One tensor's bytes to move: where they live in the file and how many.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    /// Index of the tensor in the caller's list.
    pub(crate) item: usize,
    /// File offset of the tensor's extent.
    pub(crate) file_offset: u64,
    /// Bytes of the elements.
    pub(crate) logical: usize,
    /// Bytes in the file (a multiple of the alignment).
    pub(crate) padded: usize,
}

/// A piece of one tensor that moves through one slab part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Index of the tensor in the caller's list.
    pub(crate) item: usize,
    /// Offset of the piece in the tensor.
    pub(crate) item_offset: usize,
    /// Element bytes in the piece (what device copies move).
    pub(crate) len: usize,
    /// Bytes of the piece in the file and in its slab part.
    pub(crate) padded: usize,
    /// File offset of the piece.
    pub(crate) file_offset: u64,
}

/// Cuts `spans` into batches that each fit one slab of `slab` bytes.
///
/// A tensor that fits in a slab is never split, so a tensor is always cut
/// at the same places (multiples of `slab`) whatever else is in the list:
/// reads then match the writes exactly, and checksums verify.
pub(crate) fn batches(spans: &[Span], slab: usize) -> Vec<Vec<Chunk>> {
    let mut out: Vec<Vec<Chunk>> = Vec::new();
    let mut current: Vec<Chunk> = Vec::new();
    let mut used = 0;
    for span in spans.iter().filter(|s| s.padded > 0) {
        if used + span.padded.min(slab) > slab {
            out.push(std::mem::take(&mut current));
            used = 0;
        }
        let mut offset = 0;
        while offset < span.padded {
            let padded = (span.padded - offset).min(slab);
            current.push(Chunk {
                item: span.item,
                item_offset: offset,
                len: span.logical.saturating_sub(offset).min(padded),
                padded,
                file_offset: span.file_offset + offset as u64,
            });
            used += padded;
            offset += padded;
            if used == slab {
                out.push(std::mem::take(&mut current));
                used = 0;
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn span(item: usize, file_offset: u64, logical: usize, align: usize) -> Span {
        Span {
            item,
            file_offset,
            logical,
            padded: logical.next_multiple_of(align),
        }
    }

    #[test]
    fn small_tensors_share_and_large_ones_stream() {
        let spans = [
            span(0, 0, 100, 512),
            span(1, 512, 600, 512),
            span(2, 4096, 2500, 512),
        ];
        let b = batches(&spans, 2048);
        let shape: Vec<Vec<(usize, usize, usize)>> = b
            .iter()
            .map(|batch| batch.iter().map(|c| (c.item, c.len, c.padded)).collect())
            .collect();
        assert_eq!(
            shape,
            vec![
                vec![(0, 100, 512), (1, 600, 1024)],
                vec![(2, 2048, 2048)],
                vec![(2, 452, 512)],
            ]
        );
        assert_eq!(b[2][0].file_offset, 4096 + 2048);
    }

    proptest! {
        /// Every byte of every tensor is in exactly one chunk, batches fit
        /// a slab, and each tensor is cut the same way whatever surrounds it.
        #[test]
        fn chunks_cover_each_tensor_once(sizes in proptest::collection::vec(0usize..10_000, 0..12), slab_pages in 1usize..6) {
            let (align, slab) = (512, 512 * slab_pages);
            let mut offset = 0u64;
            let spans: Vec<Span> = sizes.iter().enumerate().map(|(i, &n)| {
                let s = span(i, offset, n, align);
                offset += s.padded as u64;
                s
            }).collect();
            for batch in batches(&spans, slab) {
                prop_assert!(batch.iter().map(|c| c.padded).sum::<usize>() <= slab);
            }
            for s in &spans {
                let mine: Vec<Chunk> = batches(&spans, slab).into_iter().flatten().filter(|c| c.item == s.item).collect();
                let alone: Vec<Chunk> = batches(&[*s], slab).into_iter().flatten().collect();
                prop_assert_eq!(&mine, &alone);
                prop_assert_eq!(mine.iter().map(|c| c.len).sum::<usize>(), s.logical);
                prop_assert_eq!(mine.iter().map(|c| c.padded).sum::<usize>(), s.padded);
            }
        }
    }
}
