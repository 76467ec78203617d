//! The persistent store's cases ([`tensorswap_store::PersistentStore`]),
//! run on every engine with the engine suite: the same semantics whatever
//! moves the bytes.

mod bounds;
mod concurrent;
mod damage;
mod refusals;
mod roundtrip;

pub use bounds::{eviction_order_and_pins, full_without_eviction};
pub use concurrent::threads_see_whole_values;
pub use damage::{damaged_value_named, unreferenced_space_reclaimed};
pub use refusals::refusals_hand_buffers_back;
pub use roundtrip::{edge_sizes_survive_reopen, replace_remove_and_list};

use std::path::Path;

use tensorswap_core::IoEngine;
use tensorswap_store::{PersistentStore, StoreOptions};

use crate::cases::Case;
use crate::{CaseError, Ctx};

impl From<tensorswap_store::StoreError> for CaseError {
    fn from(e: tensorswap_store::StoreError) -> Self {
        CaseError(format!("unexpected store error: {e}"))
    }
}

/// Every case of the store suite, in a stable order.
pub fn all<E: IoEngine + 'static>() -> Vec<Case<E>> {
    macro_rules! cases {
        ($($module:ident :: $case:ident),* $(,)?) => {
            vec![$(Case { name: std::borrow::Cow::Borrowed(concat!("store::", stringify!($case))), run: $case::<E>, folders: 1 }),*]
        };
    }
    cases![
        roundtrip::edge_sizes_survive_reopen,
        roundtrip::replace_remove_and_list,
        bounds::eviction_order_and_pins,
        bounds::full_without_eviction,
        refusals::refusals_hand_buffers_back,
        damage::damaged_value_named,
        damage::unreferenced_space_reclaimed,
        concurrent::threads_see_whole_values,
    ]
}

/// Opens the store in `folder` on a fresh engine of the case.
pub(crate) fn open<E: IoEngine + 'static>(
    ctx: &Ctx<E>,
    folder: &Path,
    options: StoreOptions,
) -> Result<PersistentStore<E>, CaseError> {
    Ok(PersistentStore::open_with_engine(
        folder,
        options,
        ctx.engine()?,
    )?)
}
