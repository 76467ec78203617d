//! CRC32C per 4 KiB block of a value: computed when it is put, checked on
//! every byte served.

use crate::space::BLOCK;

/// The CRC32C of each 4 KiB block of `bytes` (the last one of the bytes it has).
pub(crate) fn block_crcs(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks(BLOCK as usize).map(crc32c::crc32c).collect()
}

/// A block whose bytes do not match their CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// The block's index in the value.
    pub(crate) block: usize,
    /// Bytes of it checked.
    pub(crate) len: usize,
    pub(crate) expected: u32,
    pub(crate) actual: u32,
}

/// Checks `bytes`, which start at block `first` of the value, against the
/// value's CRCs.
pub(crate) fn check(bytes: &[u8], first: usize, crcs: &[u32]) -> Result<(), Mismatch> {
    for (i, chunk) in bytes.chunks(BLOCK as usize).enumerate() {
        let block = first + i;
        let actual = crc32c::crc32c(chunk);
        let expected = crcs.get(block).copied().unwrap_or(!actual);
        if actual != expected {
            return Err(Mismatch {
                block,
                len: chunk.len(),
                expected,
                actual,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_byte_names_its_block() {
        let mut bytes: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let crcs = block_crcs(&bytes);
        assert_eq!(crcs.len(), 3);
        check(&bytes, 0, &crcs).unwrap();
        check(&bytes[4096..], 1, &crcs).unwrap();
        bytes[9000] ^= 1;
        let m = check(&bytes, 0, &crcs).unwrap_err();
        assert_eq!((m.block, m.len), (2, 10_000 - 8192));
        // Bytes past the recorded blocks never pass.
        assert!(check(&[0; 10], 3, &crcs).is_err());
    }
}
