//! Crash campaign, process crashes (SPEC section 8): a child process puts,
//! replaces and removes values of random sizes and durabilities, reporting
//! each request it starts and each ticket that completes; the parent kills
//! it with SIGKILL at a random instant, reopens the store and checks that
//!
//! - every put acknowledged as durable is there with exactly its bytes,
//!   unless a later acknowledged request replaced or removed it;
//! - every key holds nothing or exactly one value put for it, no older than
//!   its last durable state;
//! - `verify` finds nothing wrong.
//!
//! Every third crash point runs a store small enough to evict, where a key
//! may also be absent. `TENSORSWAP_CRASH_POINTS` sets how many crash points
//! (default 24), `TENSORSWAP_CRASH_SEED` the seed.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use common::{check, let_run, options, run_child, workload, ChildSpec, Rng};
use tensorswap_store::PersistentStore;

fn child(spec: &ChildSpec) -> anyhow::Result<()> {
    let store = PersistentStore::open(&spec.folder, options(spec.evicting))?;
    workload(&store, spec)
}

fn main() -> ExitCode {
    if let Some(exit) = common::as_child(child) {
        return exit;
    }
    common::campaign("process kills", 24, |folder, seed, round, state, totals| {
        let spec = ChildSpec::for_round(folder, seed, round, round % 3 == 2, 0);
        let mut rng = Rng((seed ^ round.wrapping_mul(0x2545_F491_4F6C_DD1D)) | 1);
        let run_for = Duration::from_millis(20 + rng.below(400));
        let lines = run_child(&spec, |child| {
            let_run(child, run_for)?;
            Ok(child.kill()?)
        })?;
        check(folder, round, spec.evicting, &lines, state, totals)
    })
}
