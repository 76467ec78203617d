//! [`Shared`]: what the store's handle, its tickets and its committer
//! thread hold in common, and the messages they send the committer.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use tensorswap_core::SwapFile;

use crate::index::Index;
use crate::inflight::Inflight;
use crate::record::Record;
use crate::signal::Signal;
use crate::state::Locked;
use crate::{StoreError, StoreOptions};

/// The data file's name in a store's folder.
pub(crate) const DATA_FILE: &str = "values.dat";

/// The open store, shared.
pub(crate) struct Shared<E> {
    pub(crate) folder: PathBuf,
    pub(crate) options: StoreOptions,
    pub(crate) engine: E,
    pub(crate) file: SwapFile,
    pub(crate) index: Index,
    pub(crate) locked: Arc<Locked>,
    /// Value bytes written and read since open.
    pub(crate) written: AtomicU64,
    pub(crate) read: AtomicU64,
}

impl<E> Shared<E> {
    /// `fdatasync` of the data file (through the power-cut layer, if any).
    pub(crate) fn sync_data(&self) -> std::io::Result<()> {
        let sync = || Ok(rustix::fs::fdatasync(self.file.descriptor(false))?);
        #[cfg(feature = "fault-injection")]
        if let Some(cut) = &self.options.power_cut {
            return cut.sync(self.file.path(), sync);
        }
        sync()
    }

    /// The error of a store that stopped.
    pub(crate) fn stopped(&self, reason: &str) -> StoreError {
        StoreError::Stopped {
            path: self.folder.clone(),
            reason: reason.to_string(),
        }
    }
}

/// A put whose value is being written.
pub(crate) struct PendingPut {
    pub(crate) key: Vec<u8>,
    pub(crate) record: Record,
    pub(crate) io: Box<dyn Inflight>,
    /// When the put must be durable: now (`Some(now)`), by a deadline, or
    /// at the next flush (`None`).
    pub(crate) durable_by: Option<Instant>,
    pub(crate) done: Arc<Signal<Result<(), StoreError>>>,
}

/// What the committer thread is asked to do, in order.
pub(crate) enum Msg {
    Put(Box<PendingPut>),
    Remove {
        key: Vec<u8>,
        /// Only while the key holds this value (an eviction).
        id: Option<u64>,
        /// As for a put.
        durable_by: Option<Instant>,
        done: Option<Arc<Signal<Result<bool, StoreError>>>>,
    },
    /// A durable commit of everything before it.
    Sync {
        done: Arc<Signal<Result<(), StoreError>>>,
    },
}

impl Msg {
    /// True when committing it would not wait for a file request.
    pub(crate) fn ready(&self) -> bool {
        match self {
            Msg::Put(put) => put.io.is_complete(),
            _ => true,
        }
    }
}
