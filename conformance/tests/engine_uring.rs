//! The engine suite on io_uring, with small blocks and two workers so that
//! splitting and spreading are exercised.

use tensorswap_core::{AioConfig, UringEngine};

tensorswap_conformance::engine_conformance_main!("uring", || UringEngine::new(
    &AioConfig::default()
        .with_block_size(64 << 10)
        .with_queue_depth(4)
        .with_parallelism(2)
));
