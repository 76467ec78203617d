//! [`StoreError`]: what the store refuses or fails, with what to act on.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

/// Every failure of the persistent store.
///
/// A refused call hands its buffer back with the error
/// ([`Rejected`](tensorswap_core::Rejected)); a failed one loses nothing
/// that was stored before it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A key longer than [`MAX_KEY_LEN`](crate::MAX_KEY_LEN).
    #[error("a key of {len} bytes is longer than the store's limit of {max} bytes")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Metadata longer than [`MAX_META_LEN`](crate::MAX_META_LEN).
    #[error("key {key}: metadata of {len} bytes is longer than the store's limit of {max} bytes")]
    MetaTooLong {
        /// The key, printable.
        key: String,
        /// The metadata's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value larger than the whole store.
    #[error("key {key}: a value of {len} bytes cannot fit in a store of {capacity} bytes")]
    TooLarge {
        /// The key, printable.
        key: String,
        /// The value's length.
        len: u64,
        /// The store's capacity.
        capacity: u64,
    },
    /// No room for a value, and eviction is off (or everything left is pinned).
    #[error(
        "key {key}: the store is full: {needed} bytes needed, {free} free of a capacity of {capacity} bytes{}",
        if *.eviction { " (the rest is pinned or being read)" } else { " (eviction is off)" }
    )]
    Full {
        /// The key, printable.
        key: String,
        /// Bytes the value needs (whole 4 KiB blocks).
        needed: u64,
        /// Bytes free, or soon to be.
        free: u64,
        /// The store's capacity.
        capacity: u64,
        /// Whether eviction was on.
        eviction: bool,
    },
    /// The store holds more than a smaller capacity it was reopened with.
    #[error("{path}: the store cannot shrink to {capacity} bytes: {reason}")]
    CapacityTooSmall {
        /// The folder.
        path: PathBuf,
        /// The capacity asked for.
        capacity: u64,
        /// What is in the way.
        reason: String,
    },
    /// The key is not in the store.
    #[error("key {key} is not in the store")]
    NotFound {
        /// The key, printable.
        key: String,
    },
    /// A read range outside the value, or a buffer that cannot hold it.
    #[error("key {key}: {reason}")]
    Range {
        /// The key, printable.
        key: String,
        /// What does not fit.
        reason: String,
    },
    /// Another store handle (in this or another process) has the folder open.
    #[error("{path} is open for writing by {holder}; close it there first")]
    Locked {
        /// The store's folder.
        path: PathBuf,
        /// Who holds it: `pid 1234 (/usr/bin/python3)`, as the holder wrote it.
        holder: String,
    },
    /// The folder holds something other than a store.
    #[error("{path} is not a tensorswap store: {reason}")]
    NotAStore {
        /// The folder.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// A store of a format version this build does not read.
    #[error(
        "{path} is a tensorswap store of format version {found}; this build reads version {supported}"
    )]
    Version {
        /// The folder.
        path: PathBuf,
        /// The folder's version.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The folder or one of its files cannot be written.
    #[error("{path} is read-only for this process ({cause}); a store needs to write its folder")]
    ReadOnly {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        cause: io::Error,
    },
    /// Bytes read back differ from those written: the value is damaged.
    #[error(
        "key {key}: value bytes {offset}..{end} fail their CRC32C (stored {expected:#010x}, read {actual:#010x}); the value is damaged",
        end = .offset + .len
    )]
    Checksum {
        /// The key, printable.
        key: String,
        /// Offset of the damaged 4 KiB block in the value.
        offset: u64,
        /// Bytes of the block checked.
        len: u64,
        /// CRC32C recorded when the value was put.
        expected: u32,
        /// CRC32C of the bytes read.
        actual: u32,
    },
    /// The index holds an entry it cannot have written.
    #[error("the index {path} is damaged: {reason}")]
    IndexCorrupt {
        /// The index file.
        path: PathBuf,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// The index library failed.
    #[error("the index {path}: {op}: {cause}")]
    Index {
        /// The index file.
        path: PathBuf,
        /// What the store was doing.
        op: &'static str,
        /// redb's error.
        #[source]
        cause: redb::Error,
    },
    /// Reading or writing a value failed in the engine.
    #[error("key {key}: {cause}")]
    Value {
        /// The key, printable.
        key: String,
        /// The engine's error (the file, offset and errno).
        #[source]
        cause: tensorswap_core::Error,
    },
    /// A file operation on the folder failed.
    #[error("{path}: {op}: {cause}")]
    File {
        /// The file or folder.
        path: PathBuf,
        /// What the store was doing.
        op: &'static str,
        /// The OS error.
        #[source]
        cause: io::Error,
    },
    /// The engine or a thread could not start.
    #[error(transparent)]
    Core(#[from] tensorswap_core::Error),
    /// An earlier failure to make the store durable stopped it: what was
    /// acknowledged is safe, nothing more is accepted.
    #[error("the store at {path} stopped after an earlier failure ({reason}); reopen it")]
    Stopped {
        /// The folder.
        path: PathBuf,
        /// The first failure.
        reason: String,
    },
}

impl StoreError {
    /// True for [`StoreError::NotFound`] (a miss, for a cache).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// A file error, or [`StoreError::ReadOnly`] when the OS said the file
    /// or folder may not be written.
    pub(crate) fn file(path: impl Into<PathBuf>, op: &'static str, cause: io::Error) -> Self {
        let path = path.into();
        match cause.raw_os_error() {
            Some(libc_eacces) if read_only_errno(libc_eacces) => Self::ReadOnly { path, cause },
            _ => Self::File { path, op, cause },
        }
    }
}

/// `EACCES`, `EPERM` and `EROFS`: the folder refuses writes.
fn read_only_errno(errno: i32) -> bool {
    use rustix::io::Errno;
    [Errno::ACCESS, Errno::PERM, Errno::ROFS]
        .iter()
        .any(|e| e.raw_os_error() == errno)
}

/// A key as messages print it: UTF-8 text when it is printable, hex
/// otherwise, cut after 64 characters.
pub fn printable_key(key: &[u8]) -> String {
    const MAX: usize = 64;
    match std::str::from_utf8(key) {
        Ok(text) if !text.chars().any(char::is_control) => {
            let mut out: String = text.chars().take(MAX).collect();
            if text.chars().count() > MAX {
                out.push('…');
            }
            format!("`{out}`")
        }
        _ => {
            let mut out = String::from("0x");
            for byte in key.iter().take(MAX / 2) {
                let _ = write!(out, "{byte:02x}");
            }
            if key.len() > MAX / 2 {
                out.push('…');
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_as_text_or_hex_and_are_cut() {
        assert_eq!(
            printable_key(b"layers.3.mlp.weight"),
            "`layers.3.mlp.weight`"
        );
        assert_eq!(printable_key(&[0, 1, 0xff]), "0x0001ff");
        assert!(printable_key(&[b'a'; 100]).ends_with("a…`"));
        assert_eq!(printable_key(&[7u8; 40]).len(), 2 + 64 + '…'.len_utf8());
    }

    #[test]
    fn permission_errors_name_the_folder_read_only() {
        let err = StoreError::file("/x", "create", io::Error::from_raw_os_error(libc::EROFS));
        assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
        let err = StoreError::file("/x", "create", io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(matches!(err, StoreError::File { .. }), "{err}");
    }
}
