//! An index entry's bytes: where a value lies, how long it is, its CRCs
//! per 4 KiB block, its metadata and recency, sealed by a CRC of its own.
//!
//! ```text
//! "V1" | flags u8 | id u64 | len u64 | seq u64 | extents u32 | (offset u64, len u64)*
//!      | meta_len u32 | meta | crc u32 per block of the value | record crc u32
//! ```
//! All integers little-endian. Hand-written rather than serde: the layout
//! is the on-disk format, fixed by this file alone.

use crate::space::{blocks_for, Extent, BLOCK};

const MAGIC: &[u8; 2] = b"V1";
const PINNED: u8 = 1;

/// What the in-memory table keeps of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// The value's identity: unique among every value the store holds or
    /// is writing.
    pub(crate) id: u64,
    /// The value's length in bytes.
    pub(crate) len: u64,
    /// Recency: higher is more recent.
    pub(crate) seq: u64,
    /// Never evicted.
    pub(crate) pinned: bool,
    /// Where the bytes lie, in order.
    pub(crate) extents: Box<[Extent]>,
}

/// An entry whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) head: Head,
    pub(crate) meta: Vec<u8>,
    /// CRC32C of each 4 KiB block of the value (the last one of its bytes only).
    pub(crate) crcs: Vec<u32>,
}

/// Blocks of a value of `len` bytes.
pub(crate) fn block_count(len: u64) -> usize {
    len.div_ceil(BLOCK) as usize
}

impl Record {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let h = &self.head;
        let mut out =
            Vec::with_capacity(43 + 16 * h.extents.len() + self.meta.len() + 4 * self.crcs.len());
        out.extend_from_slice(MAGIC);
        out.push(if h.pinned { PINNED } else { 0 });
        for n in [h.id, h.len, h.seq] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&(h.extents.len() as u32).to_le_bytes());
        for e in h.extents.iter() {
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(&e.len.to_le_bytes());
        }
        out.extend_from_slice(&(self.meta.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.meta);
        for crc in &self.crcs {
            out.extend_from_slice(&crc.to_le_bytes());
        }
        let seal = crc32c::crc32c(&out);
        out.extend_from_slice(&seal.to_le_bytes());
        out
    }

    /// The whole entry, or what is wrong with its bytes.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader::sealed(bytes)?;
        let head = r.head()?;
        let meta_len = r.u32()? as usize;
        let meta = r.take(meta_len)?.to_vec();
        let blocks = block_count(head.len);
        let crcs = r
            .take(blocks * 4)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        if !r.rest.is_empty() {
            return Err(format!("{} bytes after the entry's end", r.rest.len()));
        }
        Ok(Self { head, meta, crcs })
    }
}

impl Head {
    /// The head of an entry, checked whole (seal included).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader::sealed(bytes)?;
        let head = r.head()?;
        let meta_len = r.u32()? as usize;
        let expected = meta_len + block_count(head.len) * 4;
        if r.rest.len() != expected {
            return Err(format!(
                "{} bytes of metadata and CRCs where {expected} were due",
                r.rest.len()
            ));
        }
        Ok(head)
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// The entry's bytes without its seal, once the seal matches.
    fn sealed(bytes: &'a [u8]) -> Result<Self, String> {
        if bytes.len() < MAGIC.len() + 4 || &bytes[..2] != MAGIC {
            return Err("not an entry of this format".into());
        }
        let (body, seal) = bytes.split_at(bytes.len() - 4);
        let seal = u32::from_le_bytes(seal.try_into().expect("4 bytes"));
        let actual = crc32c::crc32c(body);
        if seal != actual {
            return Err(format!(
                "its CRC32C is {actual:#010x}, sealed as {seal:#010x}"
            ));
        }
        Ok(Self { rest: &body[2..] })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.rest.len() < n {
            return Err("the entry ends early".into());
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn head(&mut self) -> Result<Head, String> {
        let flags = self.take(1)?[0];
        let (id, len, seq) = (self.u64()?, self.u64()?, self.u64()?);
        let count = self.u32()? as usize;
        if count > self.rest.len() / 16 {
            return Err(format!("{count} extents in a short entry"));
        }
        let mut extents = Vec::with_capacity(count);
        for _ in 0..count {
            let (offset, len) = (self.u64()?, self.u64()?);
            if offset % BLOCK != 0 || len % BLOCK != 0 || len == 0 {
                return Err(format!("an extent {offset}+{len} not of whole blocks"));
            }
            extents.push(Extent { offset, len });
        }
        let held: u64 = extents.iter().map(|e| e.len).sum();
        if held != blocks_for(len) {
            return Err(format!(
                "extents of {held} bytes for a value of {len} bytes"
            ));
        }
        Ok(Head {
            id,
            len,
            seq,
            pinned: flags & PINNED != 0,
            extents: extents.into_boxed_slice(),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn record(len: u64, meta: Vec<u8>) -> Record {
        let blocks = block_count(len);
        let extents = if len == 0 {
            vec![]
        } else {
            vec![Extent {
                offset: 8 * BLOCK,
                len: blocks_for(len),
            }]
        };
        Record {
            head: Head {
                id: 7,
                len,
                seq: 99,
                pinned: true,
                extents: extents.into(),
            },
            meta,
            crcs: (0..blocks as u32).map(|i| i * 31).collect(),
        }
    }

    proptest! {
        #[test]
        fn entries_round_trip(len in 0u64..100_000, meta in prop::collection::vec(any::<u8>(), 0..64)) {
            let rec = record(len, meta);
            let bytes = rec.encode();
            prop_assert_eq!(&Record::decode(&bytes).unwrap(), &rec);
            prop_assert_eq!(Head::decode(&bytes).unwrap(), rec.head);
        }

        #[test]
        fn any_flipped_bit_or_cut_is_refused(len in 1u64..20_000, bit in any::<usize>(), cut in any::<usize>()) {
            let bytes = record(len, b"f16".to_vec()).encode();
            let mut flipped = bytes.clone();
            let bit = bit % (bytes.len() * 8);
            flipped[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(Record::decode(&flipped).is_err());
            prop_assert!(Head::decode(&flipped).is_err());
            let short = &bytes[..cut % bytes.len()];
            prop_assert!(Record::decode(short).is_err());
        }
    }
}
