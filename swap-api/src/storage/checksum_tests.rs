//! The checksum log against a file in memory and a model of it.

use std::cell::RefCell;

use proptest::prelude::*;

use super::*;

fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// A file in memory, written and read as the engine's pieces do: cut at
/// block boundaries, whole blocks from the piece's bytes, partial ones
/// through the file.
#[derive(Default)]
struct File {
    log: ChecksumLog,
    bytes: RefCell<Vec<u8>>,
}

impl File {
    fn read_block(&self, at: u64, buf: &mut [u8]) -> io::Result<usize> {
        let bytes = self.bytes.borrow();
        let from = (at as usize).min(bytes.len());
        let n = buf.len().min(bytes.len() - from);
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        Ok(n)
    }

    /// Pieces as the engine cuts them: at block boundaries, with a
    /// partial tail block in the same piece as the whole ones before it.
    fn pieces(offset: u64, len: usize) -> Vec<(u64, usize)> {
        let mut out = Vec::new();
        let mut pos = offset;
        let end = offset + len as u64;
        while pos < end {
            let next = if pos % BLOCK == 0 {
                end.min(pos + 3 * BLOCK)
            } else {
                ((pos / BLOCK + 1) * BLOCK).min(end)
            };
            out.push((pos, (next - pos) as usize));
            pos = next;
        }
        out
    }

