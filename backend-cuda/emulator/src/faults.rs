//! Fault injection: make the Nth call of an entry point fail with a given
//! status, so that the backend's error paths run.
//!
//! Armed from the environment (`TENSORSWAP_CUDA_EMULATOR_FAULTS`, e.g.
//! `cuMemAllocAsync@0=2,cuEventRecord@3=1`: let that many calls through,
//! then fail one with that status), or by a test through the exported
//! `tensorswap_emulator_arm_fault`. Each armed fault fires once.

use std::sync::{Mutex, OnceLock};

use crate::result::Status;

/// The variable that arms faults at start-up.
pub const FAULTS_VAR: &str = "TENSORSWAP_CUDA_EMULATOR_FAULTS";

struct Fault {
    entry: String,
    /// Calls still let through before it fires.
    after: u64,
    status: Status,
}

fn armed() -> &'static Mutex<Vec<Fault>> {
    static ARMED: OnceLock<Mutex<Vec<Fault>>> = OnceLock::new();
    ARMED.get_or_init(|| {
        Mutex::new(from_env(
            std::env::var(FAULTS_VAR).ok().as_deref().unwrap_or(""),
        ))
    })
}

/// Parses `entry@after=status,...`; a malformed item is reported and skipped.
fn from_env(spec: &str) -> Vec<Fault> {
    spec.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .filter_map(|item| {
            let parsed = item.split_once('@').and_then(|(entry, rest)| {
                let (after, status) = rest.split_once('=')?;
                Some(Fault {
                    entry: entry.to_owned(),
                    after: after.parse().ok()?,
                    status: Status(status.parse().ok()?),
                })
            });
            if parsed.is_none() {
                eprintln!(
                    "cuda-emulator: {FAULTS_VAR}: {item:?} is not entry@after=status; ignored"
                );
            }
            parsed
        })
        .collect()
}

/// Arms a fault: after `after` more calls of `entry` succeed, the next one
/// fails with `status`.
pub fn arm(entry: &str, after: u64, status: Status) {
    armed()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(Fault {
            entry: entry.to_owned(),
            after,
            status,
        });
}

/// Called at the start of every entry point: the armed fault's status when
/// this call is the one it fails.
pub fn check(entry: &str) -> Result<(), Status> {
    let mut armed = armed()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(i) = armed.iter().position(|f| f.entry == entry) else {
        return Ok(());
    };
    if armed[i].after > 0 {
        armed[i].after -= 1;
        return Ok(());
    }
    let fault = armed.remove(i);
    eprintln!(
        "cuda-emulator: injected fault: {entry} fails with {}",
        fault.status.0
    );
    Err(fault.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_fires_once_after_the_calls_it_lets_through() {
        arm("cuTestEntry", 2, Status::OUT_OF_MEMORY);
        assert_eq!(check("cuTestEntry"), Ok(()));
        assert_eq!(check("cuOther"), Ok(()));
        assert_eq!(check("cuTestEntry"), Ok(()));
        assert_eq!(check("cuTestEntry"), Err(Status::OUT_OF_MEMORY));
        assert_eq!(check("cuTestEntry"), Ok(()));
    }

    #[test]
    fn the_environment_form_parses_and_skips_what_is_malformed() {
        let faults = from_env("cuA@0=2, cuB@3=801,bad,cuC@x=1");
        let got: Vec<_> = faults
            .iter()
            .map(|f| (f.entry.as_str(), f.after, f.status.0))
            .collect();
        assert_eq!(got, [("cuA", 0, 2), ("cuB", 3, 801)]);
    }
}
