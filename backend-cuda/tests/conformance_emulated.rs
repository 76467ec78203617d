//! The whole conformance suite on the cuda backend against the emulated
//! driver (`backend-cuda/emulator`, issue 16), reported as
//! `conformance[cuda-emulated]`.
//!
//! How it gets the emulator onto the loader path: `emulated/mod.rs`.
//! Without the library (a test binary copied elsewhere, say) the suite is
//! skipped with the reason, a failure under
//! `TENSORSWAP_REQUIRE=cuda-emulated`.

mod emulated;

use std::process::ExitCode;

use emulated::{on_emulator, Run};

use tensorswap_conformance::{run, Subject};
use tensorswap_core::Error;

const SUBJECT: Subject = Subject {
    label: "cuda-emulated",
    requires: "cuda-emulated",
};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/conformance.proptest-regressions"
);

fn unavailable(reason: String) -> ExitCode {
    run(SUBJECT, REGRESSIONS, move || {
        Err::<tensorswap_cuda::CudaDevice, _>(Error::Unavailable {
            component: tensorswap_cuda::BACKEND,
            reason: reason.clone(),
        })
    })
}

fn main() -> ExitCode {
    match on_emulator() {
        Ok(Run::Here) => {
            let code = run(SUBJECT, REGRESSIONS, tensorswap_cuda::CudaDevice::open);
            if !tensorswap_cuda::emulated::is_emulated() {
                eprintln!("conformance[cuda-emulated]: the suite ran on a driver that is not the emulator");
                return ExitCode::FAILURE;
            }
            // A refusal the backend only logged is still a bug.
            match emulated::refusals() {
                Ok(0) => code,
                Ok(n) => {
                    eprintln!("conformance[cuda-emulated]: the emulated driver refused {n} call(s): see its `refused` lines");
                    ExitCode::FAILURE
                }
                Err(reason) => {
                    eprintln!("conformance[cuda-emulated]: {reason}");
                    ExitCode::FAILURE
                }
            }
        }
        Ok(Run::Done(code)) => code,
        Err(reason) => unavailable(reason),
    }
}
