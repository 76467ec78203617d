//! CRC32C per written request, verified when exactly that range is read back.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Disjoint `offset -> (len, crc32c)` records of one file.
#[derive(Debug, Default)]
pub(crate) struct ChecksumLog {
    records: Mutex<BTreeMap<u64, (usize, u32)>>,
}

impl ChecksumLog {
    /// Records the CRC of `offset..offset+len`, dropping every record it overlaps.
    pub(crate) fn record(&self, offset: u64, len: usize, crc: u32) {
        let mut records = self.lock();
        remove_overlapping(&mut records, offset, len as u64);
        records.insert(offset, (len, crc));
    }

    /// Drops every record overlapping `offset..offset+len`.
    pub(crate) fn forget(&self, offset: u64, len: u64) {
        remove_overlapping(&mut self.lock(), offset, len);
    }

    /// The CRC recorded for exactly `offset..offset+len`, if any.
    pub(crate) fn expected(&self, offset: u64, len: usize) -> Option<u32> {
        match self.lock().get(&offset) {
            Some(&(l, crc)) if l == len => Some(crc),
            _ => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, (usize, u32)>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn remove_overlapping(records: &mut BTreeMap<u64, (usize, u32)>, offset: u64, len: u64) {
    let end = offset.saturating_add(len);
    // Records are disjoint, so their ends grow with their starts: walk back
    // from the last record starting before `end` until one ends before `offset`.
    let doomed: Vec<u64> = records
        .range(..end.max(offset.saturating_add(1)))
        .rev()
        .take_while(|(&start, &(l, _))| start.saturating_add(l as u64) > offset)
        .map(|(&start, _)| start)
        .collect();
    for start in doomed {
        records.remove(&start);
    }
}

/// CRC32C of `bytes`.
pub(crate) fn crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_records_are_replaced_and_neighbours_kept() {
        let log = ChecksumLog::default();
        log.record(0, 100, 1);
        log.record(100, 100, 2);
        log.record(200, 100, 3);
        log.record(150, 10, 4); // overlaps only the second
        assert_eq!(log.expected(0, 100), Some(1));
        assert_eq!(log.expected(100, 100), None);
        assert_eq!(log.expected(150, 10), Some(4));
        assert_eq!(log.expected(200, 100), Some(3));
        assert_eq!(log.expected(200, 99), None);
        log.forget(0, 1);
        assert_eq!(log.expected(0, 100), None);
        assert_eq!(log.expected(150, 10), Some(4));
    }

    #[test]
    fn zero_length_records_do_not_swallow_neighbours() {
        let log = ChecksumLog::default();
        log.record(0, 10, 1);
        log.record(10, 0, 2);
        assert_eq!(log.expected(0, 10), Some(1));
        assert_eq!(log.expected(10, 0), Some(2));
    }
}
