//! The whole conformance suite on the wgpu backend (skipped with the reason
//! where it cannot run).

tensorswap_conformance::conformance_main!(
    tensorswap_wgpu::BACKEND,
    tensorswap_wgpu::WgpuDevice::open
);
