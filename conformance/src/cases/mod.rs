//! The suite's cases: plain generic functions over any [`Device`].

mod concurrency;
mod direct;
mod errors;
mod faults;
mod io;
mod lifecycle;
mod pin_memory;
mod pinned;
mod roundtrip;

pub use concurrency::{
    four_threads, many_in_flight_any_order, ordered_when_claimed, poll_until_complete,
};
pub use direct::{direct_errors, direct_roundtrip};
pub use errors::{beyond_capacity, foreign_memory, out_of_range, zero_length};
pub use faults::{allocation_fault, download_fault, fault_hits_only_its_target, upload_fault};
pub use lifecycle::{drop_and_forget_tickets, drop_device_in_flight};
pub use pin_memory::{
    past_the_memlock_limit, refusals as pin_refusals, round_trips as pin_round_trips,
};
pub use pinned::refused_registration;
pub use roundtrip::{edge_sizes, host_buffer_kinds, random_sizes, typed_views};

use std::borrow::Cow;

use tensorswap_core::Device;

use crate::swapper;

use crate::{Ctx, Outcome};

/// One named case of the suite.
pub struct Case<D> {
    /// Name shown by the test runner (after `<backend>::`).
    pub name: Cow<'static, str>,
    /// The check itself.
    pub run: fn(&Ctx<D>) -> Outcome,
    /// Folders the case's swap stores stripe over ([`Ctx::folders`]).
    pub folders: usize,
}

/// Folders the swapper cases run over a second time, as `striped::…`.
pub const STRIPED_FOLDERS: usize = 3;

/// Every case of the device suite, in a stable order.
pub fn all<D: Device>() -> Vec<Case<D>> {
    macro_rules! cases {
        ($($module:ident :: $case:ident),* $(,)?) => {
            vec![$(Case { name: Cow::Borrowed(concat!(stringify!($module), "::", stringify!($case))), run: $module::$case::<D>, folders: 1 }),*]
        };
    }
    let mut all = cases![
        roundtrip::edge_sizes,
        roundtrip::random_sizes,
        roundtrip::host_buffer_kinds,
        roundtrip::typed_views,
        concurrency::many_in_flight_any_order,
        concurrency::ordered_when_claimed,
        concurrency::poll_until_complete,
        concurrency::four_threads,
        errors::out_of_range,
        errors::foreign_memory,
        errors::beyond_capacity,
        errors::zero_length,
        faults::upload_fault,
        faults::download_fault,
        faults::allocation_fault,
        faults::fault_hits_only_its_target,
        lifecycle::drop_device_in_flight,
        lifecycle::drop_and_forget_tickets,
        pinned::refused_registration,
        pin_memory::round_trips,
        pin_memory::refusals,
        direct::direct_roundtrip,
        direct::direct_errors,
        swapper::mixed_sizes,
        swapper::host_tier,
        swapper::errors,
        swapper::random_operations,
        swapper::device_faults,
        swapper::engine_faults,
        swapper::enospc_retry_takes_freed_space,
        swapper::checksum_mismatch,
        swapper::pool_pressure,
        swapper::shared_store,
        swapper::take_hands_over,
        swapper::unregister_hands_back,
        swapper::drop_in_flight,
        swapper::param_buffers,
        swapper::gds_path,
        swapper::gds_faults,
        swapper::striped_folders,
    ];
    // The swapper cases again over a store striped over several folders
    // (direct storage, which needs one file, is checked by `striped_folders`).
    let striped: Vec<Case<D>> = all
        .iter()
        .filter(|c| c.name.starts_with("swapper::") && !c.name.starts_with("swapper::gds"))
        .filter(|c| c.name != "swapper::striped_folders")
        .map(|c| Case {
            name: Cow::Owned(c.name.replacen("swapper::", "striped::", 1)),
            run: c.run,
            folders: STRIPED_FOLDERS,
        })
        .collect();
    all.extend(striped);
    all
}
