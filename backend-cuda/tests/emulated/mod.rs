//! Running a test binary on the emulated driver (`backend-cuda/emulator`):
//! the binary finds the library beside it and runs itself again on it
//! (`tensorswap_cuda::emulated::relaunch_on`). `backend-cuda` dev-depends on
//! the emulator, so `cargo test` builds the library before these run.

use std::path::PathBuf;
use std::process::ExitCode;

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
    if tensorswap_cuda::emulated::relaunched() {
        return Ok(Run::Here);
    }
    let lib = emulator()?;
    tensorswap_cuda::emulated::relaunch_on(&lib).map(Run::Done)
}

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
                 `cargo build -p tensorswap-cuda-emulator`, or run the tests with `cargo test`",
            deps.display()
        )
    })
}
