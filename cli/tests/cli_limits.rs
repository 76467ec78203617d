//! The `tensorswap` command under memory limits and after being killed:
//! every mode refuses what will not fit before allocating it, running out
//! anyway is an error and not an abort, and what a killed run leaves is
//! swept by the next.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tensorswap"));
    command.args(args);
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs with `RLIMIT_AS` set to `bytes` in the child.
fn with_address_space(bytes: u64, args: &[&str]) -> Output {
    with_limit(libc::RLIMIT_AS, bytes, args)
}

/// Runs with the limit `resource` set to `value` in the child.
fn with_limit(resource: libc::__rlimit_resource_t, value: u64, args: &[&str]) -> Output {
    let mut command = command(args);
    limit(&mut command, resource, value);
    command.output().expect("the tensorswap binary runs")
}

/// Sets the limit `resource` to `value` in `command`'s child.
fn limit(command: &mut Command, resource: libc::__rlimit_resource_t, value: u64) {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(resource, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Sizes far beyond this machine are refused at once, with the figures and
/// the knob, by every mode that would allocate them.
#[test]
fn every_mode_refuses_what_memory_cannot_hold_before_allocating() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().to_string_lossy().into_owned();
    let output = tempfile::tempdir().expect("tempdir");
    let aio = output
        .path()
        .join("aio.json")
        .to_string_lossy()
        .into_owned();
    for (args, knob) in [
        (
            &["bench", "--only", "files", "--size", "1000T"][..],
            "lower --size",
        ),
        (&["bench", "--size", "1000T"][..], "lower --size"),
        (
            &["bench", "--only", "device", "--max-size", "1000T"][..],
            "lower --max-size",
        ),
        (
            &["tune", "--size", "1000T", "--output", &aio][..],
            "lower --size",
        ),
        (
            &["soak", "--tensors", "100000000"][..],
            "lower --threads or --tensors",
        ),
    ] {
        let started = Instant::now();
        let mut command = command(args);
        if args[..2] != ["bench", "--only"] || args[2] != "device" {
            command.args(["--folder", &folder]);
        }
        let out = command.output().expect("runs");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(knob) && stderr.contains("may allocate only"),
            "{args:?}: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{args:?} was refused only after working"
        );
    }
    assert_eq!(std::fs::read_dir(dir.path()).expect("listing").count(), 0);
}

/// Under an address-space limit (`ulimit -v`, `prlimit --as`) the limit is
/// named; the soak never aborts, whatever the limit lets it do.
#[test]
fn an_address_space_limit_is_named_and_running_out_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().to_string_lossy().into_owned();
    let out = with_address_space(
        512 << 20,
        &[
            "bench", "--only", "files", "--size", "1G", "--folder", &folder,
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("RLIMIT_AS"), "{stderr}");
    for limit in [64u64 << 20, 300 << 20] {
        let out = with_address_space(limit, &["soak", "--seconds", "2", "--folder", &folder]);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.signal(),
            None,
            "soak under a {limit}-byte address space was killed: {stderr}"
        );
        if !out.status.success() {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(
                ["RLIMIT_AS", "allocat", "memory"]
                    .iter()
                    .any(|w| stderr.contains(w)),
                "{stderr}"
            );
        }
    }
    // A later run sweeps whatever a failed one left.
    let out = command(&[
        "bench", "--only", "files", "--size", "64K", "--folder", &folder,
    ])
    .output()
    .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(dir.path()).expect("listing").count(), 0);
}

/// A soak killed with SIGKILL leaves swap folders whose owner is dead; the
/// next run in the same folder removes them.
#[test]
fn the_folders_of_a_killed_soak_are_swept_by_the_next_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().to_string_lossy().into_owned();
    let mut soak = command(&["soak", "--seconds", "60", "--folder", &folder])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("soak starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(dir.path()).expect("listing").count() < 2 {
        assert!(Instant::now() < deadline, "the soak made no swap folders");
        std::thread::sleep(Duration::from_millis(20));
    }
    soak.kill().expect("SIGKILL");
    soak.wait().expect("reaped");
    assert!(std::fs::read_dir(dir.path()).expect("listing").count() >= 2);
    let out = command(&[
        "bench", "--only", "files", "--size", "64K", "--folder", &folder,
    ])
    .output()
    .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("listing")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Short of file descriptors (`ulimit -n`), a striped run fails at one
/// step or another of setting up its folders, with the reason, and leaves
/// none of them behind.
#[test]
fn a_striped_run_short_of_descriptors_leaves_no_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folders: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            let f = dir.path().join(n);
            std::fs::create_dir(&f).expect("folder");
            f.to_string_lossy().into_owned()
        })
        .collect();
    for limit in 8..=20 {
        for only in ["files", "swap"] {
            let mut args = vec!["bench", "--only", only, "--size", "1M"];
            for f in &folders {
                args.extend(["--folder", f]);
            }
            let out = with_limit(libc::RLIMIT_NOFILE, limit, &args);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.signal(), None, "{stderr}");
            if !out.status.success() {
                assert!(stderr.contains("Too many open files"), "{stderr}");
            }
            for f in &folders {
                let left: Vec<_> = std::fs::read_dir(f).expect("listing").collect();
                assert!(
                    left.is_empty(),
                    "--only {only} under {limit} descriptors left {left:?} in {f}: {stderr}"
                );
            }
        }
    }
}

/// Where the memlock limit keeps io_uring from starting (the kernel charges
/// its rings to `RLIMIT_MEMLOCK` for a process without `CAP_IPC_LOCK`),
/// the message says so and what to do. Run as an unprivileged user with a
/// limit of 0, where the test runs as root and `setpriv` exists; skipped
/// otherwise, and where this kernel does not charge rings to the limit.
#[test]
fn io_uring_refused_by_the_memlock_limit_says_so() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let (true, Some(setpriv)) = (root, setpriv) else {
        eprintln!("skipped: needs root and setpriv to run as an unprivileged user");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let binary = dir.path().join("tensorswap");
    std::fs::copy(env!("CARGO_BIN_EXE_tensorswap"), &binary).expect("copy");
    let mut command = Command::new(setpriv);
    command.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    command.arg(&binary).arg("info");
    limit(&mut command, libc::RLIMIT_MEMLOCK, 0);
    let out = command.output().expect("setpriv runs");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("io_uring:"))
        .unwrap_or_else(|| panic!("no io_uring line: {stdout}"));
    if line.contains("Cannot allocate memory") {
        assert!(
            line.contains("RLIMIT_MEMLOCK") && line.contains("ulimit -l"),
            "{line}"
        );
    } else {
        eprintln!("skipped: this kernel starts io_uring under a memlock limit of 0 ({line})");
    }
}
