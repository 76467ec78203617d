//! How a store is opened ([`StoreOptions`]) and how each put is made
//! durable ([`Durability`], [`PutOptions`]).

use std::time::Duration;

use tensorswap_core::{AioConfig, EngineKind};

/// When an acknowledged put survives a crash (power cut included).
///
/// In every mode a crash leaves a store that reopens and serves, for each
/// key, nothing or exactly one value that was put for it; the modes differ
/// in which acknowledged puts are certain to be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Durable when the ticket completes: the value is written, the data
    /// file `fdatasync`ed and the index committed to disk. Puts that finish
    /// together share one sync (group commit).
    Sync,
    /// Durable within this interval of the ticket's completion, or at the
    /// next [`flush`](crate::PersistentStore::flush), whichever is first.
    Within(Duration),
    /// Durable at the next [`flush`](crate::PersistentStore::flush) or
    /// clean close only: a cache, which a crash may roll back to its last
    /// flush.
    Flush,
}

impl Durability {
    /// When a change made at `now` must be durable: at once, by a
    /// deadline, or at the next flush (`None`).
    pub(crate) fn deadline(self, now: std::time::Instant) -> Option<std::time::Instant> {
        match self {
            Self::Sync => Some(now),
            Self::Within(interval) => Some(now + interval),
            Self::Flush => None,
        }
    }
}

/// Options of one put.
///
/// ```
/// use tensorswap_store::{Durability, PutOptions};
/// let put = PutOptions::new().meta(b"f16 [4096]").pinned(true).durability(Durability::Sync);
/// assert!(put.pinned);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOptions {
    /// A small blob stored with the value (dtype and shape, say), up to
    /// [`MAX_META_LEN`](crate::MAX_META_LEN) bytes.
    pub meta: Vec<u8>,
    /// Never evicted while the key holds this value.
    pub pinned: bool,
    /// This put's durability instead of the store's.
    pub durability: Option<Durability>,
}

impl PutOptions {
    /// No metadata, not pinned, the store's durability.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `meta` with the value.
    pub fn meta(mut self, meta: impl Into<Vec<u8>>) -> Self {
        self.meta = meta.into();
        self
    }

    /// Pins the value against eviction.
    pub fn pinned(mut self, pinned: bool) -> Self {
        self.pinned = pinned;
        self
    }

    /// Overrides the store's durability for this put.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = Some(durability);
        self
    }
}

/// How [`PersistentStore::open`](crate::PersistentStore::open) opens or
/// creates a store.
///
/// ```
/// use tensorswap_store::{Durability, StoreOptions};
/// let options = StoreOptions::new(64 << 30).durability(Durability::Flush).eviction(false);
/// assert_eq!(options.capacity, Some(64 << 30));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Most bytes of values the store holds (each value rounded up to
    /// 4 KiB blocks); `None`: the capacity it was last opened with (a new
    /// store needs one).
    pub capacity: Option<u64>,
    /// When full, evict the least recently used unpinned values (default);
    /// when off, a put that does not fit fails with
    /// [`StoreError::Full`](crate::StoreError::Full).
    pub eviction: bool,
    /// Durability of puts that do not choose their own (default
    /// [`Durability::Sync`]).
    pub durability: Durability,
    /// The engine to start when the caller brings none (default
    /// [`EngineKind::Auto`]).
    pub engine: EngineKind,
    /// The engine's settings.
    pub aio: AioConfig,
    /// A simulated power cut under the index and the data syncs (the
    /// engine's writes need a [`PowerCutEngine`](crate::power_cut::PowerCutEngine)).
    #[cfg(feature = "fault-injection")]
    pub power_cut: Option<std::sync::Arc<crate::power_cut::PowerCut>>,
}

impl StoreOptions {
    /// A store of `capacity` bytes, with LRU eviction and durable puts.
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity: Some(capacity),
            eviction: true,
            durability: Durability::Sync,
            engine: EngineKind::Auto,
            aio: AioConfig::default(),
            #[cfg(feature = "fault-injection")]
            power_cut: None,
        }
    }

    /// An existing store, at the capacity it was last opened with (the
    /// tools open stores so).
    pub fn existing() -> Self {
        Self {
            capacity: None,
            ..Self::new(0)
        }
    }

    /// Turns LRU eviction on or off.
    pub fn eviction(mut self, on: bool) -> Self {
        self.eviction = on;
        self
    }

    /// Sets the default durability of puts.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Chooses the engine started by [`PersistentStore::open`](crate::PersistentStore::open).
    pub fn engine(mut self, kind: EngineKind) -> Self {
        self.engine = kind;
        self
    }

    /// Puts the index and the data syncs under a simulated power cut.
    #[cfg(feature = "fault-injection")]
    pub fn power_cut(mut self, cut: std::sync::Arc<crate::power_cut::PowerCut>) -> Self {
        self.power_cut = Some(cut);
        self
    }

    /// Sets the engine's settings.
    pub fn aio(mut self, aio: AioConfig) -> Self {
        self.aio = aio;
        self
    }
}
