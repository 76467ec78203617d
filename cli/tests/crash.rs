//! Nothing left behind: `tensorswap bench` killed with SIGKILL at random
//! moments leaves no bytes on disk, the next run removes the empty folder,
//! and SIGINT, SIGTERM and SIGHUP end a run cleanly with nothing left.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// A workload that swaps for a second or so: 32 tensors, 2 timed loops.
const WORKLOAD: &[&str] = &["bench", "--tensors", "32", "--size", "64M", "--loops", "2"];

fn bench(folder: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tensorswap"))
        .args(WORKLOAD)
        .arg("--folder")
        .arg(folder)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tensorswap binary runs")
}

/// Bytes in regular files anywhere under `folder`, and the paths holding them.
fn bytes_under(folder: &Path) -> (u64, Vec<String>) {
    let mut total = 0;
    let mut found = Vec::new();
    let mut stack = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable folder") {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.len() > 0 {
                total += meta.len();
                found.push(format!("{} ({} bytes)", entry.path().display(), meta.len()));
            }
        }
    }
    (total, found)
}

fn entries(folder: &Path) -> Vec<String> {
    std::fs::read_dir(folder)
        .expect("readable folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// xorshift64*: enough randomness for kill moments, reproducible from the
/// seed the test prints.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn sigkill_at_random_moments_leaves_no_bytes_and_the_next_run_clears_the_folder() {
    let parent = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let full = bench(parent.path()).wait_with_output().expect("bench ran");
    assert!(
        full.status.success(),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );
    let span = started.elapsed();
    assert!(
        entries(parent.path()).is_empty(),
        "a clean run left {:?}",
        entries(parent.path())
    );

    let mut seed = std::env::var("TENSORSWAP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("kill moments from TENSORSWAP_CRASH_SEED={seed} over a {span:?} run");
    let mut killed_while_running = 0;
    for round in 0..20 {
        let at = Duration::from_micros(next(&mut seed) % span.as_micros() as u64);
        let mut child = bench(parent.path());
        std::thread::sleep(at);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().expect("the child is reaped");
        if !status.success() {
            killed_while_running += 1;
        }
        let (bytes, holding) = bytes_under(parent.path());
        assert_eq!(
            bytes, 0,
            "round {round}: SIGKILL after {at:?} left {bytes} bytes: {holding:?}"
        );
        // Each run removes the folder the one before it left.
        let left = entries(parent.path());
        assert!(left.len() <= 1, "round {round}: folders pile up: {left:?}");
    }
    assert!(
        killed_while_running >= 10,
        "only {killed_while_running} of 20 kills hit a running bench"
    );
    let sweep = tensorswap::SwapDir::remove_stale(parent.path()).expect("sweep");
    assert_eq!(sweep.left, 0, "{sweep:?}");
    assert!(
        entries(parent.path()).is_empty(),
        "left: {:?}",
        entries(parent.path())
    );
}

/// Sends `signal` to `child` and waits for it, reading the rest of its
/// stdout (kept open until then: a closed pipe would end the run on its
/// own) and its stderr.
fn interrupt(
    mut child: Child,
    signal: i32,
    stdout: Option<BufReader<std::process::ChildStdout>>,
) -> (std::process::ExitStatus, String) {
    let pid = i32::try_from(child.id()).expect("a pid");
    // SAFETY: kill takes plain integers; pid is our own unreaped child.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    if let Some(mut stdout) = stdout {
        std::io::copy(&mut stdout, &mut std::io::sink()).expect("the rest of stdout");
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    (child.wait().expect("the child is reaped"), stderr)
}

#[test]
fn sigint_sigterm_and_sighup_end_the_run_cleanly() {
    for (signal, name) in [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        let parent = tempfile::tempdir().expect("tempdir");
        let mut child = bench(parent.path());
        // The first line is printed once the tensors are registered.
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("a first line");
        assert!(line.starts_with("tensorswap bench"), "{line}");
        let (status, stderr) = interrupt(child, signal, Some(stdout));
        assert_eq!(status.code(), Some(128 + signal), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("interrupted by {name}")),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            entries(parent.path()).is_empty(),
            "{name} left {:?}",
            entries(parent.path())
        );
    }
}

/// The other modes stop cleanly too: the file bench, the device bench and
/// `tune`, each signalled a moment into its run, exit 128 + the signal and
/// leave their folder empty.
#[test]
fn every_mode_ends_cleanly_on_a_signal() {
    for (args, signal) in [
        (
            &[
                "bench", "--only", "files", "--size", "64M", "--loops", "100",
            ][..],
            libc::SIGINT,
        ),
        (&["bench", "--only", "device"][..], libc::SIGTERM),
        (
            &["tune", "--size", "64M", "--loops", "20"][..],
            libc::SIGHUP,
        ),
    ] {
        let parent = tempfile::tempdir().expect("tempdir");
        let output = parent.path().join("aio.json");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tensorswap"));
        command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if args[0] == "tune" {
            command.arg("--output").arg(&output);
        }
        if args.contains(&"files") || args[0] == "tune" {
            command.arg("--folder").arg(parent.path());
        }
        let child = command.spawn().expect("the tensorswap binary runs");
        std::thread::sleep(Duration::from_millis(1500));
        let (status, stderr) = interrupt(child, signal, None);
        assert_eq!(status.code(), Some(128 + signal), "{args:?}: {stderr}");
        assert!(stderr.contains("interrupted by"), "{args:?}: {stderr}");
        assert!(
            entries(parent.path()).is_empty(),
            "{args:?} left {:?}",
            entries(parent.path())
        );
    }
}
