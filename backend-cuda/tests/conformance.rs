//! The whole conformance suite on the cuda backend (skipped with the reason
//! where it cannot run).

tensorswap_conformance::conformance_main!(backend_cuda::BACKEND, backend_cuda::CudaDevice::open);
