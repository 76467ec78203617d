//! The fault decorator must be transparent: a FaultyEngine with no fault
//! armed passes the whole engine suite (on io_uring with DeepSpeed's defaults).

use tensorswap_core::{AioConfig, FaultyEngine, UringEngine};

tensorswap_conformance::engine_conformance_main!("faulty(uring)", requires: "uring", || UringEngine::new(
    &AioConfig::default()
)
.map(FaultyEngine::new));
