//! Running a test binary on the emulated driver (`backend-cuda/emulator`):
//! nothing else loads it (its library is `libcuda_emulator.so`), so the
//! binary links it as `libcuda.so.1` (and `libcufile.so`, for the `gds`
//! feature) in a private folder and runs itself
//! again with that folder first on the loader path (the loader reads
//! `LD_LIBRARY_PATH` once, at start). `backend-cuda` dev-depends on the
//! emulator, so `cargo test` builds the library before these run.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// What to do in this process.
pub(crate) enum Run {
    /// The emulator is on the loader path: run the tests here.
    Here,
    /// The tests ran in a second process, which exited with this.
    Done(ExitCode),
}

/// Looks up one of the emulator's own entry points in the `libcuda.so.1`
/// this process runs on.
fn emulator_symbol(name: &std::ffi::CStr) -> Result<*mut std::ffi::c_void, String> {
    // SAFETY: loads (or finds already loaded) the libcuda.so.1 of the
    // private folder first on the loader path, the same object cudarc
    // loads. The handle is never closed, so the library and the symbol
    // stay for the life of the process.
    unsafe {
        let lib = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW);
        if lib.is_null() {
            return Err("libcuda.so.1 (the emulator) cannot be loaded".into());
        }
        let symbol = libc::dlsym(lib, name.as_ptr());
        if symbol.is_null() {
            return Err("libcuda.so.1 is not the emulator".into());
        }
        Ok(symbol)
    }
}

/// Calls the emulator refused so far in this process.
#[allow(dead_code)] // not every test binary uses every helper
pub(crate) fn refusals() -> Result<u64, String> {
    let symbol = emulator_symbol(c"tensorswap_emulator_refusals")?;
    // SAFETY: the emulator's `tensorswap_emulator_refusals` has this type.
    let refusals: extern "C" fn() -> u64 = unsafe { std::mem::transmute(symbol) };
    Ok(refusals())
}

/// Arms a fault: the next call of `entry` fails with `status`.
#[allow(dead_code)] // not every test binary uses every helper
pub(crate) fn arm_fault(entry: &std::ffi::CStr, status: u32) -> Result<(), String> {
    let symbol = emulator_symbol(c"tensorswap_emulator_arm_fault")?;
    // SAFETY: the emulator's `tensorswap_emulator_arm_fault` has this type.
    let arm: unsafe extern "C" fn(*const std::ffi::c_char, u64, u32) -> bool =
        unsafe { std::mem::transmute(symbol) };
    // SAFETY: a NUL-terminated name.
    if unsafe { arm(entry.as_ptr(), 0, status) } {
        Ok(())
    } else {
        Err("the emulator refused the fault".into())
    }
}

/// Runs this binary again on the emulator, unless this is that run; the
/// error says why it cannot (the library is not built, say).
pub(crate) fn on_emulator() -> Result<Run, String> {
    if std::env::var_os(CHILD).is_some() {
        return Ok(Run::Here);
    }
    emulator().and_then(rerun_with).map(Run::Done)
}

/// Set in the second run: the emulator is on the loader path.
const CHILD: &str = "TENSORSWAP_CUDA_EMULATED";

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
                 `cargo build -p cuda-emulator`, or run the tests with `cargo test`",
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
    // One library serves both: the loader maps it once, so cuFile sees the
    // driver's memory and streams.
    for name in ["libcuda.so.1", "libcuda.so", "libcufile.so"] {
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
