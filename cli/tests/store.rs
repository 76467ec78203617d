//! `tensorswap store ls|stats|verify` on a store made through the library.

use std::process::{Command, Output};

use tensorswap::store::{PersistentStore, PutOptions, StoreOptions};

fn tensorswap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tensorswap"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn ls_stats_and_verify_report_a_store_and_verify_fails_on_damage() {
    let parent = tempfile::tempdir().unwrap();
    let folder = parent.path().join("kv");
    let store = PersistentStore::open(&folder, StoreOptions::new(8 << 20)).unwrap();
    let meta = PutOptions::new().meta(b"f16 [2048]");
    store
        .put(b"layers.0.weight", vec![1u8; 4096], &meta)
        .unwrap()
        .wait()
        .unwrap();
    store
        .put(
            b"layers.1.weight",
            vec![2u8; 10_000],
            &PutOptions::new().pinned(true),
        )
        .unwrap()
        .wait()
        .unwrap();
    store
        .put(b"other", vec![3u8; 5], &PutOptions::new())
        .unwrap()
        .wait()
        .unwrap();
    drop(store);
    let path = folder.to_str().unwrap();

    let ls = tensorswap(&["store", "ls", path, "--prefix", "layers."]);
    assert!(ls.status.success(), "{}", text(&ls));
    let lines: Vec<String> = String::from_utf8_lossy(&ls.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "`layers.0.weight`\t4096\t`f16 [2048]`\t",
            "`layers.1.weight`\t10000\t\tpinned"
        ],
        "{}",
        text(&ls)
    );

    let stats = tensorswap(&["store", "stats", path]);
    assert!(stats.status.success(), "{}", text(&stats));
    let shown = text(&stats);
    assert!(
        shown.contains("keys: 3 (1 pinned)") && shown.contains("capacity: 8 MiB"),
        "{shown}"
    );

    let verify = tensorswap(&["store", "verify", path]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        text(&verify).contains("checked 3 keys") && text(&verify).contains("clean"),
        "{}",
        text(&verify)
    );

    // Damage the 10,000-byte value's first block: verify names it and fails.
    let data = folder.join("values.dat");
    let mut bytes = std::fs::read(&data).unwrap();
    let at = bytes
        .chunks(4096)
        .position(|b| b[..16] == [2u8; 16])
        .unwrap()
        * 4096;
    bytes[at + 7] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let verify = tensorswap(&["store", "verify", path]);
    let shown = text(&verify);
    assert_eq!(verify.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("BAD `layers.1.weight`") && shown.contains("1 problems"),
        "{shown}"
    );
}

#[test]
fn a_folder_that_is_no_store_is_refused_and_left_alone() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("nothing-here");
    let out = tensorswap(&["store", "stats", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("is not a tensorswap store"),
        "{}",
        text(&out)
    );
    assert!(!missing.exists(), "the tool created the folder");
}

#[test]
fn bench_only_store_reports_each_size_next_to_the_engine_and_the_reopen() {
    let parent = tempfile::tempdir().unwrap();
    let out = tensorswap(&[
        "bench",
        "--only",
        "store",
        "--json",
        "--folder",
        parent.path().to_str().unwrap(),
        "--value-sizes",
        "4K,100K",
        "--store-bytes",
        "1M",
        "--loops",
        "1",
        "--reopen-keys",
        "500",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5, "{rows:?}");
    for row in &rows[..4] {
        assert!(row["store_bytes_per_s"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["engine_bytes_per_s"].as_f64().unwrap() > 0.0, "{row}");
    }
    assert_eq!(rows[4]["reopen_keys"], 500);
    // The bench cleans up after itself.
    assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
}
