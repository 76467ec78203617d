//! CRC32C per 4 KiB block of a file, recorded by writes and verified by
//! reads of any range: every block a read covers whole is checked.
//!
//! Blocks live in sparse groups of [`GROUP`] blocks, so memory follows the
//! bytes written (4 bytes per 4 KiB, about 1 MiB per GiB), not the largest
//! offset.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// Bytes per checksummed block: the smallest direct-I/O alignment, so every
/// aligned request is verified whole.
pub(crate) const BLOCK: u64 = 4096;
/// Blocks per group (4 MiB of file).
const GROUP: u64 = 1024;
const WORDS: usize = (GROUP / 64) as usize;

/// The CRCs of one group's blocks, and which of them are known.
struct Group {
    crcs: Box<[u32; GROUP as usize]>,
    known: [u64; WORDS],
}

impl Group {
    fn new() -> Self {
        Self {
            crcs: Box::new([0; GROUP as usize]),
            known: [0; WORDS],
        }
    }

    fn get(&self, i: usize) -> Option<u32> {
        (self.known[i / 64] >> (i % 64) & 1 == 1).then(|| self.crcs[i])
    }

    fn set(&mut self, i: usize, crc: u32) {
        self.crcs[i] = crc;
        self.known[i / 64] |= 1 << (i % 64);
    }

    fn clear(&mut self, i: usize) {
        self.known[i / 64] &= !(1 << (i % 64));
    }

    fn is_empty(&self) -> bool {
        self.known.iter().all(|&w| w == 0)
    }
}

/// A block whose bytes differ from what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// File offset of the block.
    pub(crate) offset: u64,
    /// Its length (a whole block).
    pub(crate) len: usize,
    pub(crate) expected: u32,
    pub(crate) actual: u32,
}

/// The checksums of one file's blocks.
#[derive(Default)]
pub(crate) struct ChecksumLog {
    groups: Mutex<BTreeMap<u64, Group>>,
}

impl std::fmt::Debug for ChecksumLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChecksumLog")
            .field("groups", &self.lock().len())
            .finish()
    }
}

impl ChecksumLog {
    /// Records the CRC of every block `bytes`, written at `offset`, covers
    /// whole; blocks it covers in part are no longer known. The CRCs are
    /// computed before the log is locked.
    pub(crate) fn record(&self, offset: u64, bytes: &[u8]) {
        let crcs: Vec<(u64, Option<u32>)> = blocks(offset, bytes.len())
            .map(|(block, whole)| (block, whole.map(|range| crc(&bytes[range]))))
            .collect();
        let mut groups = self.lock();
        for (block, crc) in crcs {
            match crc {
                Some(crc) => {
                    let group = groups.entry(block / GROUP).or_insert_with(Group::new);
                    group.set((block % GROUP) as usize, crc);
                }
                None => clear(&mut groups, block),
            }
        }
    }

    /// Forgets every block overlapping `offset..offset+len`.
    pub(crate) fn forget(&self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let mut groups = self.lock();
        let first = offset / BLOCK;
        let last = offset.saturating_add(len - 1) / BLOCK;
        let touched: Vec<u64> = groups
            .range(first / GROUP..=last / GROUP)
            .map(|(&g, _)| g)
            .collect();
        for g in touched {
            let (start, end) = (g * GROUP, g * GROUP + GROUP - 1);
            if first <= start && end <= last {
                groups.remove(&g);
            } else {
                for block in first.max(start)..=last.min(end) {
                    clear(&mut groups, block);
                }
            }
        }
    }

