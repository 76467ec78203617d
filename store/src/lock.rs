//! The writer lock: one store handle per folder, in any process; a second
//! is refused with the holder named.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

use crate::StoreError;

/// The lock file's name in a store's folder.
pub(crate) const LOCK_FILE: &str = "lock";

/// An exclusive `flock` on the folder's lock file, released when dropped
/// (or when the process dies, however it dies).
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: File,
}

impl WriterLock {
    /// Takes the lock of the store in `folder` and writes this process's
    /// name into it, or says who holds it.
    pub(crate) fn take(folder: &Path) -> Result<Self, StoreError> {
        let path = folder.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc_nofollow())
            .open(&path)
            .map_err(|e| StoreError::file(&path, "open the lock file", e))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => {
                return Err(StoreError::Locked {
                    path: folder.to_path_buf(),
                    holder: holder(&mut file),
                })
            }
            Err(e) => return Err(StoreError::file(&path, "lock", e.into())),
        }
        let me = format!("pid {} ({})", std::process::id(), exe());
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(me.as_bytes()));
        written.map_err(|e| StoreError::file(&path, "write the lock file", e))?;
        Ok(Self { _file: file })
    }
}

/// `O_NOFOLLOW`: a link planted in place of the lock file is refused.
fn libc_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// What the holder wrote, or a placeholder while it has not written yet.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    match file.read_to_string(&mut text) {
        Ok(_) if !text.trim().is_empty() => text.trim().chars().take(300).collect(),
        _ => "another process (it has not written its name yet)".to_string(),
    }
}

fn exe() -> String {
    std::env::current_exe()
        .unwrap_or_else(|_| PathBuf::from("unknown executable"))
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_first_and_freed_on_drop() {
        let folder = tempfile::tempdir().unwrap();
        let first = WriterLock::take(folder.path()).unwrap();
        let err = WriterLock::take(folder.path()).unwrap_err();
        let StoreError::Locked { holder, .. } = &err else {
            panic!("{err}")
        };
        assert!(
            holder.contains(&format!("pid {}", std::process::id())),
            "{holder}"
        );
        drop(first);
        WriterLock::take(folder.path()).unwrap();
    }
}
