//! A decorator that injects OS errors into any [`IoEngine`], so the failure
//! tests run against every engine without a failing disk.

use std::io;
use std::sync::Mutex;
use std::time::Instant;

use super::engine::{IoEngine, IoPending, IoRequest, Region};
use crate::{AioConfig, Error, FaultStage, IoOp, PendingOp, Result};

/// Wraps an engine and fails chosen requests with a chosen `errno`.
///
/// With [`FaultStage::Submit`] the request is refused before any byte moves;
/// with [`FaultStage::Complete`] it runs on the inner engine and then reports
/// the error, as a disk that fills up (`ENOSPC`) or fails (`EIO`) part-way
/// would. Requests with no fault armed pass through unchanged.
///
/// ```
/// use tensorswap_core::{AioConfig, FaultStage, FaultyEngine, IoEngineExt, IoOp, SwapDir, ThreadEngine};
/// let parent = tempfile::tempdir()?;
/// let file = SwapDir::create(parent.path())?.create_file()?;
/// let engine = FaultyEngine::new(ThreadEngine::new(&AioConfig::default())?);
/// engine.fail_next(IoOp::Write, libc::ENOSPC, FaultStage::Complete);
/// let failed = engine.write(&file, 0, vec![7u8; 4096])?.wait().unwrap_err();
/// assert!(failed.error.to_string().contains("No space left"));
/// assert!(failed.value.iter().all(|&b| b == 7)); // the source is intact
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FaultyEngine<E> {
    inner: E,
    armed: Mutex<Vec<Fault>>,
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    op: IoOp,
    errno: i32,
    stage: FaultStage,
}

impl<E: IoEngine> FaultyEngine<E> {
    /// Wraps `inner` with no fault armed.
    pub fn new(inner: E) -> Self {
        Self {
            inner,
            armed: Mutex::new(Vec::new()),
        }
    }

    /// The wrapped engine.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// Makes the next `op` request fail with `errno` at `stage`. Faults
    /// armed for the same op fire in the order they were armed.
    pub fn fail_next(&self, op: IoOp, errno: i32, stage: FaultStage) {
        self.lock().push(Fault { op, errno, stage });
    }

    /// True while an armed fault has not fired yet.
    pub fn has_armed(&self) -> bool {
        !self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        self.armed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, op: IoOp) -> Option<Fault> {
        let mut armed = self.lock();
        let at = armed.iter().position(|f| f.op == op)?;
        Some(armed.remove(at))
    }
}

// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
impl<E: IoEngine> IoEngine for FaultyEngine<E> {
    type Pending = FaultyEnginePending<E::Pending>;

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn config(&self) -> &AioConfig {
        self.inner.config()
    }

    unsafe fn submit(&self, req: IoRequest) -> Result<Self::Pending> {
        let fault = self.take(req.op).map(|f| {
            let error = Error::Io {
                op: req.op,
                path: req.file.path().to_path_buf(),
                offset: req.offset,
                len: req.len,
                cause: io::Error::from_raw_os_error(f.errno),
            };
            (f.stage, error)
        });
        let injected = match fault {
            Some((FaultStage::Submit, error)) => return Err(error),
            Some((FaultStage::Complete, error)) => Some(error),
            None => None,
        };
        // SAFETY: forwarded with the caller's guarantees.
        let inner = unsafe { self.inner.submit(req)? };
        Ok(FaultyEnginePending { inner, injected })
    }

    fn register_region(&self, region: Region) -> bool {
        self.inner.register_region(region)
    }
}

/// The pending operation of a [`FaultyEngine`] request.
#[derive(Debug)]
pub struct FaultyEnginePending<P> {
    inner: P,
    injected: Option<Error>,
}

// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
impl<P: IoPending> PendingOp for FaultyEnginePending<P> {
    fn is_complete(&self) -> bool {
        self.inner.is_complete()
    }

    fn wait(self) -> Result<()> {
        self.inner.wait()?;
        self.injected.map_or(Ok(()), Err)
    }
}

// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
impl<P: IoPending> IoPending for FaultyEnginePending<P> {
    fn finished_at(&self) -> Option<Instant> {
        self.inner.finished_at()
    }
}
