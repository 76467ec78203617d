//! A decorator that caps any [`IoEngine`] at a set rate, like a drive of
//! that speed: one machine with one disk can then show how striping over
//! several such drives scales.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::engine::{IoEngine, IoPending, IoRequest, Region};
use crate::{AioConfig, Error, PendingOp, Result};

/// Wraps an engine so that it moves at most `bytes_per_second`.
///
/// Requests run on the inner engine as soon as they are submitted, but each
/// completes no earlier than a link of the set rate would have delivered it:
/// requests share the link in submission order, so `k` bytes submitted
/// together take at least `k / rate` seconds. Where the inner engine is
/// slower than the cap, it sets the pace.
///
/// ```
/// use std::time::Instant;
/// use tensorswap_core::{AioConfig, IoEngineExt, SwapDir, ThreadEngine, ThrottledEngine};
/// let parent = tempfile::tempdir()?;
/// let file = SwapDir::create(parent.path())?.create_file()?;
/// let engine = ThrottledEngine::new(ThreadEngine::new(&AioConfig::default())?, 50_000_000);
/// let start = Instant::now();
/// engine.write(&file, 0, vec![1u8; 5_000_000])?.wait()?; // 5 MB at 50 MB/s
/// assert!(start.elapsed().as_secs_f64() >= 0.1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ThrottledEngine<E> {
    inner: E,
    bytes_per_second: u64,
    /// When the link is next free.
    free_at: Mutex<Instant>,
}

impl<E: IoEngine> ThrottledEngine<E> {
    /// Caps `inner` at `bytes_per_second` (at least 1).
    pub fn new(inner: E, bytes_per_second: u64) -> Self {
        Self {
            inner,
            bytes_per_second: bytes_per_second.max(1),
            free_at: Mutex::new(Instant::now()),
        }
    }

    /// The wrapped engine.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// The cap.
    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Books `len` bytes on the link: when they will have been delivered.
    fn book(&self, len: usize) -> Instant {
        let transfer = Duration::from_secs_f64(len as f64 / self.bytes_per_second as f64);
        let mut free_at = self.free_at.lock().unwrap_or_else(|e| e.into_inner());
        let done = (*free_at).max(Instant::now()) + transfer;
        *free_at = done;
        done
    }
}

// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
impl<E: IoEngine> IoEngine for ThrottledEngine<E> {
    type Pending = ThrottledPending<E::Pending>;

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn config(&self) -> &AioConfig {
        self.inner.config()
    }

    unsafe fn submit(&self, req: IoRequest) -> Result<Self::Pending> {
        let len = req.len;
        // SAFETY: forwarded with the caller's guarantees.
        let inner = unsafe { self.inner.submit(req)? };
        Ok(ThrottledPending {
            inner,
            due: self.book(len),
        })
    }

    fn register_region(&self, region: Region) -> bool {
        self.inner.register_region(region)
    }
}

/// The pending operation of a [`ThrottledEngine`] request.
#[derive(Debug)]
pub struct ThrottledPending<P> {
    inner: P,
    /// When the capped link has delivered the request.
    due: Instant,
}

// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
impl<P: IoPending> PendingOp for ThrottledPending<P> {
    fn is_complete(&self) -> bool {
        Instant::now() >= self.due && self.inner.is_complete()
    }

    fn wait(self) -> std::result::Result<(), Error> {
        let result = self.inner.wait();
        std::thread::sleep(self.due.saturating_duration_since(Instant::now()));
        result
    }
}

// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
impl<P: IoPending> IoPending for ThrottledPending<P> {
    fn finished_at(&self) -> Option<Instant> {
        self.inner.finished_at().map(|at| at.max(self.due))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IoEngineExt, SwapDir, ThreadEngine};

    /// Requests share the link: two submitted together finish no earlier
    /// than their sum at the cap, and the bytes arrive intact.
    #[test]
    fn requests_share_the_cap() {
        let parent = tempfile::tempdir().unwrap();
        let file = SwapDir::create(parent.path())
            .unwrap()
            .create_file()
            .unwrap();
        let engine = ThrottledEngine::new(
            ThreadEngine::new(&AioConfig::default()).unwrap(),
            40_000_000,
        );
        let start = Instant::now();
        let a = engine.write(&file, 0, vec![1u8; 2_000_000]).unwrap();
        let b = engine.write(&file, 4 << 20, vec![2u8; 2_000_000]).unwrap();
        a.wait().unwrap();
        b.wait().unwrap();
        assert!(start.elapsed() >= Duration::from_millis(100));
        let back = engine.read(&file, 4 << 20, vec![0u8; 2_000_000]).unwrap();
        assert!(back.wait().unwrap().buf.iter().all(|&x| x == 2));
    }
}
