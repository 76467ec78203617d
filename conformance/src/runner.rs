//! Runs the suite for one backend as a test binary, reporting skips with their reason.

use std::process::ExitCode;
use std::sync::Arc;

use libtest_mimic::{Arguments, Trial};
use tensorswap_core::Device;

use crate::cases::Case;
use crate::{cases, required_backends, Ctx, REQUIRE_VAR};

/// The name a suite run is reported under (`conformance[label]`) and the
/// backend or engine name `TENSORSWAP_REQUIRE` must list to make its skip a
/// failure. Usually the two are the same name; decorated subjects get a
/// label of their own (`faulty(cpu)`) and require what they decorate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    /// The report label.
    pub label: &'static str,
    /// The name in `TENSORSWAP_REQUIRE`.
    pub requires: &'static str,
}

/// Runs the device suite against devices from `open`, as a `harness = false`
/// test binary (use [`crate::conformance_main!`] rather than calling this).
///
/// When `open` fails with `Unavailable`/`Unsupported`, the cases are reported
/// as ignored with the reason, unless `TENSORSWAP_REQUIRE` names
/// `subject.requires`: then each case fails with the reason.
pub fn run<D, F>(subject: Subject, regressions: &'static str, open: F) -> ExitCode
where
    D: Device,
    F: Fn() -> tensorswap_core::Result<D> + Send + Sync + 'static,
{
    run_suite(subject, regressions, open, cases::all::<D>(), |dev: &D| {
        dev.info().to_string()
    })
}

/// Runs `cases` against subjects (devices, I/O engines) from `open`, with
/// the skip/require rules of [`run`]; `describe` names an opened subject.
pub fn run_suite<T, F>(
    subject: Subject,
    regressions: &'static str,
    open: F,
    all: Vec<Case<T>>,
    describe: fn(&T) -> String,
) -> ExitCode
where
    T: 'static,
    F: Fn() -> tensorswap_core::Result<T> + Send + Sync + 'static,
{
    // This is a test harness: its report goes to stdout, like libtest's.
    let args = Arguments::from_args();
    let backend = subject.label;
    let required = match required_backends() {
        Ok(required) => required,
        Err(message) => {
            eprintln!("conformance[{backend}]: {message}");
            return ExitCode::FAILURE;
        }
    };
    let must_run = required.iter().any(|name| name == subject.requires);
    let open: Arc<dyn Fn() -> tensorswap_core::Result<T> + Send + Sync> = Arc::new(open);
    let probe = open().map(|subject| describe(&subject));
    let ctx = Arc::new(Ctx::new(Arc::clone(&open), regressions));
    let count = all.len();

    let verdict = verdict(subject, probe.as_ref().map(|_| ()), must_run);
    match (&verdict, &probe) {
        (Verdict::Run, Ok(info)) => {
            println!("conformance[{backend}]: running {count} tests on {info}")
        }
        (Verdict::Skip(reason), _) => {
            println!("conformance[{backend}]: SKIPPED {count} tests: {reason}")
        }
        (Verdict::Fail(reason), _) => {
            println!("conformance[{backend}]: FAILING {count} tests: {reason}")
        }
        (Verdict::Run, Err(_)) => {}
    }

    let trials = all
        .into_iter()
        .map(|case| {
            let name = format!("{backend}::{}", case.name);
            match &verdict {
                Verdict::Run => {
                    let ctx = ctx.with_folders(case.folders);
                    Trial::test(name, move || (case.run)(&ctx).map_err(|e| e.0.into()))
                }
                Verdict::Fail(reason) => {
                    let reason = reason.clone();
                    Trial::test(name, move || Err(reason.into()))
                }
                Verdict::Skip(_) => Trial::test(name, || Ok(())).with_ignored_flag(true),
            }
        })
        .collect();

    let conclusion = libtest_mimic::run(&args, trials);
    if verdict == Verdict::Run {
        println!(
            "conformance[{backend}]: {} tests passed, {} failed, {} generated or listed inputs checked",
            conclusion.num_passed,
            conclusion.num_failed,
            ctx.checked_count()
        );
    }
    conclusion.exit_code()
}

/// What the runner does with a backend's cases.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The device opened: run everything.
    Run,
    /// The backend cannot run here and is not required: report ignored, with the reason.
    Skip(String),
    /// Every case fails with the reason.
    Fail(String),
}

/// Decides from the outcome of opening a subject and whether `TENSORSWAP_REQUIRE` names it.
fn verdict(
    subject: Subject,
    opened: Result<(), &tensorswap_core::Error>,
    required: bool,
) -> Verdict {
    let Subject { label, requires } = subject;
    match opened {
        Ok(()) => Verdict::Run,
        Err(error) if required => {
            Verdict::Fail(format!("{REQUIRE_VAR} requires {requires}, but: {error}"))
        }
        Err(error) if error.is_unavailable() => Verdict::Skip(format!(
            "{error} (set {REQUIRE_VAR}={requires} to make this a failure)"
        )),
        Err(error) => Verdict::Fail(format!("opening {label} failed: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorswap_core::Error;

    #[test]
    fn skips_only_unavailable_backends_that_are_not_required() {
        let missing = Error::Unavailable {
            component: "wgpu",
            reason: "no adapter".into(),
        };
        let broken = Error::Device {
            component: "wgpu",
            op: "open",
            reason: "driver crashed".into(),
        };
        let wgpu = Subject {
            label: "wgpu",
            requires: "wgpu",
        };
        assert_eq!(verdict(wgpu, Ok(()), true), Verdict::Run);
        assert!(
            matches!(verdict(wgpu, Err(&missing), false), Verdict::Skip(r) if r.contains("no adapter"))
        );
        assert!(
            matches!(verdict(wgpu, Err(&missing), true), Verdict::Fail(r) if r.contains("requires wgpu"))
        );
        assert!(
            matches!(verdict(wgpu, Err(&broken), false), Verdict::Fail(r) if r.contains("driver crashed"))
        );
        let noop = Subject {
            label: "wgpu-noop",
            requires: "wgpu",
        };
        assert!(
            matches!(verdict(noop, Err(&missing), true), Verdict::Fail(r) if r.contains("requires wgpu"))
        );
    }
}
