//! Swap folders left behind by processes that died without cleaning up, and
//! their removal.
//!
//! A folder that is not kept is named `tensorswap-<pid>-<n>` and holds a
//! `.lock` file its process keeps `flock`ed for the folder's whole life. The
//! kernel drops the lock when the process dies, however it dies, so a later
//! run that can take the lock knows the folder is abandoned. Its swap files
//! were unlinked when they were created, so their bytes went with the
//! process; what is left is the folder itself, the lock file and, at worst,
//! one empty file caught between its creation and its unlinking.
//!
//! A folder is removed only when all of these hold: its name has the shape
//! above, it is a real folder (not a symlink) owned by this user, its lock
//! can be taken, and everything in it has a name tensorswap gives. A folder
//! with no lock file must be empty and older than ten seconds: younger, it
//! is a live process's, caught between making the folder and locking it.
//! Anything else is left where it is, with a warning when it looks
//! abandoned.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::sys::fs::{effective_uid, open_at, rmdir_at, try_lock, unlink_at};
use crate::{Error, Result};

/// Start of every swap folder's name.
pub(super) const FOLDER_PREFIX: &str = "tensorswap-";
/// Infix of kept folders' names (`tensorswap-kept-<pid>-<n>`): never removed.
pub(super) const KEPT_INFIX: &str = "kept-";
/// The lock file inside a folder that is not kept.
pub(super) const LOCK_NAME: &str = ".lock";
/// Start of the name of the direct-I/O probe file made in a new folder.
pub(super) const PROBE_PREFIX: &str = ".tensorswap-dio-probe-";

/// What [`SwapDir::remove_stale`](crate::SwapDir::remove_stale) did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StaleSweep {
    /// Abandoned folders removed.
    pub removed: usize,
    /// Bytes their files still held (usually 0: swap files have no names).
    pub bytes: u64,
    /// Folders that look abandoned but were left in place, each with a
    /// warning saying why (something in them tensorswap did not write, or
    /// made by a version of tensorswap without lock files).
    pub left: usize,
}

/// Removes the abandoned swap folders directly inside `parent`.
pub(super) fn remove_stale(parent: &Path) -> Result<StaleSweep> {
    let error = |op: &'static str| {
        move |cause: io::Error| Error::File {
            op,
            path: parent.to_path_buf(),
            cause,
        }
    };
    let handle = File::open(parent).map_err(error("open folder"))?;
    let started = SystemTime::now();
    let mut sweep = StaleSweep::default();
    for entry in std::fs::read_dir(parent).map_err(error("list folder"))? {
        let Ok(entry) = entry else { continue };
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !is_folder_name(&name) {
            continue;
        }
        match remove_if_abandoned(&handle, parent, &name, started) {
            Ok(Some(bytes)) => {
                sweep.removed += 1;
                sweep.bytes += bytes;
                tracing::warn!(
                    folder = %parent.join(&name).display(),
                    bytes,
                    "removed a swap folder left by a process that ended without cleaning up"
                );
            }
            Ok(None) => {}
            Err(reason) => {
                sweep.left += 1;
                tracing::warn!(
                    folder = %parent.join(&name).display(),
                    "left an abandoned-looking swap folder in place: {reason}"
                );
            }
        }
    }
    Ok(sweep)
}

/// `tensorswap-<digits>-<digits>`: a folder that is not kept.
fn is_folder_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(FOLDER_PREFIX) else {
        return false;
    };
    let mut parts = rest.split('-');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(pid), Some(n), None) if is_number(pid) && is_number(n)
    )
}

