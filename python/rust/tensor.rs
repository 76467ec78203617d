//! What the engine needs of a torch tensor, read through its Python
//! methods (`data_ptr`, `numel`, `element_size`, `is_contiguous`,
//! `device`, `untyped_storage`, `is_pinned`), and what keeps its memory
//! alive while an operation uses it.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;

/// A tensor taking part in an operation.
pub struct TensorRef {
    /// Its first byte.
    pub address: usize,
    /// Its bytes (`numel * element_size`).
    pub nbytes: usize,
    /// On the CPU and contiguous: the engine moves its bytes in place;
    /// anything else goes through a bounce buffer.
    pub in_place: bool,
    /// The tensor object (the one the bytes are copied into or out of).
    pub tensor: Py<PyAny>,
    /// Its storage: holds the memory even if the caller rebinds the
    /// tensor's `.data` (as DeepSpeed does with `param.data`) meanwhile.
    _storage: Py<PyAny>,
}

impl TensorRef {
    /// Reads `tensor`'s layout; a `TypeError` names what it lacks.
    pub fn of(tensor: &Bound<'_, PyAny>) -> PyResult<Self> {
        let address: usize = tensor.call_method0("data_ptr")?.extract()?;
        let numel: usize = tensor.call_method0("numel")?.extract()?;
        let element: usize = tensor.call_method0("element_size")?.extract()?;
        let nbytes = numel.checked_mul(element).ok_or_else(|| {
            PyOverflowError::new_err(format!("{numel} elements of {element} bytes"))
        })?;
        let contiguous: bool = tensor.call_method0("is_contiguous")?.extract()?;
        let on_cpu = device_type(tensor)? == "cpu";
        let storage = tensor.call_method0("untyped_storage")?;
        Ok(Self {
            address,
            nbytes,
            in_place: on_cpu && contiguous,
            tensor: tensor.clone().unbind(),
            _storage: storage.unbind(),
        })
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
