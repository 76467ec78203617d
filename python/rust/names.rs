//! What Python passes to name a file: a path (`str`, `bytes`,
//! `os.PathLike`) or a descriptor (`int`), each checked with a message
//! that says what was wrong.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes};

/// A file name as Python gives it: `str`, `bytes` or `os.PathLike`
/// (`os.fsencode`'s rules, so names that are not UTF-8 work too).
pub fn path_of(name: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    if name.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(
            "a file name must be str, bytes or os.PathLike, not bool",
        ));
    }
    let os = PyModule::import(name.py(), "os")?;
    let encoded = os.call_method1("fsencode", (name,))?;
    let bytes = encoded.cast::<PyBytes>()?.as_bytes();
    if bytes.contains(&0) {
        return Err(PyValueError::new_err(format!(
            "a file name cannot contain NUL: {:?}",
            String::from_utf8_lossy(bytes)
        )));
    }
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

/// A descriptor number from Python: an int in `int`'s range (not a bool).
pub fn descriptor(fd: &Bound<'_, PyAny>) -> PyResult<i32> {
    if fd.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(
            "a file descriptor must be an int, not bool (give a file name as str, bytes or os.PathLike)",
        ));
    }
    let n: i64 = fd.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "a file descriptor must be an int, not {}",
            fd.get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        ))
    })?;
    i32::try_from(n).map_err(|_| {
        PyValueError::new_err(format!(
            "file descriptor {n} is out of range (descriptors are below 2**31)"
        ))
    })
}
