//! Choosing an engine at run time.

use std::fmt;
use std::str::FromStr;

use super::engine::{IoEngine, IoRequest, Region};
use super::threads::ThreadEngine;
use super::uring::UringEngine;
use crate::sync::LatchPending;
use crate::{AioConfig, Error, Result};

/// Which engine to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// io_uring where a ring can be created, the thread pool otherwise.
    #[default]
    Auto,
    /// io_uring or an error.
    Uring,
    /// The `pread`/`pwrite` thread pool.
    Threads,
}

impl FromStr for EngineKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "uring" | "io_uring" => Ok(Self::Uring),
            "threads" => Ok(Self::Threads),
            other => Err(Error::Config {
                reason: crate::ds_config::bounded(&format!(
                    "unknown engine `{other}`; known: auto, uring, threads"
                )),
            }),
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Uring => "uring",
            Self::Threads => "threads",
        })
    }
}

/// One of the built-in engines, chosen at run time.
#[derive(Debug)]
pub enum AnyEngine {
    /// Linux io_uring.
    Uring(UringEngine),
    /// Thread pool.
    Threads(ThreadEngine),
}

impl AnyEngine {
    /// Starts the engine `kind` with `config`.
    ///
    /// `use_gds` does not change the engine: it asks swappers to move
    /// tensors between device memory and the file directly
    /// (`tensorswap_swapper::DataPath`), and this engine still serves
    /// the pinned path they fall back to.
    pub fn new(kind: EngineKind, config: &AioConfig) -> Result<Self> {
        match kind {
            EngineKind::Threads => Ok(Self::Threads(ThreadEngine::new(config)?)),
            EngineKind::Uring => Ok(Self::Uring(UringEngine::new(config)?)),
            EngineKind::Auto => match UringEngine::new(config) {
                Ok(engine) => Ok(Self::Uring(engine)),
                Err(err) if err.is_unavailable() => {
                    tracing::warn!(%err, "io_uring unavailable; using the thread-pool engine");
                    Ok(Self::Threads(ThreadEngine::new(config)?))
                }
                Err(err) => Err(err),
            },
        }
    }

    fn inner(&self) -> &dyn IoEngine<Pending = LatchPending> {
        match self {
            Self::Uring(engine) => engine,
            Self::Threads(engine) => engine,
        }
    }
}

// A decorator forwards every method, defaults included (a new default
// method must not be skipped silently).
#[deny(clippy::missing_trait_methods)]
impl IoEngine for AnyEngine {
    type Pending = LatchPending;

    fn name(&self) -> &'static str {
        self.inner().name()
    }

    fn config(&self) -> &AioConfig {
        self.inner().config()
    }

    unsafe fn submit(&self, req: IoRequest) -> Result<LatchPending> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner().submit(req) }
    }

    fn register_region(&self, region: Region) -> bool {
        self.inner().register_region(region)
    }
}
