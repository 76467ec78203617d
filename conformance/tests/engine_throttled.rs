//! The rate cap must change nothing but the pace: a ThrottledEngine passes
//! the whole engine suite (on io_uring with DeepSpeed's defaults, capped high
//! enough that the suite stays quick).

use tensorswap_core::{AioConfig, ThrottledEngine, UringEngine};

tensorswap_conformance::engine_conformance_main!("throttled(uring)", requires: "uring", || UringEngine::new(
    &AioConfig::default()
)
.map(|engine| ThrottledEngine::new(engine, 20_000_000_000)));
