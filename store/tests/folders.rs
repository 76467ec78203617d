//! Folders the store must refuse with a typed error, touching nothing:
//! no store there, another format or version, a damaged index, a folder it
//! may not write; and reopening at another capacity.

use std::fs;

use redb::{Database, ReadableTable, TableDefinition};
use tensorswap_store::{PersistentStore, PutOptions, StoreError, StoreOptions};

fn put(store: &PersistentStore, key: &[u8], len: usize) {
    store
        .put(key, vec![key[0]; len], &PutOptions::new())
        .unwrap()
        .wait()
        .unwrap();
}

#[test]
fn opening_what_is_not_there_creates_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let folder = parent.path().join("none");
    let err = PersistentStore::open(&folder, StoreOptions::existing()).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert!(!folder.exists());
}

#[test]
fn another_format_or_version_is_refused_and_left_as_it_was() {
    let folder = tempfile::tempdir().unwrap();
    fs::write(folder.path().join("model.safetensors"), b"weights").unwrap();
    let err = PersistentStore::open(folder.path(), StoreOptions::new(1 << 20)).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    let names: Vec<_> = fs::read_dir(folder.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "only the lock file may be added: {names:?}");
    assert_eq!(
        fs::read(folder.path().join("model.safetensors")).unwrap(),
        b"weights"
    );

    let folder = tempfile::tempdir().unwrap();
    drop(PersistentStore::open(folder.path(), StoreOptions::new(1 << 20)).unwrap());
    fs::write(
        folder.path().join("tensorswap-store"),
        "tensorswap-store\nformat 2\n",
    )
    .unwrap();
    let err = PersistentStore::open(folder.path(), StoreOptions::new(1 << 20)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Version {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("format version 2"), "{err}");
}

#[test]
fn a_damaged_index_file_is_a_typed_error_and_the_values_are_kept() {
    let folder = tempfile::tempdir().unwrap();
    let store = PersistentStore::open(folder.path(), StoreOptions::new(1 << 20)).unwrap();
    put(&store, b"a", 5000);
    drop(store);
    let data = fs::read(folder.path().join("values.dat")).unwrap();
    let index = folder.path().join("index.redb");
    let mut bytes = fs::read(&index).unwrap();
    for b in bytes.iter_mut().take(4096) {
        *b ^= 0x5a;
    }
    fs::write(&index, &bytes).unwrap();
    let err = PersistentStore::open(folder.path(), StoreOptions::new(1 << 20)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::IndexCorrupt { .. } | StoreError::Index { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("index.redb"), "{err}");
    assert_eq!(fs::read(folder.path().join("values.dat")).unwrap(), data);
}

#[test]
fn a_damaged_index_entry_is_named_by_its_key() {
    let folder = tempfile::tempdir().unwrap();
    let store = PersistentStore::open(folder.path(), StoreOptions::new(1 << 20)).unwrap();
    put(&store, b"good", 100);
    put(&store, b"bad", 100);
    drop(store);
    {
        // Flip a bit of one entry, behind the store's back.
        const VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("values");
        let db = Database::open(folder.path().join("index.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(VALUES).unwrap();
            let mut entry = table.get(&b"bad"[..]).unwrap().unwrap().value().to_vec();
            entry[12] ^= 1;
            table.insert(&b"bad"[..], &entry[..]).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = PersistentStore::open(folder.path(), StoreOptions::new(1 << 20)).unwrap_err();
    assert!(
        matches!(&err, StoreError::IndexCorrupt { reason, .. } if reason.contains("`bad`")),
        "{err}"
    );
}

#[test]
fn a_smaller_capacity_evicts_or_is_refused_without_eviction() {
    let folder = tempfile::tempdir().unwrap();
    let store = PersistentStore::open(folder.path(), StoreOptions::new(64 << 10)).unwrap();
    for key in 0..8u8 {
        put(&store, &[key], 8192);
    }
    drop(store);
    let err = PersistentStore::open(folder.path(), StoreOptions::new(32 << 10).eviction(false))
        .unwrap_err();
    assert!(matches!(err, StoreError::CapacityTooSmall { .. }), "{err}");
    // Refused: the store is as it was, at its old capacity.
    let store = PersistentStore::open(folder.path(), StoreOptions::existing()).unwrap();
    assert_eq!((store.stats().keys, store.stats().capacity), (8, 64 << 10));
    drop(store);
    let store = PersistentStore::open(folder.path(), StoreOptions::new(32 << 10)).unwrap();
    let stats = store.stats();
    assert!(stats.held_bytes <= 32 << 10 && stats.keys > 0, "{stats:?}");
    assert!(store.verify().unwrap().is_clean());
    drop(store);
    let store = PersistentStore::open(folder.path(), StoreOptions::existing()).unwrap();
    assert_eq!(store.stats().capacity, 32 << 10);
}

#[test]
fn a_folder_this_process_may_not_write_is_read_only() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        println!("skipped: running as root, whom file permissions do not stop (the error's mapping is unit-tested in error.rs)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let folder = parent.path().join("ro");
    drop(PersistentStore::open(&folder, StoreOptions::new(1 << 20)).unwrap());
    for entry in fs::read_dir(&folder).unwrap() {
        fs::set_permissions(entry.unwrap().path(), fs::Permissions::from_mode(0o444)).unwrap();
    }
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o555)).unwrap();
    let err = PersistentStore::open(&folder, StoreOptions::existing()).unwrap_err();
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
}
