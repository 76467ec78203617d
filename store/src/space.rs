//! The data file's free space: extents of whole 4 KiB blocks, allocated
//! best fit, coalesced when released.

use std::collections::{BTreeMap, BTreeSet};

/// The unit of allocation and of checksums: values start on, and take
/// whole, 4 KiB blocks of the data file.
pub(crate) const BLOCK: u64 = 4096;

/// Most extents one value may be split into; a fuller fragmentation makes
/// room by eviction instead.
pub(crate) const MAX_EXTENTS: usize = 256;

/// A run of whole blocks of the data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Extent {
    /// File offset (a multiple of [`BLOCK`]).
    pub(crate) offset: u64,
    /// Length (a multiple of [`BLOCK`]).
    pub(crate) len: u64,
}

impl Extent {
    pub(crate) fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// Bytes of whole blocks that hold `len` bytes.
pub(crate) fn blocks_for(len: u64) -> u64 {
    len.div_ceil(BLOCK) * BLOCK
}

/// The free extents of an address space of `capacity` bytes.
#[derive(Debug)]
pub(crate) struct Space {
    by_offset: BTreeMap<u64, u64>,
    by_len: BTreeSet<(u64, u64)>,
    free: u64,
    capacity: u64,
}

impl Space {
    /// `capacity` bytes (whole blocks), of which `used` are taken. Used
    /// extents must lie inside the capacity and not overlap: the extent
    /// that breaks this is returned.
    pub(crate) fn with_used(
        capacity: u64,
        used: impl IntoIterator<Item = Extent>,
    ) -> Result<Self, Extent> {
        let capacity = capacity / BLOCK * BLOCK;
        let mut used: Vec<Extent> = used.into_iter().filter(|e| e.len > 0).collect();
        used.sort_unstable();
        let mut space = Self {
            by_offset: BTreeMap::new(),
            by_len: BTreeSet::new(),
            free: 0,
            capacity,
        };
        let mut at = 0;
        for extent in used {
            if extent.offset < at || extent.end() > capacity {
                return Err(extent);
            }
            space.insert(at, extent.offset - at);
            at = extent.end();
        }
        space.insert(at, capacity - at);
        Ok(space)
    }

    /// Bytes of the address space.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes free.
    pub(crate) fn free(&self) -> u64 {
        self.free
    }

    /// Extents holding `len` bytes: one extent, best fit, where one is
    /// large enough; else the largest ones, at most [`MAX_EXTENTS`]. `None`
    /// when the free space cannot hold it so.
    pub(crate) fn allocate(&mut self, len: u64) -> Option<Vec<Extent>> {
        let need = blocks_for(len);
        if need == 0 {
            return Some(Vec::new());
        }
        if need > self.free {
            return None;
        }
        if let Some(&(have, offset)) = self.by_len.range((need, 0)..).next() {
            self.remove(offset, have);
            self.insert(offset + need, have - need);
            return Some(vec![Extent { offset, len: need }]);
        }
        let mut taken = Vec::new();
        let mut left = need;
        while left > 0 && taken.len() < MAX_EXTENTS {
            let &(have, offset) = self.by_len.iter().next_back()?;
            let take = have.min(left);
            self.remove(offset, have);
            self.insert(offset + take, have - take);
            taken.push(Extent { offset, len: take });
            left -= take;
        }
        if left > 0 {
            self.release(&taken);
            return None;
        }
        Some(taken)
    }

    /// Gives extents back, merged with free neighbours. An extent that
    /// overlaps free space (a bug) is logged and kept out, so free space is
    /// never handed out twice.
    pub(crate) fn release(&mut self, extents: &[Extent]) {
        for &Extent {
            mut offset,
            mut len,
        } in extents
        {
            if len == 0 {
                continue;
            }
            let before = self
                .by_offset
                .range(..=offset)
                .next_back()
                .map(|(&o, &l)| (o, l));
            let after = self.by_offset.range(offset..).next().map(|(&o, &l)| (o, l));
            let overlaps = before.is_some_and(|(o, l)| o + l > offset)
                || after.is_some_and(|(o, _)| o < offset + len)
                || offset + len > self.capacity;
            if overlaps {
                tracing::error!(offset, len, "released space is already free; kept out");
                continue;
            }
            if let Some((o, l)) = before.filter(|(o, l)| o + l == offset) {
                self.remove(o, l);
                offset = o;
                len += l;
            }
            if let Some((o, l)) = after.filter(|&(o, _)| o == offset + len) {
                self.remove(o, l);
                len += l;
            }
            self.insert(offset, len);
        }
    }

