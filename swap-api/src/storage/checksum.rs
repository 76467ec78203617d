//! CRC32C per 4 KiB block of a file, recorded by writes and verified by
//! reads of any range: every byte a read returns that lies in a recorded
//! block is checked, whether the read covers the block whole or in part.
//!
//! A block's record is the CRC of its first `len` bytes: the whole block
//! (4096), or, for the file's last block, up to the end of the file when it
//! was recorded. A piece that covers a block whole records or verifies it
//! from its own bytes. A piece that covers a block in part (the edges of an
//! unaligned request) completes the block from the file:
//! - a write makes the block unknown when it is submitted, and the last
//!   write to it in flight records the block's bytes as the file holds them
//!   once it is done;
//! - a read checks the record against the file's bytes of the block with its
//!   own bytes in their place, unless a write to the block is in flight (the
//!   block is unknown until that write records it).
//!
//! Blocks live in sparse groups of [`GROUP`] blocks, so memory follows the
//! bytes written (6 bytes per 4 KiB, about 1.5 MiB per GiB), not the largest
//! offset.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};

/// Bytes per checksummed block: the smallest direct-I/O alignment, so every
/// aligned request is verified whole.
pub(crate) const BLOCK: u64 = 4096;
/// Blocks per group (4 MiB of file).
const GROUP: u64 = 1024;

/// Reads the file's bytes from the start of a block into the buffer: the
/// count read, fewer than asked only at the end of the file.
pub(crate) type ReadBlock<'a> = &'a dyn Fn(u64, &mut [u8]) -> io::Result<usize>;

/// The records of one group's blocks.
struct Group {
    crcs: Box<[u32; GROUP as usize]>,
    /// Bytes each record covers from the block's start; 0: unknown.
    lens: Box<[u16; GROUP as usize]>,
    known: usize,
}

impl Group {
    fn new() -> Self {
        Self {
            crcs: Box::new([0; GROUP as usize]),
            lens: Box::new([0; GROUP as usize]),
            known: 0,
        }
    }

    fn get(&self, i: usize) -> Option<Record> {
        let len = self.lens[i];
        (len > 0).then(|| Record {
            crc: self.crcs[i],
            len: usize::from(len),
        })
    }

    fn set(&mut self, i: usize, record: Record) {
        if self.lens[i] == 0 {
            self.known += 1;
        }
        self.crcs[i] = record.crc;
        // A record covers 1..=BLOCK bytes, which fits.
        self.lens[i] = record.len as u16;
    }

    fn clear(&mut self, i: usize) {
        if self.lens[i] != 0 {
            self.known -= 1;
            self.lens[i] = 0;
        }
    }
}

/// A block's record: the CRC of its first `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    crc: u32,
    len: usize,
}

/// Why a read's bytes could not be served.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A block's bytes differ from what was written.
    Mismatch(Mismatch),
    /// The rest of a block the read covers in part could not be read.
    Io(io::Error),
}

/// A block whose bytes differ from what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// File offset of the block.
    pub(crate) offset: u64,
    /// The bytes of it that were checked (from its start).
    pub(crate) len: usize,
    pub(crate) expected: u32,
    pub(crate) actual: u32,
}

#[derive(Default)]
struct State {
    groups: BTreeMap<u64, Group>,
    /// Blocks with writes in flight that cover them in part, and how many.
    writing: HashMap<u64, u32>,
}

impl State {
    fn get(&self, block: u64) -> Option<Record> {
        self.groups
            .get(&(block / GROUP))
            .and_then(|g| g.get((block % GROUP) as usize))
    }

    fn set(&mut self, block: u64, record: Record) {
        let group = self.groups.entry(block / GROUP).or_insert_with(Group::new);
        group.set((block % GROUP) as usize, record);
    }

    fn clear(&mut self, block: u64) {
        if let Some(group) = self.groups.get_mut(&(block / GROUP)) {
            group.clear((block % GROUP) as usize);
            if group.known == 0 {
                self.groups.remove(&(block / GROUP));
            }
        }
    }

    /// Records `block` as the file now holds it (none where it is empty).
    fn record_from_file(&mut self, block: u64, read: ReadBlock<'_>) -> io::Result<()> {
        self.clear(block);
        let mut bytes = [0u8; BLOCK as usize];
        let len = read(block * BLOCK, &mut bytes)?;
        if len > 0 {
            let crc = crc(&bytes[..len]);
            self.set(block, Record { crc, len });
        }
        Ok(())
    }
}

/// The checksums of one file's blocks.
#[derive(Default)]
pub(crate) struct ChecksumLog {
    state: Mutex<State>,
}

impl std::fmt::Debug for ChecksumLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChecksumLog")
            .field("groups", &self.lock().groups.len())
            .finish()
    }
}

impl ChecksumLog {
    /// Records the CRC of every block `bytes`, written at `offset`, covers
    /// whole (blocks it covers in part are [`ChecksumLog::partial_write_done`]'s).
    /// The CRCs are computed before the log is locked.
    pub(crate) fn record(&self, offset: u64, bytes: &[u8]) {
        let crcs: Vec<(u64, u32)> = blocks(offset, bytes.len())
            .filter_map(|(block, whole)| Some((block, crc(&bytes[whole?]))))
            .collect();
        let mut state = self.lock();
        for (block, crc) in crcs {
            let len = BLOCK as usize;
            state.set(block, Record { crc, len });
        }
    }

    /// A write that covers `block` in part was submitted: the block is
    /// unknown until the last such write in flight is done.
    pub(crate) fn partial_write_started(&self, block: u64) {
        let mut state = self.lock();
        *state.writing.entry(block).or_insert(0) += 1;
        state.clear(block);
    }

