//! What the engine needs of a torch tensor, read through its Python
//! methods (`data_ptr`, `numel`, `element_size`, `is_contiguous`,
//! `device`, `untyped_storage`, `is_pinned`, `is_conj`, `is_neg`), and what
//! keeps its memory alive while an operation uses it.
//!
//! The engine moves a tensor's bytes in place only where nothing the caller
//! can do frees them meanwhile: a contiguous CPU tensor whose storage
//! cannot be resized (from `new_cpu_locked_tensor`, NumPy, `frombuffer`),
//! and that is not a conjugate or negative view (whose bytes are not its
//! values). Every other tensor goes through a locked bounce buffer, so a
//! `resize_` while its operation is pending frees nothing the engine
//! writes into.

use pyo3::exceptions::{PyOverflowError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use tensorswap_core::IoOp;

/// The package's torch helpers (`tensorswap/_tensors.py`).
pub fn tensors(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    PyModule::import(py, "tensorswap._tensors")
}

/// A tensor taking part in an operation.
pub struct TensorRef {
    /// Its first byte.
    pub address: usize,
    /// Its bytes (`numel * element_size`).
    pub nbytes: usize,
    /// The engine moves its bytes in place (see the module's docs);
    /// anything else goes through a bounce buffer.
    pub in_place: bool,
    /// The tensor object (the one the bytes are copied into or out of).
    pub tensor: Py<PyAny>,
    /// Its storage: holds the memory even if the caller rebinds the
    /// tensor's `.data` (as DeepSpeed does with `param.data`) meanwhile.
    _storage: Py<PyAny>,
    /// Where its memory was, and how much the storage held, at the start.
    layout: Layout,
}

/// What a tensor's memory was: its first byte, its storage's first byte
/// and size, and its shape.
#[derive(PartialEq)]
struct Layout {
    address: usize,
    storage: (usize, usize),
    shape: Vec<usize>,
}

impl Layout {
    fn of(tensor: &Bound<'_, PyAny>) -> PyResult<Self> {
        let storage = tensor.call_method0("untyped_storage")?;
        Ok(Self {
            address: tensor.call_method0("data_ptr")?.extract()?,
            storage: (
                storage.call_method0("data_ptr")?.extract()?,
                storage.call_method0("nbytes")?.extract()?,
            ),
            shape: tensor.getattr("shape")?.extract()?,
        })
    }
}

impl TensorRef {
    /// Reads `tensor`'s layout; a `TypeError` names what it lacks.
    pub fn of(tensor: &Bound<'_, PyAny>) -> PyResult<Self> {
        let device = device_type(tensor)?;
        if device == "meta" {
            return Err(PyValueError::new_err(
                "a meta tensor has no memory to read into or write from",
            ));
        }
        let address: usize = tensor.call_method0("data_ptr")?.extract()?;
        let numel: usize = tensor.call_method0("numel")?.extract()?;
        let element: usize = tensor.call_method0("element_size")?.extract()?;
        let nbytes = numel.checked_mul(element).ok_or_else(|| {
            PyOverflowError::new_err(format!("{numel} elements of {element} bytes"))
        })?;
        let flag = |name: &str| -> PyResult<bool> { tensor.call_method0(name)?.extract() };
        let storage = tensor.call_method0("untyped_storage")?;
        let resizable: bool = storage.call_method0("resizable")?.extract()?;
        let in_place = device == "cpu"
            && flag("is_contiguous")?
            && !flag("is_conj")?
            && !flag("is_neg")?
            && !resizable;
        Ok(Self {
            address,
            nbytes,
            in_place,
            tensor: tensor.clone().unbind(),
            _storage: storage.unbind(),
            layout: Layout::of(tensor)?,
        })
    }
}

impl TensorRef {
    /// Fails unless the tensor's memory is where it was when the operation
    /// began (a `resize_` or `set_` meanwhile frees or moves it): checked
    /// before bytes are copied into it, so nothing lands in memory the
    /// tensor no longer owns.
    pub fn check_unmoved(&self, py: Python<'_>) -> PyResult<()> {
        if Layout::of(self.tensor.bind(py))? == self.layout {
            Ok(())
        } else {
            Err(PyRuntimeError::new_err(
                "the tensor's memory was freed or moved (resize_, set_) while its read was pending; its bytes were not copied into it",
            ))
        }
    }
}

/// `tensor.device.type`: `"cpu"`, `"cuda"`, ...
pub fn device_type(tensor: &Bound<'_, PyAny>) -> PyResult<String> {
    tensor.getattr("device")?.getattr("type")?.extract()
}

/// Whether torch itself pinned the tensor (`is_pinned()`; false where torch
/// has no accelerator to pin for).
pub fn torch_pinned(tensor: &Bound<'_, PyAny>) -> bool {
    tensor
        .call_method0("is_pinned")
        .and_then(|p| p.extract())
        .unwrap_or(false)
}

/// `buffer` as a torch tensor over the same memory: a tensor as it is; a
/// NumPy array or another buffer-protocol object through
/// `tensorswap._tensors.as_tensor` (a read needs it writable). Anything
/// else is a `TypeError` naming what it lacks.
pub fn as_tensor<'py>(buffer: &Bound<'py, PyAny>, op: IoOp) -> PyResult<Bound<'py, PyAny>> {
    if buffer.hasattr("data_ptr")? {
        return Ok(buffer.clone());
    }
    tensors(buffer.py())?.call_method1("as_tensor", (buffer, op == IoOp::Read))
}
