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
    let compiled = stdout
        .lines()
        .find_map(|l| l.strip_prefix("backends compiled in: "))
        .unwrap_or_else(|| panic!("no list of backends: {stdout}"));
    assert!(compiled.split(", ").any(|b| b == "cpu"), "{stdout}");
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
        "--only",
        "device",
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
        "--only",
        "device",
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
        (
            &["bench", "--backend", "nope"][..],
            "backend \"nope\" in this build",
        ),
        (
            &["bench", "--only", "device", "--min-size", "0"][..],
            "--min-size",
        ),
        (
            &[
                "bench",
                "--only",
                "device",
                "--min-size",
                "1M",
                "--max-size",
                "4K",
            ][..],
            "--max-size",
        ),
        (&["bench", "--only", "device", "--reps", "0"][..], "--reps"),
        (&["bench", "--max-size", "12Q"][..], "unknown unit"),
        (&["bench", "--tensors", "0"][..], "--tensors"),
        (&["bench", "--loops", "0"][..], "--loops"),
        (
            &["bench", "--slabs", "0", "--size", "1M"][..],
            "at least one slab",
        ),
        (
            &["bench", "--all", "--only", "files"][..],
            "cannot be used with",
        ),
        (
            &["bench", "--write"][..],
            "`--write` applies to `--only files`",
        ),
        (
            &["bench", "--only", "files", "--tensors", "3"][..],
            "add `--only swap`",
        ),
        (
            &["bench", "--only", "device", "--folder", "/tmp"][..],
            "`--folder` applies to the swap workload",
        ),
        (
            &["bench", "--only", "files", "--backend", "cpu"][..],
            "`--backend` applies to",
        ),
        (&["bench", "--only", "files", "--loops", "0"][..], "--loops"),
        (
            &["bench", "--only", "files", "--engine", "spdk"][..],
            "known: auto, uring, threads",
        ),
        (
            &["bench", "--only", "files", "--block-size", "0"][..],
            "`block_size` is 0",
        ),
        (
            &["bench", "--only", "files", "--queue-depth", "0"][..],
            "`queue_depth` is 0",
        ),
        (
            &["bench", "--only", "files", "--folder", "/nonexistent/x"][..],
            "/nonexistent/x",
        ),
        (
            &["tune", "--queue-depths", "0", "--size", "1M"][..],
            "`queue_depth` is 0",
        ),
    ] {
        let out = tensorswap(args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Sizes that are not a multiple of the page or the alignment run in every
/// file mode (they used to panic copying a stamp shorter than a padded slab).
#[test]
fn odd_sizes_run_in_every_file_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().to_string_lossy().into_owned();
    let output = dir.path().join("aio.json").to_string_lossy().into_owned();
    for args in [
        &[
            "bench", "--only", "files", "--size", "1000000", "--loops", "1",
        ][..],
        &[
            "bench",
            "--only",
            "files",
            "--size",
            "1M",
            "--io-size",
            "300001",
            "--loops",
            "1",
        ][..],
        &[
            "bench",
            "--all",
            "--size",
            "1000001",
            "--loops",
            "1",
            "--value-sizes",
            "64K",
            "--store-bytes",
            "1M",
            "--reopen-keys",
            "100",
        ][..],
        &[
            "tune",
            "--size",
            "1000001",
            "--block-sizes",
            "256K",
            "--queue-depths",
            "2",
            "--parallelism",
            "1",
            "--output",
            &output,
        ][..],
    ] {
        let out = tensorswap(&[args, &["--folder", &folder]].concat());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn file_bench_json_has_the_ds_io_fields() {
    for engine in ["uring", "threads"] {
        let out = tensorswap(&[
            "bench",
            "--only",
            "files",
            "--json",
            "--size",
            "8M",
            "--io-size",
            "1M",
            "--block-size",
            "256K",
            "--queue-depth",
            "4",
            "--loops",
            "2",
            "--engine",
            engine,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let records: Vec<serde_json::Value> = text(&out.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
            .collect();
        assert_eq!(records.len(), 2, "write and read");
        for (record, op) in records.iter().zip(["write", "read"]) {
            assert_eq!(record["op"], op, "{record}");
            assert_eq!(record["engine"], engine, "{record}");
            assert_eq!(record["bytes"], 8 << 20, "{record}");
            assert_eq!(record["requests"], 8, "{record}");
            assert_eq!(record["block_size"], 256 << 10, "{record}");
            assert_eq!(record["queue_depth"], 4, "{record}");
            assert_eq!(record["loops"], 2, "{record}");
            let seconds = record["seconds"].as_f64().expect("seconds");
            let gbps = record["gbps"].as_f64().expect("gbps");
            let gibps = record["gibps"].as_f64().expect("gibps");
            assert!((gbps - (8 << 20) as f64 / seconds / 1e9).abs() < 1e-9 * gbps.max(1.0));
            assert!((gibps * 1.073741824 - gbps).abs() < 1e-6 * gbps.max(1.0));
            let (p50, p99) = (
                record["p50_us"].as_f64().expect("p50"),
                record["p99_us"].as_f64().expect("p99"),
            );
            assert!(p50 > 0.0 && p99 >= p50, "{record}");
        }
    }
}

#[test]
fn file_bench_table_labels_units_and_reads_only_when_asked() {
    let out = tensorswap(&[
        "bench",
        "--only",
        "files",
        "--size",
        "3M",
        "--read",
        "--loops",
        "1",
        "--no-checksums",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("GB = 10^9 bytes, GiB = 2^30 bytes"),
        "{stdout}"
    );
    assert!(
        stdout.contains("GB/s") && stdout.contains("GiB/s") && stdout.contains("p99 us"),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.trim_start().starts_with("read")),
        "{stdout}"
    );
    assert!(
        !stdout.lines().any(|l| l.trim_start().starts_with("write")),
        "{stdout}"
    );
}

#[test]
fn tune_writes_an_aio_config_that_parses_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("aio.json");
    let out = tensorswap(&[
        "tune",
        "--size",
        "4M",
        "--block-sizes",
        "256K,1M",
        "--queue-depths",
        "2,8",
        "--parallelism",
        "1",
        "--single-submit",
        "false,true",
        "--folder",
        &dir.path().to_string_lossy(),
        "--output",
        &output.to_string_lossy(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("256 KiB") || l.trim_start().starts_with("1 MiB"))
        .count();
    assert_eq!(rows, 8, "one row per configuration: {stdout}");
    for single in ["false", "true"] {
        let with = stdout
            .lines()
            .filter(|l| l.split_whitespace().nth(4) == Some(single));
        assert_eq!(
            with.count(),
            4,
            "single submit {single} in half the rows: {stdout}"
        );
    }
    let json = std::fs::read_to_string(&output).expect("tune wrote its output");
    let config = tensorswap::AioConfig::from_json(&json).expect("the written JSON parses");
    assert!([256 << 10, 1 << 20].contains(&config.block_size), "{json}");
    assert!([2, 8].contains(&config.queue_depth), "{json}");
    assert!(stdout.contains("best: block"), "{stdout}");
}

/// `--output` is checked before the sweep: an existing file or symlink is
/// an error unless `--force`, which replaces a symlink without following it;
/// a folder that cannot take the file fails at once, leaving nothing.
#[test]
fn tune_checks_its_output_first_and_never_follows_a_symlink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().to_string_lossy().into_owned();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").expect("victim");
    let link = dir.path().join("aio.json");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    let tune = |output: &std::path::Path, extra: &[&str]| {
        let output = output.to_string_lossy().into_owned();
        let args = [
            &[
                "tune",
                "--size",
                "1M",
                "--block-sizes",
                "256K",
                "--queue-depths",
                "2",
                "--parallelism",
                "1",
            ][..],
            &["--folder", &folder, "--output", &output],
            extra,
        ]
        .concat();
        tensorswap(&args)
    };
    let started = std::time::Instant::now();
    let out = tune(&link, &[]);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("pass --force"),
        "{stderr}"
    );
    assert!(!text(&out.stdout).contains("best:"), "the sweep ran first");
    assert!(!stderr.contains("AioConfig {"), "{stderr}");
    let out = tune(std::path::Path::new("/nonexistent/aio.json"), &[]);
    assert!(!out.status.success() && text(&out.stderr).contains("/nonexistent/aio.json"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "checked only after a sweep"
    );

    let out = tune(&link, &["--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious"
    );
    let written = std::fs::read_to_string(&link).expect("output");
    assert!(!std::fs::symlink_metadata(&link)
        .expect("output")
        .is_symlink());
    tensorswap::AioConfig::from_json(&written).expect("the output parses");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("listing")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["aio.json", "victim"], "nothing else is left");
}

/// `--force` replaces a regular file or a symlink only: a folder, a FIFO
/// or a character device at `--output` is refused before the sweep, and
/// left as it was.
#[test]
fn tune_force_never_replaces_what_is_not_a_file() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo");
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).expect("folder");
    let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    // A character device of its own (the numbers of /dev/null) where the
    // test may make one (as root): the real /dev/null is not put at risk.
    let device = dir.path().join("null");
    let d = std::ffi::CString::new(device.to_string_lossy().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    let made = unsafe { libc::mknod(d.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) } == 0;
    let mut targets = vec![(fifo.as_path(), "a FIFO"), (folder.as_path(), "a folder")];
    if made {
        targets.push((device.as_path(), "a character device"));
    }
    let started = std::time::Instant::now();
    for (target, kind) in targets {
        let output = target.to_string_lossy().into_owned();
        let out = tensorswap(&["tune", "--size", "64M", "--output", &output, "--force"]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{output}: {stderr}");
        assert!(
            stderr.contains(kind) && stderr.contains(&output),
            "{stderr}"
        );
        assert!(!text(&out.stdout).contains("best:"), "the sweep ran first");
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "checked only after a sweep"
    );
    let kind = |p: &std::path::Path| {
        std::fs::symlink_metadata(p)
            .expect("still there")
            .file_type()
    };
    assert!(kind(&fifo).is_fifo());
    assert!(kind(&folder).is_dir());
    if made {
        assert!(kind(&device).is_char_device());
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("listing").collect();
    assert_eq!(left.len(), 2 + usize::from(made), "no staging file is left");
}

/// A block size that breaks direct I/O is said, not silently buffered; the
/// cpu backend's direct storage says its speed is the page cache's.
#[test]
fn odd_block_sizes_and_emulated_direct_storage_are_named() {
    let out = tensorswap(&[
        "bench",
        "--only",
        "files",
        "--json",
        "--size",
        "64K",
        "--block-size",
        "3",
        "--loops",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().expect("a record")).expect("JSON");
    if first["direct"] == true {
        assert!(
            text(&out.stderr).contains("not a multiple of the direct-I/O alignment"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = tensorswap(&[
        "bench",
        "--size",
        "8M",
        "--tensors",
        "4",
        "--loops",
        "1",
        "--gds",
        "--backend",
        "cpu",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("swap data path:"))
        .expect("a data path line");
    assert!(line.contains("page cache's, not the disk's"), "{line}");
}

/// A device bench whose buffers cannot fit in memory is refused before it
/// allocates (it used to be killed by the kernel's OOM killer).
#[test]
fn a_device_bench_too_big_for_memory_is_refused_up_front() {
    let half = tensorswap_core::sys::physical_memory().expect("physical memory") / 2;
    let size = format!("{}K", half >> 10);
    let out = tensorswap(&[
        "bench",
        "--only",
        "device",
        "--min-size",
        &size,
        "--max-size",
        &size,
        "--reps",
        "1",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lower --max-size"), "{stderr}");
}

/// The soak: eight threads on one swapper and one engine for a few seconds,
/// every byte checked, nothing left behind.
#[test]
fn a_short_soak_checks_every_byte_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().to_string_lossy().into_owned();
    let out = tensorswap(&[
        "soak",
        "--seconds",
        "3",
        "--threads",
        "8",
        "--folder",
        &folder,
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("0 wrong; pool whole"), "{stdout}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("listing").count(), 0);
    let out = tensorswap(&["soak", "--threads", "0"]);
    assert!(!out.status.success() && text(&out.stderr).contains("--threads"));
}

/// The fio comparison script runs the binary cargo built, wherever
/// `CARGO_TARGET_DIR` puts it (it used to look only in `target/`).
#[test]
fn the_fio_script_finds_the_binary_under_cargo_target_dir() {
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/fio-side-by-side.sh"
        ))
        .arg("--dry-run")
        .env("CARGO_TARGET_DIR", "/elsewhere/target")
        .output()
        .expect("bash runs");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("ours: /elsewhere/target/release/tensorswap bench"),
        "{stdout}"
    );
}

#[test]
fn info_reports_io_uring_and_each_folder() {
    let dirs = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    let shm = std::path::Path::new("/dev/shm");
    let mut args = vec!["info".to_string()];
    for dir in &dirs {
        args.extend(["--folder".into(), dir.path().display().to_string()]);
    }
    if shm.is_dir() {
        args.extend(["--folder".into(), "/dev/shm".into()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tensorswap(&args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("io_uring: "), "{stdout}");
    assert!(stdout.contains("huge pages: "), "{stdout}");
    for dir in &dirs {
        let section = stdout
            .split(&format!("  {}\n", dir.path().display()))
            .nth(1)
            .unwrap_or_else(|| panic!("no section for {}: {stdout}", dir.path().display()));
        assert!(
            section.contains("    file system: ") && section.contains(" free of "),
            "{stdout}"
        );
        assert!(section.contains("    direct I/O: "), "{stdout}");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("readdir").count(),
            0,
            "the probe file was removed"
        );
    }
    if shm.is_dir() {
        assert!(
            stdout.contains("  /dev/shm\n    file system: tmpfs"),
            "{stdout}"
        );
    }
}

#[test]
fn swap_bench_json_compares_swaps_with_the_engine() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let folder = dir.path().to_str().expect("a UTF-8 path");
    let out = tensorswap(&[
        "bench",
        "--only",
        "swap",
        "--size",
        "8M",
        "--tensors",
        "9",
        "--slab-size",
        "1M",
        "--slabs",
        "3",
        "--loops",
        "2",
        "--folder",
        folder,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let records: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect();
    let ops: Vec<&str> = records.iter().filter_map(|r| r["op"].as_str()).collect();
    assert_eq!(ops, ["swap_out", "swap_in", "engine_write", "engine_read"]);
    for record in &records {
        assert_eq!(record["backend"], "cpu", "{record}");
        assert_eq!(record["bytes"], records[0]["bytes"], "{record}");
        assert!(record["gbps"].as_f64().is_some_and(|g| g > 0.0), "{record}");
        assert!(
            record["seconds"].as_f64().is_some_and(|s| s > 0.0),
            "{record}"
        );
    }
    let bytes = records[0]["bytes"].as_u64().unwrap_or(0);
    assert!(
        bytes > 7 << 20 && bytes <= 8 << 20,
        "{bytes} bytes for --size 8M"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("listable").count(),
        0,
        "the bench left files behind"
    );
    let table = tensorswap(&[
        "bench",
        "--size",
        "4M",
        "--tensors",
        "5",
        "--slab-size",
        "1M",
        "--loops",
        "1",
        "--folder",
        folder,
    ]);
    let stdout = text(&table.stdout);
    assert!(table.status.success(), "{}", text(&table.stderr));
    for row in ["swap out", "swap in", "round trip", "verified"] {
        assert!(stdout.contains(row), "{row:?} missing: {stdout}");
    }
}

#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tensorswap"))
        .args([
            "bench",
            "--only",
            "device",
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

/// `TENSORSWAP_CUDA_EMULATOR`: the explicit opt-in that runs the command on
/// the emulated CUDA driver, and nothing else does.
#[cfg(feature = "cuda")]
mod cuda_emulator {
    use super::*;

    /// The emulator library beside this test binary (a workspace build
    /// makes it), or `None` after saying why the test is skipped; a failure
    /// where `TENSORSWAP_REQUIRE` names `cuda-emulated`.
    fn library() -> Option<std::path::PathBuf> {
        let exe = std::env::current_exe().expect("this test binary's path");
        let deps = exe.parent().expect("a folder");
        let found = [Some(deps), deps.parent()]
            .into_iter()
            .flatten()
            .map(|folder| folder.join("libcuda_emulator.so"))
            .find(|lib| lib.exists());
        let required = tensorswap_conformance::required_backends()
            .expect("TENSORSWAP_REQUIRE parses")
            .iter()
            .any(|b| b == "cuda-emulated");
        match found {
            Some(lib) => Some(lib),
            None if required => panic!("no libcuda_emulator.so beside {}", exe.display()),
            None => {
                eprintln!("skipped: the emulator library is not built (`cargo test --workspace --features tensorswap/cuda` builds it)");
                None
            }
        }
    }

    fn on_emulator(lib: &std::path::Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tensorswap"))
            .args(args)
            .env("TENSORSWAP_CUDA_EMULATOR", lib)
            .output()
            .expect("the tensorswap binary runs")
    }

    #[test]
    fn info_and_bench_say_when_the_driver_is_emulated() {
        let Some(lib) = library() else { return };
        let out = on_emulator(&lib, &["info"]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(stdout.contains("driver: EMULATED on the CPU"), "{stdout}");
        assert!(
            stdout.contains("default device: chose tensorswap emulated GPU (CPU)"),
            "{stdout}"
        );

        let mut args = vec![
            "bench",
            "--backend",
            "cuda",
            "--size",
            "8MiB",
            "--tensors",
            "2",
            "--loops",
            "1",
        ];
        if cfg!(feature = "gds") {
            args.push("--gds");
        }
        let out = on_emulator(&lib, &args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{stderr}");
        assert!(
            stdout.contains("every byte of every tensor verified"),
            "{stdout}"
        );
        assert!(stderr.contains("the cuda driver is EMULATED"), "{stderr}");
        if cfg!(feature = "gds") {
            assert!(
                stdout.contains("swap data path: direct storage"),
                "{stdout}"
            );
        }
    }

    #[test]
    fn without_the_opt_in_nothing_loads_the_emulator() {
        let out = tensorswap(&["info"]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(!stdout.contains("EMULATED"), "{stdout}");
        assert!(!stdout.contains("tensorswap emulated GPU"), "{stdout}");
    }

    #[test]
    fn a_wrong_library_path_is_an_error_that_says_how_to_build_it() {
        let out = Command::new(env!("CARGO_BIN_EXE_tensorswap"))
            .arg("info")
            .env(
                "TENSORSWAP_CUDA_EMULATOR",
                "/nonexistent/libcuda_emulator.so",
            )
            .output()
            .expect("the tensorswap binary runs");
        let stderr = text(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("is not the emulator library"), "{stderr}");
        assert!(
            stderr.contains("cargo build --release -p tensorswap-cuda-emulator"),
            "{stderr}"
        );
    }
}

/// The striping benchmark's commands: N folders, each `--throttle`d, the
/// binary from `CARGO_TARGET_DIR`; its scratch folder is removed.
#[test]
fn the_striping_script_runs_one_bench_per_folder_count() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/striping-bench.sh"
        ))
        .args(["--dry-run", "--cap", "50M", "--root"])
        .arg(root.path())
        .env("CARGO_TARGET_DIR", "/elsewhere/target")
        .output()
        .expect("bash runs");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (n, line) in [1, 2, 4].into_iter().zip(stdout.lines()) {
        assert!(
            line.starts_with(&format!(
                "N={n}: /elsewhere/target/release/tensorswap bench"
            )),
            "{stdout}"
        );
        assert_eq!(line.matches("--folder ").count(), n, "{line}");
        assert!(line.contains("--throttle 50M"), "{line}");
    }
    assert_eq!(std::fs::read_dir(root.path()).expect("listing").count(), 0);
}

/// A swap over two folders reports each folder's bytes and rate; both
/// folders take part, and their bytes cover the tensors'.
#[test]
fn swap_bench_over_two_folders_reports_each_folder() {
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let folders = [
        a.path().to_str().expect("UTF-8"),
        b.path().to_str().expect("UTF-8"),
    ];
    let out = tensorswap(&[
        "bench",
        "--size",
        "12M",
        "--tensors",
        "6",
        "--slab-size",
        "4M",
        "--loops",
        "1",
        "--throttle",
        "1G",
        "--folder",
        folders[0],
        "--folder",
        folders[1],
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for line in text(&out.stdout).lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(record["cap_per_folder"], 1u64 << 30, "{record}");
        let each = record["folders"].as_array().expect("a folders list");
        assert_eq!(each.len(), 2, "{record}");
        let mut total = 0;
        for (folder, parent) in each.iter().zip(folders) {
            let path = folder["folder"].as_str().expect("a path");
            assert!(path.starts_with(parent), "{record}");
            let bytes = folder["bytes"].as_u64().expect("bytes");
            assert!(
                bytes > 0 && folder["gbps"].as_f64().is_some_and(|g| g > 0.0),
                "{record}"
            );
            total += bytes;
        }
        assert!(
            total >= record["bytes"].as_u64().expect("bytes"),
            "{record}"
        );
    }
    let table = tensorswap(&[
        "bench",
        "--size",
        "4M",
        "--tensors",
        "4",
        "--loops",
        "1",
        "--folder",
        folders[0],
        "--folder",
        folders[1],
        "--throttle",
        "1G",
    ]);
    let stdout = text(&table.stdout);
    assert!(table.status.success(), "{}", text(&table.stderr));
    assert!(
        stdout.contains("striped over 2 folders, 1 MiB at a time"),
        "{stdout}"
    );
    assert!(stdout.contains("per folder, GB/s"), "{stdout}");
    for dir in [&a, &b] {
        assert_eq!(std::fs::read_dir(dir.path()).expect("listing").count(), 0);
    }
}

/// Bad striping options are errors that say what is wrong.
#[test]
fn bad_striping_options_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().to_str().expect("UTF-8");
    let cases: [(&[&str], &str); 3] = [
        (
            &["bench", "--throttle", "0", "--folder", folder],
            "--throttle must be at least 1",
        ),
        (
            &["bench", "--only", "files", "--throttle", "1G"],
            "`--throttle` applies to the swap workload",
        ),
        (
            &[
                "bench",
                "--size",
                "1M",
                "--folder",
                folder,
                "--folder",
                "/nonexistent/drive",
            ],
            "/nonexistent/drive",
        ),
    ];
    for (args, says) in cases {
        let out = tensorswap(args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Options a user gets wrong are refused with the reason: a negative size,
/// an ambiguous unit, `--read` with `--write`, one folder given twice; and
/// a failure to write the report names standard output.
#[test]
fn ambiguous_and_contradictory_options_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().to_string_lossy().into_owned();
    let again = format!("{folder}/");
    for (args, says) in [
        (&["bench", "--size", "-1"][..], "cannot be negative"),
        (
            &["bench", "--only", "files", "--io-size", "-4K"][..],
            "cannot be negative",
        ),
        (&["bench", "--size", "1MB"][..], "ambiguous"),
        (&["tune", "--block-sizes", "1M,4MB"][..], "ambiguous"),
        (
            &["bench", "--only", "files", "--read", "--write"][..],
            "cannot be used with",
        ),
        (
            &[
                "bench", "--only", "files", "--size", "1M", "--folder", &folder, "--folder", &again,
            ][..],
            "are the same folder",
        ),
        (
            &[
                "bench", "--size", "1M", "--folder", &folder, "--folder", &again,
            ][..],
            "are the same folder",
        ),
    ] {
        let out = tensorswap(args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let help = text(&tensorswap(&["bench", "--help"]).stdout);
    assert!(
        help.contains("powers of 1024") && help.contains("10^9"),
        "{help}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("listing").count(), 0);

    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = Command::new(env!("CARGO_BIN_EXE_tensorswap"))
        .arg("info")
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .expect("runs");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("writing to standard output: No space left"),
        "{stderr}"
    );
}
