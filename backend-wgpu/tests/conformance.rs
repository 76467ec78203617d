//! The whole conformance suite on the wgpu backend (skipped with the reason
//! where it cannot run).

tensorswap_conformance::conformance_main!(backend_wgpu::BACKEND, backend_wgpu::WgpuDevice::open);