    fn write(&self, offset: u64, data: &[u8]) {
        let pieces = Self::pieces(offset, data.len());
        for &(at, len) in &pieces {
            for (block, _) in partial_blocks(at, len) {
                self.log.partial_write_started(block);
            }
        }
        for (at, len) in pieces {
            let part = &data[(at - offset) as usize..][..len];
            {
                let mut file = self.bytes.borrow_mut();
                let end = at as usize + len;
                if file.len() < end {
                    file.resize(end, 0);
                }
                file[at as usize..end].copy_from_slice(part);
            }
            self.log.record(at, part);
            let read = |at, buf: &mut [u8]| self.read_block(at, buf);
            for (block, _) in partial_blocks(at, len) {
                self.log.partial_write_done(block, true, &read).unwrap();
            }
        }
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, Mismatch> {
        let out = self.bytes.borrow()[offset as usize..][..len].to_vec();
        for (at, n) in Self::pieces(offset, len) {
            let part = &out[(at - offset) as usize..][..n];
            self.log.verify(at, part)?;
            let read = |at, buf: &mut [u8]| self.read_block(at, buf);
            for (_, range) in partial_blocks(at, n) {
                let from = at + range.start as u64;
                match self.log.verify_partial(from, &part[range], &read) {
                    Ok(()) => {}
                    Err(Failure::Mismatch(m)) => return Err(m),
                    Err(Failure::Io(cause)) => panic!("{cause}"),
                }
            }
        }
        Ok(out)
    }

    fn flip(&self, at: usize) {
        self.bytes.borrow_mut()[at] ^= 0x40;
    }
}

#[test]
fn any_sub_range_of_a_write_is_verified() {
    let file = File::default();
    let data = bytes(1, 10 * BLOCK as usize);
    file.write(BLOCK, &data);
    for (from, to) in [(0, data.len()), (4096, 8192), (100, 9000), (5000, 5001)] {
        assert_eq!(
            file.read(BLOCK + from as u64, to - from).unwrap(),
            &data[from..to]
        );
    }
    // One flipped byte is caught by every read of any of its block's bytes.
    file.flip(4 * 4096 + 17);
    let m = file.read(BLOCK, data.len()).unwrap_err();
    assert_eq!((m.offset, m.len), (4 * BLOCK, 4096));
    for (from, len) in [(4 * 4096 + 10, 90), (4 * 4096 + 17, 1), (4 * 4096 - 5, 10)] {
        let m = file.read(from, len).unwrap_err();
        assert_eq!(m.offset, 4 * BLOCK, "reading {len} at {from}");
    }
}

#[test]
fn the_partial_blocks_of_unaligned_writes_are_checked() {
    // The cases of a file that is not whole blocks: its last block, a
    // write's head and tail, one byte past a MiB.
    for (offset, len, flipped) in [
        (0u64, 10_000usize, 9_500usize),
        (0, 3_000, 0),
        (0, 3_000, 2_999),
        (100, 65_536, 100),
        (100, 65_536, 65_635),
        (0, (1 << 20) + 1, 1 << 20),
    ] {
        let file = File::default();
        file.write(offset, &bytes(7, len));
        file.read(offset, len).unwrap();
        file.flip(flipped);
        let m = file.read(offset, len).unwrap_err();
        assert_eq!(
            m.offset,
            flipped as u64 / BLOCK * BLOCK,
            "{len} at {offset}"
        );
    }
}

#[test]
fn a_block_cut_short_and_extended_behind_the_logs_back_is_caught() {
    let file = File::default();
    file.write(0, &bytes(3, 10_000));
    file.bytes.borrow_mut().truncate(8192);
    file.bytes.borrow_mut().resize(10_000, 0);
    let m = file.read(0, 10_000).unwrap_err();
    assert_eq!((m.offset, m.len), (8192, 1808));
    assert!(file.read(9_000, 100).is_err());
}

#[test]
fn writes_sharing_a_block_build_its_record_and_the_last_in_flight_makes_it() {
    let file = File::default();
    file.write(0, &bytes(1, 100));
    file.write(100, &bytes(2, 100));
    file.write(4000, &bytes(3, 300)); // ends in the next block
    let all = file.read(0, 4300).unwrap();
    assert_eq!(&all[100..200], &bytes(2, 100)[..]);
    // Two writes to one block in flight: the first done does not record.
    file.log.partial_write_started(5);
    file.log.partial_write_started(5);
    file.bytes.borrow_mut().resize(6 * 4096, 9);
    let read = |at, buf: &mut [u8]| file.read_block(at, buf);
    file.log.partial_write_done(5, true, &read).unwrap();
    assert_eq!(file.log.lock().get(5), None);
    file.log.verify_partial(5 * BLOCK + 1, &[9], &read).unwrap();
    file.log.partial_write_done(5, true, &read).unwrap();
    assert_eq!(file.log.lock().get(5).map(|r| r.len), Some(4096));
    assert!(file.log.lock().writing.is_empty());
}

#[test]
fn truncation_keeps_the_record_of_the_block_it_ends_in_true() {
    let file = File::default();
    file.write(0, &bytes(4, 3 * 4096));
    file.bytes.borrow_mut().truncate(5000);
    let read = |at, buf: &mut [u8]| file.read_block(at, buf);
    file.log.truncated(5000, &read).unwrap();
    assert_eq!(file.log.lock().get(1).map(|r| r.len), Some(904));
    assert_eq!(file.log.lock().get(2), None);
    file.read(0, 5000).unwrap();
    file.flip(4999);
    assert_eq!(file.read(4500, 10).unwrap_err().offset, BLOCK);
}

#[test]
fn memory_follows_bytes_written_not_offsets() {
    let log = ChecksumLog::default();
    log.record(1 << 50, &bytes(3, 8192));
    assert_eq!(log.lock().groups.len(), 1);
    log.forget(0, u64::MAX);
    assert_eq!(log.lock().groups.len(), 0);
}

proptest! {
    /// After any writes and forgets, a read of any range of the file's
    /// true bytes verifies, and flipping any byte the read returns that
    /// a write recorded (and no forget dropped) is caught.
    #[test]
    fn the_log_agrees_with_a_model(
        ops in proptest::collection::vec((0u64..40_000, 0usize..20_000, any::<u8>(), any::<bool>()), 1..12),
        read in (0usize..60_000, 1usize..30_000),
        flip in any::<prop::sample::Index>(),
    ) {
        let file = File::default();
        // Per block, the bytes its record covers (0: unknown).
        let mut known = [0usize; 16];
        for (offset, len, seed, forget) in ops {
            let (o, e) = (offset as usize, offset as usize + len);
            if forget {
                file.log.forget(offset, len as u64);
            } else {
                file.write(offset, &bytes(seed, len));
            }
            let size = file.bytes.borrow().len();
            for (b, k) in known.iter_mut().enumerate() {
                let (s, t) = (b * 4096, b * 4096 + 4096);
                if s < e && o < t && len > 0 {
                    *k = if forget { 0 } else { t.min(size) - s };
                }
            }
        }
        let size = file.bytes.borrow().len();
        prop_assume!(read.0 < size);
        let (ro, rl) = (read.0, read.1.min(size - read.0));
        prop_assert!(file.read(ro as u64, rl).is_ok());
        let checked: Vec<usize> = (ro..ro + rl).filter(|&p| p % 4096 < known[p / 4096]).collect();
        if !checked.is_empty() {
            let at = checked[flip.index(checked.len())];
            file.flip(at);
            let m = file.read(ro as u64, rl).unwrap_err();
            prop_assert_eq!(m.offset, (at / 4096 * 4096) as u64);
        }
    }
}
