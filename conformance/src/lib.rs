//! The conformance suite every tensorswap backend runs.
//!
//! The cases ([`cases`]) are plain generic functions over any
//! [`tensorswap_core::Device`]; [`conformance_main!`] instantiates all of them for a
//! backend in one line, as a `harness = false` test binary:
//!
//! ```toml
//! # backend-foo/Cargo.toml
//! [[test]]
//! name = "conformance"
//! harness = false
//! ```
//!
//! ```ignore
//! // backend-foo/tests/conformance.rs
//! tensorswap_conformance::conformance_main!("foo", backend_foo::FooDevice::new);
//! ```
//!
//! The engine suite ([`engine`]) does the same for I/O engines with
//! [`engine_conformance_main!`].
//!
//! A backend whose constructor returns `Unavailable` or `Unsupported` (no
//! GPU, no driver, not implemented) is reported as skipped with the reason;
//! `TENSORSWAP_REQUIRE=cpu,wgpu` turns that skip into a failure. Generated
//! inputs come from proptest (`PROPTEST_CASES` per property, default 32); a
//! failing input is shrunk, printed, and its seed saved to
//! `tests/conformance.proptest-regressions` of the backend crate, where it is
//! replayed first on the next run.

mod ctx;
mod memlock;
mod require;
mod runner;

pub mod cases;
pub mod engine;
pub mod store;
pub mod swapper;

pub use ctx::{expect_bytes, first_difference, pattern, raw_file, CaseError, Ctx, Outcome};
pub use memlock::limit_memlock;
pub use require::{parse_required, required_backends, KNOWN_BACKENDS, REQUIRE_VAR};
pub use runner::{run, run_suite, Subject};

/// Defines `main` for a backend's conformance test binary (`harness = false`).
///
/// `$backend` is the report label and the name `TENSORSWAP_REQUIRE` uses;
/// with `$label, requires: $backend` the two differ (a decorated device
/// reports under its own label). `$open` is a `Fn() -> tensorswap_core::Result<D>`
/// opening a fresh device.
#[macro_export]
macro_rules! conformance_main {
    ($label:expr, requires: $backend:expr, $open:expr $(,)?) => {
        fn main() -> ::std::process::ExitCode {
            $crate::run(
                $crate::Subject {
                    label: $label,
                    requires: $backend,
                },
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/conformance.proptest-regressions"
                ),
                $open,
            )
        }
    };
    ($backend:expr, $open:expr $(,)?) => {
        $crate::conformance_main!($backend, requires: $backend, $open);
    };
}

/// Defines `main` for an I/O engine's conformance test binary
/// (`harness = false`): the engine suite ([`engine::all`]) against engines
/// from `$open`, a `Fn() -> tensorswap_core::Result<E>`; the names work as in
/// [`conformance_main!`].
#[macro_export]
macro_rules! engine_conformance_main {
    ($label:expr, requires: $engine:expr, $open:expr $(,)?) => {
        fn main() -> ::std::process::ExitCode {
            $crate::run_suite(
                $crate::Subject {
                    label: $label,
                    requires: $engine,
                },
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/engine.proptest-regressions"
                ),
                $open,
                $crate::engine::all(),
                $crate::engine::describe,
            )
        }
    };
    ($engine:expr, $open:expr $(,)?) => {
        $crate::engine_conformance_main!($engine, requires: $engine, $open);
    };
}