    /// A write that covers `block` in part is done (`ok`: all its bytes
    /// were written). The last one in flight records the block as the file
    /// now holds it; after a failed one the block stays unknown.
    pub(crate) fn partial_write_done(
        &self,
        block: u64,
        ok: bool,
        read: ReadBlock<'_>,
    ) -> io::Result<()> {
        let mut state = self.lock();
        let last = match state.writing.get_mut(&block) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                state.writing.remove(&block);
                true
            }
        };
        if last && ok {
            state.record_from_file(block, read)
        } else {
            Ok(())
        }
    }

    /// Forgets every block overlapping `offset..offset+len`.
    pub(crate) fn forget(&self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let last = offset.saturating_add(len - 1) / BLOCK;
        self.lock().clear_blocks(offset / BLOCK, last);
    }

    /// The file was cut (or extended) to `len` bytes: blocks past it are
    /// forgotten, and a record of the block it ends in that reaches past
    /// `len` is made again from the file.
    pub(crate) fn truncated(&self, len: u64, read: ReadBlock<'_>) -> io::Result<()> {
        let mut state = self.lock();
        state.clear_blocks(len.div_ceil(BLOCK), u64::MAX / BLOCK);
        let (block, kept) = (len / BLOCK, (len % BLOCK) as usize);
        match state.get(block) {
            Some(record) if kept > 0 && record.len > kept => {
                if state.writing.contains_key(&block) {
                    state.clear(block);
                    Ok(())
                } else {
                    state.record_from_file(block, read)
                }
            }
            _ => Ok(()),
        }
    }

    /// Checks the recorded blocks `bytes`, read at `offset`, covers whole;
    /// the CRCs are computed after the log is unlocked.
    pub(crate) fn verify(&self, offset: u64, bytes: &[u8]) -> Result<(), Mismatch> {
        let known: Vec<(u64, Range<usize>, Record)> = {
            let state = self.lock();
            blocks(offset, bytes.len())
                .filter_map(|(block, whole)| Some((block, whole?, state.get(block)?)))
                .collect()
        };
        for (block, range, record) in known {
            let actual = crc(&bytes[range][..record.len]);
            if actual != record.crc {
                return Err(Mismatch {
                    offset: block * BLOCK,
                    len: record.len,
                    expected: record.crc,
                    actual,
                });
            }
        }
        Ok(())
    }

    /// Checks `bytes`, read at `offset` and lying inside one block they do
    /// not cover whole: the block's record against the file's bytes of the
    /// block, with `bytes` in their place. Unchecked while a write to the
    /// block is in flight, and past the record's end (bytes never written
    /// with checksums).
    pub(crate) fn verify_partial(
        &self,
        offset: u64,
        bytes: &[u8],
        read: ReadBlock<'_>,
    ) -> Result<(), Failure> {
        let (block, start) = (offset / BLOCK, (offset % BLOCK) as usize);
        // Held while the rest of the block is read: no write to it starts
        // meanwhile without making it unknown first.
        let state = self.lock();
        let Some(record) = state
            .get(block)
            .filter(|_| !state.writing.contains_key(&block))
        else {
            return Ok(());
        };
        if start >= record.len {
            return Ok(());
        }
        let end = (start + bytes.len()).min(record.len);
        let actual = if start == 0 && end == record.len {
            crc(&bytes[..end])
        } else {
            let mut whole = [0u8; BLOCK as usize];
            read(block * BLOCK, &mut whole[..record.len]).map_err(Failure::Io)?;
            whole[start..end].copy_from_slice(&bytes[..end - start]);
            crc(&whole[..record.len])
        };
        if actual == record.crc {
            Ok(())
        } else {
            Err(Failure::Mismatch(Mismatch {
                offset: block * BLOCK,
                len: record.len,
                expected: record.crc,
                actual,
            }))
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Forgets blocks `first..=last`.
    fn clear_blocks(&mut self, first: u64, last: u64) {
        if first > last {
            return;
        }
        let touched: Vec<u64> = self
            .groups
            .range(first / GROUP..=last / GROUP)
            .map(|(&g, _)| g)
            .collect();
        for g in touched {
            let (start, end) = (g * GROUP, g * GROUP + GROUP - 1);
            if first <= start && end <= last {
                self.groups.remove(&g);
            } else {
                for block in first.max(start)..=last.min(end) {
                    self.clear(block);
                }
            }
        }
    }
}

/// The blocks `offset..offset+len` touches: each block's index, and the
/// range of the request's bytes that is that whole block (`None` where the
/// request covers only part of it).
fn blocks(offset: u64, len: usize) -> impl Iterator<Item = (u64, Option<Range<usize>>)> {
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

/// The blocks `offset..offset+len` covers only in part (at most two: its
/// head and its tail): each block's index, and the range of the request's
/// bytes that lies in it.
pub(crate) fn partial_blocks(offset: u64, len: usize) -> impl Iterator<Item = (u64, Range<usize>)> {
    let end = offset.saturating_add(len as u64);
    blocks(offset, len)
        .filter(|(_, whole)| whole.is_none())
        .map(move |(block, _)| {
            let from = (block * BLOCK).max(offset);
            let to = (block * BLOCK + BLOCK).min(end);
            (block, (from - offset) as usize..(to - offset) as usize)
        })
}

/// CRC32C of `bytes`.
pub(crate) fn crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

#[cfg(test)]
#[path = "checksum_tests.rs"]
mod tests;
