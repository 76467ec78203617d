//! tensorswap's wgpu backend: any GPU wgpu drives (Vulkan, Metal, DX12, GL).
//!
//! **Not implemented yet** (issue 5). [`WgpuDevice::open`] returns
//! [`swap_api::Error::Unsupported`], the conformance suite reports the
//! backend as skipped with that reason, and the README's feature table says
//! "not yet".

use swap_api::{PlannedBackend, Unimplemented};

/// The backend's name in errors, reports and `TENSORSWAP_REQUIRE`.
pub const BACKEND: &str = "wgpu";

/// Marks the wgpu backend as planned.
#[derive(Debug)]
pub struct Wgpu;

impl PlannedBackend for Wgpu {
    const NAME: &'static str = BACKEND;
    const TRACKING: &'static str = "issue 5, see the README's feature table";
}

/// The wgpu device; cannot be opened until the backend is implemented.
pub type WgpuDevice = Unimplemented<Wgpu>;
