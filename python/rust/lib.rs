//! `tensorswap._native`: DeepSpeed's DeepNVMe engine API (`aio_handle`,
//! `pin_handle`) on tensorswap's I/O engine, for the `tensorswap` Python
//! package.
//!
//! The crate never links libtorch: a tensor is read through its Python
//! methods ([`tensor`]), and the few torch operations it needs (a tensor
//! over locked memory, a copy between tensors) are calls into the
//! package's `tensorswap._tensors` module.
//!
//! # Modules, and what each may use
//!
//! - [`locked`]: the process-wide manager of page-locked host memory (what
//!   `new_cpu_locked_tensor` hands out); `swap-api`'s aligned allocation
//!   and `mlock`.
//! - [`tensor`]: what the engine needs of a torch tensor (address, bytes,
//!   whether it can take I/O in place), and what keeps its memory alive.
//! - [`op`]: one submitted read or write and its completion (bounce copy
//!   back, validation); `tensor`, `locked` and the engine.
//! - [`names`]: file names and descriptors as Python gives them.
//! - [`queue`]: a handle's operations in flight and the `wait()`s that
//!   finish them; `op`.
//! - [`handle`]: the `aio_handle` class; everything above.
//! - [`pin`]: the `pin_handle` class of DeepSpeed's `pin_memory` op, on
//!   the same manager.

#![deny(unsafe_op_in_unsafe_fn)]

use pyo3::prelude::*;

pub mod handle;
pub mod locked;
pub mod names;
pub mod op;
pub mod pin;
pub mod queue;
pub mod tensor;

/// The module: `aio_handle`, `pin_handle`, and `LockedBlock` (the owner
/// of a locked tensor's memory).
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<handle::AioHandle>()?;
    m.add_class::<pin::PinHandle>()?;
    m.add_class::<locked::LockedBlock>()?;
    // The package's one version: python/Cargo.toml's, which maturin also
    // gives the wheel.
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
