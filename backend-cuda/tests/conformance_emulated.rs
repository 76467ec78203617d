//! The whole conformance suite on the cuda backend against the emulated
//! driver (`backend-cuda/emulator`, issue 16), reported as
//! `conformance[cuda-emulated]`.
//!
//! Nothing else loads the emulator: its library is `libcuda_emulator.so`.
//! This binary links it as `libcuda.so.1` in a private folder and runs
//! itself again with that folder first on the loader path (the loader reads
//! `LD_LIBRARY_PATH` once, at start). `cargo test --workspace` builds the
//! library; without it (e.g. `cargo test -p backend-cuda` alone) the suite
//! is skipped with the reason, a failure under
//! `TENSORSWAP_REQUIRE=cuda-emulated`.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use swap_api::Error;
use tensorswap_conformance::{run, Subject};

/// Set in the second run: the emulator is on the loader path.
const CHILD: &str = "TENSORSWAP_CUDA_EMULATED";

const SUBJECT: Subject = Subject {
    label: "cuda-emulated",
    requires: "cuda-emulated",
};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/conformance.proptest-regressions"
);

/// The emulator library beside this binary (`target/<profile>/deps/`, where
/// `cargo test` puts it) or in the profile folder (`cargo build`).
fn emulator() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this test binary: {e}"))?;
    let deps = exe.parent().ok_or("this test binary has no folder")?;
    let found = [Some(deps), deps.parent()]
        .into_iter()
        .flatten()
        .map(|folder| folder.join("libcuda_emulator.so"))
        .find(|lib| lib.exists());
    found.ok_or_else(|| {
        format!(
            "the emulated driver is not built (no libcuda_emulator.so in {}): \
                 `cargo build -p cuda-emulator`, or run `cargo test --workspace`",
            deps.display()
        )
    })
}

/// Runs this binary again with the emulator on the loader path.
fn rerun_with(lib: PathBuf) -> Result<ExitCode, String> {
    let folder = tempfile::Builder::new()
        .prefix("tensorswap-cuda-emulated-")
        .tempdir()
        .map_err(|e| format!("a folder for the emulator's links: {e}"))?;
    for name in ["libcuda.so.1", "libcuda.so"] {
        std::os::unix::fs::symlink(&lib, folder.path().join(name))
            .map_err(|e| format!("linking {name} to {}: {e}", lib.display()))?;
    }
    let mut path = folder.path().as_os_str().to_owned();
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
        path.push(":");
        path.push(old);
    }
    let exe = std::env::current_exe().map_err(|e| format!("finding this test binary: {e}"))?;
    let status = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("LD_LIBRARY_PATH", path)
        .env(CHILD, "1")
        .status()
        .map_err(|e| format!("running the suite on the emulator: {e}"))?;
    Ok(ExitCode::from(status.code().map_or(1, |c| c as u8)))
}

fn unavailable(reason: String) -> ExitCode {
    run(SUBJECT, REGRESSIONS, move || {
        Err::<backend_cuda::CudaDevice, _>(Error::Unavailable {
            component: backend_cuda::BACKEND,
            reason: reason.clone(),
        })
    })
}

fn main() -> ExitCode {
    if std::env::var_os(CHILD).is_some() {
        return run(SUBJECT, REGRESSIONS, backend_cuda::CudaDevice::open);
    }
    match emulator().and_then(rerun_with) {
        Ok(code) => code,
        Err(reason) => unavailable(reason),
    }
}
