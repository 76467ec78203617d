//! The format marker: the file that says a folder is a store, and of which
//! format version.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::lock::LOCK_FILE;
use crate::StoreError;

/// The marker file's name in a store's folder.
pub(crate) const MARKER_FILE: &str = "tensorswap-store";
/// The format this build reads and writes.
pub(crate) const FORMAT_VERSION: u32 = 1;
const MAGIC: &str = "tensorswap-store";

/// Checks the marker of the store in `folder`, or writes one when the
/// folder is new (empty but for the lock file). Called with the writer
/// lock held.
pub(crate) fn check_or_create(folder: &Path) -> Result<(), StoreError> {
    let path = folder.join(MARKER_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => parse(folder, &text),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let others = fs::read_dir(folder)
                .map_err(|e| StoreError::file(folder, "list the folder", e))?
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name())
                .filter(|name| name != LOCK_FILE)
                .count();
            if others > 0 {
                return Err(StoreError::NotAStore {
                    path: folder.to_path_buf(),
                    reason: format!(
                        "it holds {others} other entries and no `{MARKER_FILE}` file; a new store needs an empty folder"
                    ),
                });
            }
            create(folder)
        }
        Err(e) if e.kind() == ErrorKind::InvalidData => Err(StoreError::NotAStore {
            path: folder.to_path_buf(),
            reason: format!("`{MARKER_FILE}` is not text"),
        }),
        Err(e) => Err(StoreError::file(&path, "read the format marker", e)),
    }
}

fn parse(folder: &Path, text: &str) -> Result<(), StoreError> {
    let not_a_store = |reason: &str| StoreError::NotAStore {
        path: folder.to_path_buf(),
        reason: format!("`{MARKER_FILE}` {reason}"),
    };
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(not_a_store("does not start with the store's magic line"));
    }
    let found = lines
        .next()
        .and_then(|line| line.strip_prefix("format "))
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or_else(|| not_a_store("names no format version"))?;
    if found != FORMAT_VERSION {
        return Err(StoreError::Version {
            path: folder.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

/// Writes the marker whole or not at all (a temporary file renamed into
/// place), and makes both durable.
fn create(folder: &Path) -> Result<(), StoreError> {
    let tmp = folder.join(format!("{MARKER_FILE}.tmp"));
    let path = folder.join(MARKER_FILE);
    let text = format!("{MAGIC}\nformat {FORMAT_VERSION}\n");
    let written = File::create(&tmp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    written.map_err(|e| StoreError::file(&tmp, "write the format marker", e))?;
    fs::rename(&tmp, &path).map_err(|e| StoreError::file(&path, "name the format marker", e))?;
    sync_folder(folder)
}

/// Makes the folder's entries (new files, renames) durable.
pub(crate) fn sync_folder(folder: &Path) -> Result<(), StoreError> {
    File::open(folder)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| StoreError::file(folder, "sync the folder", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_folder_gets_a_marker_that_is_then_accepted() {
        let folder = tempfile::tempdir().unwrap();
        check_or_create(folder.path()).unwrap();
        check_or_create(folder.path()).unwrap();
        assert!(!folder.path().join("tensorswap-store.tmp").exists());
    }

    #[test]
    fn other_folders_and_versions_are_refused_by_name() {
        let folder = tempfile::tempdir().unwrap();
        fs::write(folder.path().join("notes.txt"), "mine").unwrap();
        let err = check_or_create(folder.path()).unwrap_err();
        assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
        assert!(err.to_string().contains("1 other entries"), "{err}");

        let folder = tempfile::tempdir().unwrap();
        fs::write(folder.path().join(MARKER_FILE), "something else\n").unwrap();
        let err = check_or_create(folder.path()).unwrap_err();
        assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");

        fs::write(
            folder.path().join(MARKER_FILE),
            "tensorswap-store\nformat 9\n",
        )
        .unwrap();
        let err = check_or_create(folder.path()).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Version {
                    found: 9,
                    supported: 1,
                    ..
                }
            ),
            "{err}"
        );
    }
}
