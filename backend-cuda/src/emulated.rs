//! Running on tensorswap's emulated CUDA driver (`backend-cuda/emulator`),
//! on purpose only: its library is `libcuda_emulator.so`, a name nothing
//! loads, so a program runs on it only by calling [`relaunch_on`], which
//! runs the program again with the library linked as `libcuda.so.1`,
//! `libcuda.so` and `libcufile.so` in a private folder first on the loader
//! path (the loader reads `LD_LIBRARY_PATH` once, at start). The emulated
//! test targets do this, and the CLI when `TENSORSWAP_CUDA_EMULATOR` names
//! the library; [`is_emulated`] tells either afterwards.

use std::path::Path;
use std::process::{Command, ExitCode};

/// Set in the relaunched process.
pub const RELAUNCHED_VAR: &str = "TENSORSWAP_CUDA_EMULATED";

/// Whether this process is the relaunched one (do not relaunch again).
pub fn relaunched() -> bool {
    std::env::var_os(RELAUNCHED_VAR).is_some()
}

/// Runs this program again, with its arguments, on the emulator library
/// at `lib`; gives the exit of that run, or why it could not start.
pub fn relaunch_on(lib: &Path) -> Result<ExitCode, String> {
    if !lib.is_file() {
        return Err(format!(
            "{} is not the emulator library: `cargo build --release -p tensorswap-cuda-emulator` makes target/release/libcuda_emulator.so",
            lib.display()
        ));
    }
    let lib = lib
        .canonicalize()
        .map_err(|e| format!("{}: {e}", lib.display()))?;
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
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    let status = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("LD_LIBRARY_PATH", path)
        .env(RELAUNCHED_VAR, "1")
        .status()
        .map_err(|e| format!("running again on the emulator: {e}"))?;
    Ok(ExitCode::from(status.code().map_or(1, |c| c as u8)))
}

/// Whether the CUDA driver this process loaded is the emulator (false
/// before any driver call, and on a real driver).
pub fn is_emulated() -> bool {
    crate::driver::loaded_symbol(c"tensorswap_emulator_refusals")
}
