//! The `tensorswap` command end to end: output shapes and error paths.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

fn tensorswap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tensorswap"))
        .args(args)
        .output()
        .expect("the tensorswap binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn info_lists_backends_devices_and_lock_limits() {
    let out = tensorswap(&["info"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("backends compiled in: cpu"), "{stdout}");
    assert!(stdout.contains("pinned host memory:"), "{stdout}");
    assert!(stdout.contains("page-locking: RLIMIT_MEMLOCK"), "{stdout}");
    assert!(
        stdout.contains("default device: chose host memory (cpu)"),
        "{stdout}"
    );
}

#[test]
fn bench_json_has_one_record_per_op_and_size() {
    let out = tensorswap(&[
        "bench",
        "--min-size",
        "4K",
        "--max-size",
        "16K",
        "--reps",
        "3",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let records: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect();
    assert_eq!(records.len(), 6, "2 sizes x (upload, download, memcpy)");
    for (record, (op, bytes)) in records.iter().zip([
        ("upload", 4096),
        ("download", 4096),
        ("memcpy", 4096),
        ("upload", 16384),
        ("download", 16384),
        ("memcpy", 16384),
    ]) {
        assert_eq!(record["op"], op, "{record}");
        assert_eq!(record["bytes"], bytes, "{record}");
        assert_eq!(record["backend"], "cpu", "{record}");
        assert_eq!(record["reps"], 3, "{record}");
        let seconds = record["seconds"].as_f64().expect("seconds is a number");
        let gbps = record["gbps"].as_f64().expect("gbps is a number");
        assert!(seconds > 0.0 && gbps > 0.0, "{record}");
        let implied = bytes as f64 / seconds / 1e9;
        assert!(
            (gbps - implied).abs() <= 1e-9 * implied.max(1.0),
            "gbps is bytes/seconds/1e9: {record}"
        );
        assert_eq!(
            record.get("vs_memcpy").is_some(),
            op != "memcpy",
            "{record}"
        );
    }
}

#[test]
fn bench_table_shows_ratios_to_memcpy() {
    let out = tensorswap(&[
        "bench",
        "--min-size",
        "64K",
        "--max-size",
        "64K",
        "--reps",
        "2",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("upload/memcpy") && stdout.contains("download/memcpy"),
        "{stdout}"
    );
    let row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("64 KiB"))
        .expect("a 64 KiB row");
    assert_eq!(row.matches('x').count(), 2, "two ratios in {row:?}");
}

#[test]
fn bad_arguments_are_errors_that_say_what_to_change() {
    for (args, expected) in [
        (&["bench", "--backend", "nope"][..], "compiled in: cpu"),
        (&["bench", "--min-size", "0"][..], "--min-size"),
        (
            &["bench", "--min-size", "1M", "--max-size", "4K"][..],
            "--max-size",
        ),
        (&["bench", "--reps", "0"][..], "--reps"),
        (&["bench", "--max-size", "12Q"][..], "unknown unit"),
    ] {
        let out = tensorswap(args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tensorswap"))
        .args([
            "bench",
            "--min-size",
            "4K",
            "--max-size",
            "64M",
            "--reps",
            "2",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tensorswap binary runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut first)
        .expect("one line");
    // The reader is dropped here: later writes hit a closed pipe.
    let out = child.wait_with_output().expect("the run ends");
    assert!(first.contains("\"op\""), "{first}");
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
}