/// A name tensorswap gives to something inside a swap folder.
fn is_inner_name(name: &str) -> bool {
    name == LOCK_NAME
        || name.starts_with(PROBE_PREFIX)
        || name.strip_suffix(".swap").is_some_and(is_number)
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// How long an empty folder with no lock file is taken for one a live
/// process has just made (between its `mkdir` and its lock) rather than an
/// abandoned one.
const NEW_FOLDER_GRACE: Duration = Duration::from_secs(10);

/// `Ok(Some(bytes))`: removed. `Ok(None)`: in use, being made, gone, or
/// not ours. `Err(reason)`: abandoned but not removed.
fn remove_if_abandoned(
    parent: &File,
    parent_path: &Path,
    name: &str,
    started: SystemTime,
) -> std::result::Result<Option<u64>, String> {
    let c_name = CString::new(name).map_err(|e| e.to_string())?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let Ok(dir) = open_at(parent, &c_name, flags, 0) else {
        return Ok(None);
    };
    let me = effective_uid();
    if dir.metadata().map_or(true, |m| m.uid() != me) {
        return Ok(None);
    }
    let lock_name = CString::new(LOCK_NAME).map_err(|e| e.to_string())?;
    let held = match open_at(&dir, &lock_name, libc::O_RDWR | libc::O_NOFOLLOW, 0) {
        // Unlinked by the time the lock was ours: another sweep removed it.
        Ok(lock) => match try_lock(&lock) {
            Ok(true) if lock.metadata().is_ok_and(|m| m.nlink() > 0) => Some(lock),
            _ => return Ok(None),
        },
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(_) => return Ok(None),
    };
    let path = parent_path.join(name);
    let names: Vec<String> = std::fs::read_dir(&path)
        .map_err(|e| format!("cannot list it: {e}"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    if held.is_none() && names.is_empty() {
        // Made moments ago (or in the future, by a clock that moved): a
        // process between creating the folder and locking it.
        let recent = dir
            .metadata()
            .and_then(|m| m.modified())
            .map_or(true, |made| made + NEW_FOLDER_GRACE > started);
        if recent {
            return Ok(None);
        }
    }
    if held.is_none() && !names.is_empty() {
        // A folder being created has no lock for an instant, but nothing else
        // in it either.
        return Err(
            "it has no lock file, so a tensorswap without lock files made it; remove it by hand once no process uses it"
                .into(),
        );
    }
    if let Some(foreign) = names.iter().find(|n| !is_inner_name(n)) {
        return Err(format!(
            "it holds {foreign:?}, which tensorswap did not write"
        ));
    }
    let mut bytes = 0;
    // The lock file goes last, so other sweeps keep out until the end.
    for inner in names
        .iter()
        .filter(|n| *n != LOCK_NAME)
        .chain(names.iter().filter(|n| *n == LOCK_NAME))
    {
        bytes += std::fs::symlink_metadata(path.join(inner)).map_or(0, |m| m.len());
        let c_inner = CString::new(inner.as_str()).map_err(|e| e.to_string())?;
        unlink_at(&dir, &c_inner).map_err(|e| format!("cannot remove {inner}: {e}"))?;
    }
    match rmdir_at(parent, &c_name) {
        Ok(()) => Ok(Some(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Some(bytes)),
        Err(err) => Err(format!("cannot remove it: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;
    use crate::{DirOptions, SwapDir};

    /// Lays out what a process killed mid-run leaves: the folder, its
    /// unlocked lock file, and whatever else is named in `inner`.
    fn abandoned(parent: &Path, name: &str, inner: &[(&str, usize)]) -> std::path::PathBuf {
        let path = parent.join(name);
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        for (file, len) in inner {
            std::fs::write(path.join(file), vec![7u8; *len]).unwrap();
        }
        path
    }

    #[test]
    fn abandoned_folders_go_and_everything_else_stays() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path();
        let live = SwapDir::create(p).unwrap();
        let dead = abandoned(
            p,
            "tensorswap-4000001-0",
            &[
                (LOCK_NAME, 0),
                ("00000003.swap", 5000),
                (".tensorswap-dio-probe-1-0", 0),
            ],
        );
        let half_made = abandoned(p, "tensorswap-4000001-1", &[]);
        age(&half_made);
        let foreign = abandoned(
            p,
            "tensorswap-4000001-2",
            &[(LOCK_NAME, 0), ("notes.txt", 3)],
        );
        let old = abandoned(p, "tensorswap-4000001-3", &[("00000000.swap", 10)]);
        let kept = abandoned(p, "tensorswap-kept-4000001-4", &[("00000000.swap", 10)]);
        let other = abandoned(p, "unrelated-1-0", &[("00000000.swap", 10)]);
        // A lock another open file description holds: a live process's.
        let busy = abandoned(p, "tensorswap-4000001-5", &[(LOCK_NAME, 0)]);
        let holder = File::open(busy.join(LOCK_NAME)).unwrap();
        assert!(try_lock(&holder).unwrap());
        // A symlink with a folder's name, pointing at a folder that would
        // otherwise qualify.
        let target = abandoned(p, "target", &[(LOCK_NAME, 0), ("00000000.swap", 10)]);
        symlink(&target, p.join("tensorswap-4000001-6")).unwrap();

        let sweep = SwapDir::remove_stale(p).unwrap();
        assert_eq!(
            (sweep.removed, sweep.bytes, sweep.left),
            (2, 5000, 2),
            "{sweep:?}"
        );
        assert!(!dead.exists() && !half_made.exists());
        for stays in [&foreign, &old, &kept, &other, &busy, &target, live.path()] {
            assert!(stays.exists(), "{} was removed", stays.display());
        }
        assert!(target.join("00000000.swap").exists());
        drop(holder);
        assert_eq!(
            SwapDir::remove_stale(p).unwrap().removed,
            1,
            "the freed lock"
        );
        assert!(!busy.exists());
    }

    /// Dates a folder a minute back.
    fn age(path: &Path) {
        let minute_ago = SystemTime::now() - Duration::from_secs(60);
        File::open(path).unwrap().set_modified(minute_ago).unwrap();
    }

    /// A live process's brand-new folder, caught between its `mkdir` and
    /// its lock, is neither removed nor reported as abandoned; once old,
    /// an empty unlocked folder is.
    #[test]
    fn a_folder_being_made_is_left_alone() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path();
        let new = abandoned(p, "tensorswap-4000002-0", &[]);
        let sweep = SwapDir::remove_stale(p).unwrap();
        assert_eq!(sweep, StaleSweep::default());
        assert!(new.exists());
        age(&new);
        assert_eq!(SwapDir::remove_stale(p).unwrap().removed, 1);
        assert!(!new.exists());
    }

    #[test]
    fn a_dropped_folder_is_gone_and_a_kept_one_is_never_swept() {
        let parent = tempfile::tempdir().unwrap();
        let dir = SwapDir::create(parent.path()).unwrap();
        let path = dir.path().to_path_buf();
        dir.create_file().unwrap();
        drop(dir);
        assert!(!path.exists());
        let kept = SwapDir::create_with(parent.path(), DirOptions::default().keep(true)).unwrap();
        let file = kept.create_file().unwrap();
        let (kept_path, file_path) = (kept.path().to_path_buf(), file.path().to_path_buf());
        drop((file, kept));
        SwapDir::create(parent.path()).unwrap();
        assert!(file_path.exists(), "{}", kept_path.display());
    }

    #[test]
    fn only_our_names_are_recognised() {
        for name in ["tensorswap-1-0", "tensorswap-123456-17"] {
            assert!(is_folder_name(name), "{name}");
        }
        for name in [
            "tensorswap-kept-1-0",
            "tensorswap-1",
            "tensorswap-1-0-0",
            "tensorswap--0",
            "tensorswap-x-0",
            "tensorswap-1-",
            "other-1-0",
        ] {
            assert!(!is_folder_name(name), "{name}");
        }
        for name in [
            ".lock",
            "00000000.swap",
            "123.swap",
            ".tensorswap-dio-probe-9-0",
        ] {
            assert!(is_inner_name(name), "{name}");
        }
        for name in [".swap", "a.swap", "notes.txt", ".lock2", "1.swap.bak"] {
            assert!(!is_inner_name(name), "{name}");
        }
    }
}
