//! What every case gets: a way to open devices, proptest set-up, test data.

use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};
use tensorswap_core::{Device, IoEngine};

/// A failed check, with a message saying what differed.
#[derive(Debug)]
pub struct CaseError(pub String);

impl std::fmt::Display for CaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<tensorswap_core::Error> for CaseError {
    fn from(e: tensorswap_core::Error) -> Self {
        CaseError(format!("unexpected error: {e}"))
    }
}

impl From<tensorswap_swapper::SwapError> for CaseError {
    fn from(e: tensorswap_swapper::SwapError) -> Self {
        CaseError(format!("unexpected swapper error: {e}"))
    }
}

/// A refused or failed call (transfer, file request, swapper call, ...).
impl<T, E: std::fmt::Display> From<tensorswap_core::Rejected<T, E>> for CaseError {
    fn from(e: tensorswap_core::Rejected<T, E>) -> Self {
        CaseError(format!("unexpected failure: {}", e.error))
    }
}

impl From<CaseError> for TestCaseError {
    fn from(e: CaseError) -> Self {
        TestCaseError::fail(e.0)
    }
}

/// Outcome of one case.
pub type Outcome = Result<(), CaseError>;

/// Fails the case with a formatted message unless the condition holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::CaseError(format!($($msg)+)).into());
        }
    };
}

/// Opens the subject under test (a device or an I/O engine) for a case and
/// counts the inputs it checked.
pub struct Ctx<T> {
    open: Arc<dyn Fn() -> tensorswap_core::Result<T> + Send + Sync>,
    regressions: &'static str,
    checked: Arc<AtomicUsize>,
    folders: usize,
}

impl<D: Device> Ctx<D> {
    /// Opens a fresh device.
    pub fn device(&self) -> Result<D, CaseError> {
        (self.open)().map_err(|e| CaseError(format!("opening the device failed: {e}")))
    }
}

impl<E: IoEngine> Ctx<E> {
    /// Starts a fresh engine.
    pub fn engine(&self) -> Result<E, CaseError> {
        (self.open)().map_err(|e| CaseError(format!("starting the engine failed: {e}")))
    }
}

impl<T> Ctx<T> {
    pub(crate) fn new(
        open: Arc<dyn Fn() -> tensorswap_core::Result<T> + Send + Sync>,
        regressions: &'static str,
    ) -> Self {
        Self {
            open,
            regressions,
            checked: Arc::new(AtomicUsize::new(0)),
            folders: 1,
        }
    }

    /// The same subject for cases that stripe their stores over `folders`
    /// folders; inputs checked count for both.
    pub(crate) fn with_folders(&self, folders: usize) -> Self {
        Self {
            open: Arc::clone(&self.open),
            regressions: self.regressions,
            checked: Arc::clone(&self.checked),
            folders,
        }
    }

    /// How many folders the swapper cases stripe their stores over.
    pub fn folders(&self) -> usize {
        self.folders
    }

    /// Records that `n` more inputs were checked.
    pub fn checked(&self, n: usize) {
        self.checked.fetch_add(n, Ordering::Relaxed);
    }

    /// Inputs checked so far.
    pub fn checked_count(&self) -> usize {
        self.checked.load(Ordering::Relaxed)
    }

    /// Runs a property over generated inputs; failures are shrunk and the
    /// seed saved to the backend's regression file, replayed first next time.
    pub fn proptest<S>(&self, strategy: S, test: impl Fn(S::Value) -> Outcome) -> Outcome
    where
        S: Strategy,
        S::Value: Debug,
    {
        let config = Config {
            cases: proptest_cases(),
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct(self.regressions))),
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let result = runner.run(&strategy, |value| {
            self.checked(1);
            test(value).map_err(TestCaseError::from)
        });
        match result {
            Ok(()) => Ok(()),
            Err(TestError::Fail(reason, value)) => Err(CaseError(format!(
                "{reason}\nminimal failing input: {value:?}"
            ))),
            Err(TestError::Abort(reason)) => Err(CaseError(format!("proptest aborted: {reason}"))),
        }
    }
}

/// Generated inputs per property: `PROPTEST_CASES`, or 32.
fn proptest_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

/// Deterministic, seed-dependent bytes (xorshift), cheap for many MiB.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// First index at which two byte strings differ, for readable failures.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// A second descriptor on `file` (a duplicate of its buffered one), for
/// reading or corrupting its bytes behind the engine's back: swap files have
/// no names to open.
pub fn raw_file(file: &tensorswap_core::SwapFile) -> Result<std::fs::File, CaseError> {
    file.descriptor(false)
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .map_err(|e| {
            CaseError(format!(
                "duplicating the descriptor of {}: {e}",
                file.path().display()
            ))
        })
}

/// Fails with the first differing offset unless `got == want`.
pub fn expect_bytes(what: &str, got: &[u8], want: &[u8]) -> Outcome {
    match first_difference(got, want) {
        None => Ok(()),
        Some(at) => Err(CaseError(format!(
            "{what}: bytes differ at offset {at} (got {} bytes, want {} bytes; got {:?}, want {:?})",
            got.len(),
            want.len(),
            got.get(at),
            want.get(at)
        ))),
    }
}
