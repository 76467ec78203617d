//! The whole conformance suite on the cuda backend (skipped with the reason
//! where it cannot run).

tensorswap_conformance::conformance_main!(
    tensorswap_cuda::BACKEND,
    tensorswap_cuda::CudaDevice::open
);