    fn insert(&mut self, offset: u64, len: u64) {
        if len > 0 {
            self.by_offset.insert(offset, len);
            self.by_len.insert((len, offset));
            self.free += len;
        }
    }

    fn remove(&mut self, offset: u64, len: u64) {
        self.by_offset.remove(&offset);
        self.by_len.remove(&(len, offset));
        self.free -= len;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn check(space: &Space, taken: &[Vec<Extent>]) {
        let mut all: Vec<Extent> = taken.iter().flatten().copied().collect();
        all.extend(
            space
                .by_offset
                .iter()
                .map(|(&offset, &len)| Extent { offset, len }),
        );
        all.sort_unstable();
        let mut at = 0;
        for e in &all {
            assert_eq!(e.offset, at, "a gap or an overlap at {at}: {all:?}");
            at = e.end();
        }
        assert_eq!(at, space.capacity());
        // Free neighbours are always merged.
        let free: Vec<_> = space.by_offset.iter().collect();
        assert!(free.windows(2).all(|w| w[0].0 + w[0].1 < *w[1].0));
        assert_eq!(space.free, space.by_offset.values().sum::<u64>());
    }

    proptest! {
        #[test]
        fn allocations_and_releases_neither_overlap_nor_lose_space(
            ops in prop::collection::vec((0u64..40_000, any::<bool>()), 1..200)
        ) {
            let mut space = Space::with_used(256 * BLOCK, []).unwrap();
            let mut taken: Vec<Vec<Extent>> = Vec::new();
            for (len, release) in ops {
                if release && !taken.is_empty() {
                    let extents = taken.swap_remove(len as usize % taken.len());
                    space.release(&extents);
                } else if let Some(extents) = space.allocate(len) {
                    prop_assert_eq!(extents.iter().map(|e| e.len).sum::<u64>(), blocks_for(len));
                    taken.push(extents);
                } else {
                    prop_assert!(blocks_for(len) > space.free() || space.by_offset.len() > MAX_EXTENTS);
                }
                check(&space, &taken);
            }
        }
    }

    #[test]
    fn one_extent_best_fit_before_splitting() {
        let used = [
            Extent {
                offset: 0,
                len: BLOCK,
            },
            Extent {
                offset: 3 * BLOCK,
                len: BLOCK,
            },
        ];
        let mut space = Space::with_used(10 * BLOCK, used).unwrap();
        // Free: [1,3) two blocks and [4,10) six blocks; two blocks fit the first exactly.
        assert_eq!(
            space.allocate(2 * BLOCK),
            Some(vec![Extent {
                offset: BLOCK,
                len: 2 * BLOCK
            }])
        );
        // Seven blocks do not fit in one extent, nor at all now.
        assert_eq!(space.allocate(7 * BLOCK), None);
        assert_eq!(space.free(), 6 * BLOCK);
        space.release(&[Extent {
            offset: 0,
            len: BLOCK,
        }]);
        let split = space.allocate(7 * BLOCK).unwrap();
        assert_eq!(split.len(), 2);
    }

    #[test]
    fn used_extents_that_overlap_or_overrun_are_named() {
        let a = Extent {
            offset: 0,
            len: 2 * BLOCK,
        };
        let b = Extent {
            offset: BLOCK,
            len: BLOCK,
        };
        assert_eq!(Space::with_used(8 * BLOCK, [a, b]).unwrap_err(), b);
        let c = Extent {
            offset: 7 * BLOCK,
            len: 2 * BLOCK,
        };
        assert_eq!(Space::with_used(8 * BLOCK, [c]).unwrap_err(), c);
    }

    #[test]
    fn a_double_release_is_kept_out() {
        let mut space = Space::with_used(4 * BLOCK, []).unwrap();
        let got = space.allocate(BLOCK).unwrap();
        space.release(&got);
        space.release(&got);
        assert_eq!(space.free(), 4 * BLOCK);
    }
}
