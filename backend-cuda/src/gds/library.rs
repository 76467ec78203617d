//! Finding libcufile before cudarc loads it: cudarc panics on a missing
//! library or symbol, so both are checked here first and reported as
//! `Unavailable` with what to do.

use std::ffi::{CStr, CString};

/// The names cudarc loads libcufile by on Linux (with `dynamic-loading`),
/// in its order; when cudarc is linked to it instead (candle's `cuda`
/// feature), the loader already found it and these only check it.
const NAMES: [&str; 6] = [
    "libcufile.so",
    "libcufile.so.12",
    "libcufile.so.11",
    "libcufile.so.10",
    "libcufile.so.9",
    "libcufile.so.1",
];

/// The entry points the engine calls (the async pair needs CUDA 12.2).
const SYMBOLS: [&CStr; 6] = [
    c"cuFileDriverOpen",
    c"cuFileDriverGetProperties",
    c"cuFileHandleRegister",
    c"cuFileHandleDeregister",
    c"cuFileReadAsync",
    c"cuFileWriteAsync",
];

/// Checks that cudarc will find libcufile with every symbol the engine
/// uses; the error says why not.
pub(crate) fn check() -> Result<(), String> {
    // cudarc takes the first candidate that loads; check that one.
    for name in NAMES {
        let Some(lib) = Library::open(name) else {
            continue;
        };
        let missing: Vec<_> = SYMBOLS
            .iter()
            .filter(|s| !lib.has(s))
            .map(|s| s.to_string_lossy())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        return Err(format!(
            "{name} lacks {} (the stream-ordered cuFile API needs CUDA 12.2 or later)",
            missing.join(", ")
        ));
    }
    Err(missing_library())
}

fn missing_library() -> String {
    if Library::open("libcufile.so.0").is_some() {
        // Python wheels (nvidia-cufile-cu12) ship only this name.
        "libcufile.so.0 is installed, but cudarc looks for libcufile.so (or .so.12, .so.1): \
         link that name to it in a folder on the library path, e.g. \
         `ln -s <dir>/libcufile.so.0 /usr/local/lib/libcufile.so && ldconfig`"
            .to_owned()
    } else {
        "libcufile (GPUDirect Storage) is not installed: install the CUDA toolkit's \
         libcufile (apt `libcufile-12-*`) or the nvidia-cufile-cu12 wheel"
            .to_owned()
    }
}

/// A library opened for a check, closed on drop.
struct Library(*mut libc::c_void);

impl Library {
    fn open(name: &str) -> Option<Self> {
        let name = CString::new(name).ok()?;
        // SAFETY: a valid C string; RTLD_LAZY resolves nothing up front.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
        (!handle.is_null()).then_some(Self(handle))
    }

    fn has(&self, symbol: &CStr) -> bool {
        // SAFETY: a live handle from dlopen and a valid C string.
        !unsafe { libc::dlsym(self.0, symbol.as_ptr()) }.is_null()
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: the handle came from dlopen and is closed once; the
        // library stays loaded if cudarc opened it too (reference counted).
        unsafe { libc::dlclose(self.0) };
    }
}
