//! The whole conformance suite on the CPU backend, with a 256 MiB capacity so
//! that "device full" is exercised for real.

use tensorswap_cpu::CpuDevice;

tensorswap_conformance::conformance_main!("cpu", || CpuDevice::builder()
    .capacity(256 << 20)
    .build());
