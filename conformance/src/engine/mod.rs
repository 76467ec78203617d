//! The engine suite: plain generic functions over any [`IoEngine`], run
//! against every engine and the fault-injecting decorator.

mod errors;
mod faults;
mod files;
mod many;
mod partial_blocks;
mod pool;
mod roundtrip;
mod scratch;

pub use errors::{checksum_mismatch, missing_file, read_past_end};
pub use faults::{eio_on_read, enospc_on_write};
pub use files::{
    files_removed_unless_kept, named_files, replace_truncates_stale_tail, symlink_not_followed,
};
pub use many::{drop_engine_in_flight, many_in_flight_any_order, poll_and_wait_all};
pub use partial_blocks::partial_blocks_checked;
pub use pool::{pool_back_pressure, pool_slabs_through_engine};
pub use roundtrip::{edge_sizes, random_requests, sparse_beyond_4gib, sub_ranges};
pub use scratch::{scratch, scratch_parent, Scratch, SCRATCH_VAR};

use tensorswap_core::IoEngine;

use crate::cases::Case;

/// Every case of the engine suite, in a stable order, the persistent
/// store's ([`crate::store`]) last.
pub fn all<E: IoEngine + 'static>() -> Vec<Case<E>> {
    macro_rules! cases {
        ($($module:ident :: $case:ident),* $(,)?) => {
            vec![$(Case { name: std::borrow::Cow::Borrowed(concat!(stringify!($module), "::", stringify!($case))), run: $case::<E>, folders: 1 }),*]
        };
    }
    let mut all = cases![
        roundtrip::edge_sizes,
        roundtrip::random_requests,
        roundtrip::sub_ranges,
        roundtrip::sparse_beyond_4gib,
        many::many_in_flight_any_order,
        many::poll_and_wait_all,
        many::drop_engine_in_flight,
        errors::read_past_end,
        errors::missing_file,
        errors::checksum_mismatch,
        partial_blocks::partial_blocks_checked,
        faults::enospc_on_write,
        faults::eio_on_read,
        files::symlink_not_followed,
        files::replace_truncates_stale_tail,
        files::files_removed_unless_kept,
        files::named_files,
        pool::pool_back_pressure,
        pool::pool_slabs_through_engine,
    ];
    all.extend(crate::store::all());
    all
}

/// Describes an engine for the runner's header line.
pub fn describe<E: IoEngine>(engine: &E) -> String {
    let c = engine.config();
    format!(
        "{} engine (block_size {}, queue_depth {}, intra_op_parallelism {})",
        engine.name(),
        c.block_size,
        c.queue_depth,
        c.intra_op_parallelism
    )
}
