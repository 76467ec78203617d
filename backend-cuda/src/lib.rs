//! tensorswap's cuda backend: NVIDIA GPUs through cudarc, with GPUDirect Storage.
//!
//! **Not implemented yet** (issue 6). [`CudaDevice::open`] returns
//! [`swap_api::Error::Unsupported`], the conformance suite reports the
//! backend as skipped with that reason, and the README's feature table says
//! "not yet".

use swap_api::{PlannedBackend, Unimplemented};

/// The backend's name in errors, reports and `TENSORSWAP_REQUIRE`.
pub const BACKEND: &str = "cuda";

/// Marks the cuda backend as planned.
#[derive(Debug)]
pub struct Cuda;

impl PlannedBackend for Cuda {
    const NAME: &'static str = BACKEND;
    const TRACKING: &'static str = "issue 6, see the README's feature table";
}

/// The cuda device; cannot be opened until the backend is implemented.
pub type CudaDevice = Unimplemented<Cuda>;
