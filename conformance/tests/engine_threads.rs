//! The engine suite on the `pread`/`pwrite` thread pool.

use tensorswap_core::{AioConfig, ThreadEngine};

tensorswap_conformance::engine_conformance_main!("threads", || ThreadEngine::new(
    &AioConfig::default()
        .with_block_size(64 << 10)
        .with_queue_depth(2)
        .with_parallelism(2)
));
