//! Crash campaign, power cuts (SPEC section 8): the same workload as the
//! process campaign, over a layer under the value file (an engine
//! decorator) and under the index (redb's storage hook) that logs every
//! write since the last completed sync. At a random instant the child cuts
//! the power (no sync completes any more), runs on a little, then puts back
//! what the unsynced writes overwrote — all of them, a random subset, or
//! random 512-byte sectors of them, in turn — and exits. The parent reopens
//! the store and checks what the process campaign checks.
//!
//! Writes the engine had already handed to the kernel may land after the
//! undo; that is one of the outcomes a cut allows (a write kept), so the
//! checks hold whatever their order. `TENSORSWAP_CRASH_POINTS` sets how many
//! crash points (default 18), `TENSORSWAP_CRASH_SEED` the seed.

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::{check, options, run_child, workload, ChildSpec, Rng};
use tensorswap_core::{AioConfig, AnyEngine, EngineKind};
use tensorswap_store::power_cut::{CutMode, PowerCut, PowerCutEngine};
use tensorswap_store::PersistentStore;

fn mode(round: u64, seed: u64) -> CutMode {
    match round % 3 {
        0 => CutMode::DropAll,
        1 => CutMode::KeepSome(seed | 1),
        _ => CutMode::Torn(seed | 1),
    }
}

/// The child: the workload, and a thread that cuts the power after
/// `spec.extra` ms, lets the store run on a little, undoes the unsynced
/// writes and ends the process.
fn child(spec: &ChildSpec) -> anyhow::Result<()> {
    let cut = PowerCut::new(mode(spec.base / 10_000_000, spec.seed));
    let engine = PowerCutEngine::new(
        AnyEngine::new(EngineKind::Auto, &AioConfig::default())?,
        cut.clone(),
    );
    let options = options(spec.evicting).power_cut(cut.clone());
    let store = PersistentStore::open_with_engine(&spec.folder, options, engine)?;
    let after = Duration::from_millis(spec.extra);
    let mut rng = Rng(spec.seed | 1);
    let run_on = Duration::from_millis(rng.below(30));
    std::thread::spawn(move || {
        std::thread::sleep(after);
        cut.cut();
        std::thread::sleep(run_on);
        let code = match cut.apply() {
            Ok(undone) => {
                eprintln!("power cut: {undone} unsynced writes undone");
                0
            }
            Err(e) => {
                eprintln!("power cut failed: {e}");
                1
            }
        };
        std::process::exit(code);
    });
    workload(&store, spec)
}

fn main() -> ExitCode {
    if let Some(exit) = common::as_child(child) {
        return exit;
    }
    common::campaign("power cuts", 18, |folder, seed, round, state, totals| {
        let mut rng = Rng((seed ^ round.wrapping_mul(0x2545_F491_4F6C_DD1D)) | 1);
        let spec = ChildSpec::for_round(folder, seed, round, round % 4 == 3, 20 + rng.below(400));
        let lines = run_child(&spec, |child| {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait()? {
                    anyhow::ensure!(status.success(), "the child failed ({status})");
                    return Ok(());
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "the child did not end within 30 s of its cut"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        })?;
        check(folder, round, spec.evicting, &lines, state, totals)
    })
}