    /// Checks every known block `bytes`, read at `offset`, covers whole;
    /// the CRCs are computed after the log is unlocked.
    pub(crate) fn verify(&self, offset: u64, bytes: &[u8]) -> Result<(), Mismatch> {
        let known: Vec<(u64, std::ops::Range<usize>, u32)> = {
            let groups = self.lock();
            blocks(offset, bytes.len())
                .filter_map(|(block, whole)| {
                    let expected = groups
                        .get(&(block / GROUP))
                        .and_then(|g| g.get((block % GROUP) as usize))?;
                    Some((block, whole?, expected))
                })
                .collect()
        };
        for (block, range, expected) in known {
            let len = range.len();
            let actual = crc(&bytes[range]);
            if actual != expected {
                return Err(Mismatch {
                    offset: block * BLOCK,
                    len,
                    expected,
                    actual,
                });
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Group>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn clear(groups: &mut BTreeMap<u64, Group>, block: u64) {
    if let Some(group) = groups.get_mut(&(block / GROUP)) {
        group.clear((block % GROUP) as usize);
        if group.is_empty() {
            groups.remove(&(block / GROUP));
        }
    }
}

/// The blocks `offset..offset+len` touches: each block's index, and the
/// range of the request's bytes that is that whole block (`None` where the
/// request covers only part of it).
fn blocks(offset: u64, len: usize) -> impl Iterator<Item = (u64, Option<std::ops::Range<usize>>)> {
    let end = offset.saturating_add(len as u64);
    let first = offset / BLOCK;
    let count = if len == 0 {
        0
    } else {
        (end - 1) / BLOCK - first + 1
    };
    (first..first + count).map(move |block| {
        let (start, stop) = (block * BLOCK, block * BLOCK + BLOCK);
        let whole = (start >= offset && stop <= end)
            .then(|| (start - offset) as usize..(stop - offset) as usize);
        (block, whole)
    })
}

/// CRC32C of `bytes`.
pub(crate) fn crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bytes(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[test]
    fn any_sub_range_of_a_write_is_verified_block_by_block() {
        let log = ChecksumLog::default();
        let data = bytes(1, 10 * BLOCK as usize);
        log.record(BLOCK, &data);
        // Aligned and unaligned sub-ranges of the intact bytes verify.
        for (from, to) in [(0, data.len()), (4096, 8192), (100, 9000), (5000, 5001)] {
            log.verify(BLOCK + from as u64, &data[from..to]).unwrap();
        }
        // One flipped byte is caught by every read covering its block whole.
        let mut bad = data.clone();
        bad[3 * 4096 + 17] ^= 1;
        let m = log.verify(BLOCK, &bad).unwrap_err();
        assert_eq!((m.offset, m.len), (4 * BLOCK, 4096));
        let m = log
            .verify(BLOCK + 2 * 4096, &bad[2 * 4096..5 * 4096])
            .unwrap_err();
        assert_eq!(m.offset, 4 * BLOCK);
        // A read covering that block only in part cannot check it.
        log.verify(BLOCK + 3 * 4096 + 10, &bad[3 * 4096 + 10..3 * 4096 + 100])
            .unwrap();
    }

    #[test]
    fn a_partial_overwrite_forgets_its_edge_blocks_and_records_the_rest() {
        let log = ChecksumLog::default();
        let old = bytes(1, 4 * 4096);
        log.record(0, &old);
        let new = bytes(2, 4096 + 200);
        log.record(4000, &new); // covers block 1 whole, blocks 0 and 2 in part
        let mut file = old.clone();
        file[4000..4000 + new.len()].copy_from_slice(&new);
        log.verify(0, &file).unwrap();
        let groups = log.lock();
        let g = &groups[&0];
        assert_eq!((g.get(0), g.get(2)), (None, None));
        assert_eq!(g.get(1), Some(crc(&file[4096..8192])));
        assert_eq!(g.get(3), Some(crc(&old[3 * 4096..])));
    }

    #[test]
    fn memory_follows_bytes_written_not_offsets() {
        let log = ChecksumLog::default();
        log.record(1 << 50, &bytes(3, 8192));
        assert_eq!(log.lock().len(), 1);
        log.forget(0, u64::MAX);
        assert_eq!(log.lock().len(), 0);
    }

    proptest! {
        /// After any writes and forgets, a read of any range of the file's
        /// true bytes verifies, and flipping a byte of a block the read
        /// covers whole and whose last write covered it whole is caught.
        #[test]
        fn the_log_agrees_with_a_model(
            ops in proptest::collection::vec((0u64..40_000, 0usize..20_000, any::<u8>(), any::<bool>()), 1..12),
            read in (0u64..60_000, 1usize..30_000),
        ) {
            let log = ChecksumLog::default();
            let mut file = vec![0u8; 64 * 1024];
            let mut known = vec![false; file.len() / 4096];
            for (offset, len, seed, forget) in ops {
                let (o, e) = (offset as usize, offset as usize + len);
                if forget {
                    log.forget(offset, len as u64);
                } else {
                    let data = bytes(seed, len);
                    file[o..e].copy_from_slice(&data);
                    log.record(offset, &data);
                }
                for (b, k) in known.iter_mut().enumerate() {
                    let (s, t) = (b * 4096, b * 4096 + 4096);
                    if s < e && o < t && len > 0 {
                        *k = !forget && s >= o && t <= e;
                    }
                }
            }
            let (ro, rl) = (read.0 as usize, read.1.min(file.len() - read.0.min(60_000) as usize));
            let window = &file[ro..ro + rl];
            prop_assert!(log.verify(read.0, window).is_ok());
            if let Some(b) = (0..known.len()).find(|&b| known[b] && b * 4096 >= ro && b * 4096 + 4096 <= ro + rl) {
                let mut bad = window.to_vec();
                bad[b * 4096 - ro + 7] ^= 0x40;
                let m = log.verify(read.0, &bad).unwrap_err();
                prop_assert_eq!(m.offset, (b * 4096) as u64);
            }
        }
    }
}
