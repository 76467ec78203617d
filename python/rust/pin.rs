//! `pin_handle`: DeepSpeed's `pin_memory` op (`PinMemoryBuilder().load()`),
//! on the same process-wide manager as `aio_handle`, so a tensor locked
//! through either is pinned for both.

use pyo3::prelude::*;

use crate::handle::{free_locked_tensor, is_pinned, new_locked_tensor};

/// DeepSpeed's `pin_handle`.
#[pyclass(name = "pin_handle", module = "tensorswap._native")]
pub struct PinHandle;

#[pymethods]
impl PinHandle {
    #[new]
    fn new() -> Self {
        Self
    }

    /// As `aio_handle.new_cpu_locked_tensor`.
    #[pyo3(signature = (num_elem, example_tensor))]
    fn new_cpu_locked_tensor<'py>(
        &self,
        py: Python<'py>,
        num_elem: i64,
        example_tensor: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        new_locked_tensor(py, num_elem, example_tensor)
    }

    /// As `aio_handle.free_cpu_locked_tensor`.
    fn free_cpu_locked_tensor(&self, tensor: &Bound<'_, PyAny>) -> PyResult<bool> {
        free_locked_tensor(tensor)
    }

    /// As `aio_handle.is_pinned`.
    fn is_pinned(&self, buffer: &Bound<'_, PyAny>) -> PyResult<bool> {
        is_pinned(buffer)
    }
}
