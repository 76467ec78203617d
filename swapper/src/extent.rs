//! Space in a swap file: aligned extents, first fit, freed space reused.

use std::collections::BTreeMap;

/// A byte range of a swap file owned by one tensor or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// Hands out aligned extents of one growing file.
///
/// Freed extents are merged with free neighbours and reused first-fit; the
/// file grows only when no free range is large enough.
#[derive(Debug)]
pub(crate) struct Extents {
    align: u64,
    /// End of the highest extent handed out.
    end: u64,
    /// Free ranges below `end`: offset -> length.
    free: BTreeMap<u64, u64>,
}

impl Extents {
    /// An empty file whose extents start at multiples of `align` (a power of two).
    pub(crate) fn new(align: usize) -> Self {
        Self {
            align: align as u64,
            end: 0,
            free: BTreeMap::new(),
        }
    }

    /// Reserves `len` bytes rounded up to the alignment; `None` on overflow.
    pub(crate) fn alloc(&mut self, len: usize) -> Option<Extent> {
        let len = (len as u64).checked_next_multiple_of(self.align)?;
        if len == 0 {
            return Some(Extent { offset: 0, len: 0 });
        }
        let fit = self.free.iter().find(|(_, &free)| free >= len);
        if let Some((&offset, &free)) = fit {
            self.free.remove(&offset);
            if free > len {
                self.free.insert(offset + len, free - len);
            }
            return Some(Extent { offset, len });
        }
        let offset = self.end;
        self.end = offset.checked_add(len)?;
        Some(Extent { offset, len })
    }

    /// Returns an extent for reuse, merging it with free neighbours.
    pub(crate) fn free(&mut self, extent: Extent) {
        if extent.len == 0 {
            return;
        }
        let (mut offset, mut len) = (extent.offset, extent.len);
        if let Some((&before, &before_len)) = self.free.range(..offset).next_back() {
            if before + before_len == offset {
                self.free.remove(&before);
                offset = before;
                len += before_len;
            }
        }
        if let Some(after_len) = self.free.remove(&(offset + len)) {
            len += after_len;
        }
        if offset + len == self.end {
            self.end = offset;
        } else {
            self.free.insert(offset, len);
        }
    }

    /// End of the highest extent in use: the file's useful length.
    #[cfg(test)]
    pub(crate) fn end(&self) -> u64 {
        self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reuses_and_merges_freed_space() {
        let mut e = Extents::new(4096);
        let a = e.alloc(1).unwrap();
        let b = e.alloc(5000).unwrap();
        let c = e.alloc(4096).unwrap();
        assert_eq!(
            (a.offset, a.len, b.offset, b.len, c.offset),
            (0, 4096, 4096, 8192, 12288)
        );
        e.free(a);
        e.free(b);
        // a and b merged: a 3-page tensor fits at 0.
        assert_eq!(e.alloc(12288).unwrap().offset, 0);
        e.free(c);
        assert_eq!(e.end(), 12288);
        assert_eq!(e.alloc(0).unwrap().len, 0);
        assert!(e.alloc(usize::MAX).is_none());
    }

    proptest! {
        /// Live extents never overlap, and freeing everything empties the file.
        #[test]
        fn extents_never_overlap(ops in proptest::collection::vec((any::<bool>(), 1usize..20_000), 1..60)) {
            let mut e = Extents::new(512);
            let mut live: Vec<Extent> = Vec::new();
            for (alloc, n) in ops {
                if alloc || live.is_empty() {
                    let x = e.alloc(n).unwrap();
                    prop_assert_eq!(x.offset % 512, 0);
                    prop_assert!(x.len >= n as u64);
                    for y in &live {
                        prop_assert!(x.offset + x.len <= y.offset || y.offset + y.len <= x.offset);
                    }
                    live.push(x);
                } else {
                    e.free(live.swap_remove(n % live.len()));
                }
            }
            for x in live.drain(..) {
                e.free(x);
            }
            prop_assert_eq!(e.end(), 0);
            prop_assert!(e.free.is_empty());
        }
    }
}
