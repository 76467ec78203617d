//! The decorator must be transparent: a FaultyDevice with no fault armed
//! passes the whole suite.

use tensorswap_core::FaultyDevice;
use tensorswap_cpu::CpuDevice;

tensorswap_conformance::conformance_main!("faulty(cpu)", requires: "cpu", || CpuDevice::builder()
    .capacity(256 << 20)
    .build()
    .map(FaultyDevice::new));
