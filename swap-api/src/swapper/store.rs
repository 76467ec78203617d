//! [`SwapStore`]: the swap folder, its file, the I/O engine and the pinned
//! pool that every swapper streams through.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::extent::{Extent, Extents};
use crate::storage::Submitted;
use crate::{
    AioConfig, AnyEngine, Device, DirOptions, EngineKind, Error, IoEngine, IoEngineExt, PinnedPool,
    Pinning, Result, SlabPart, SwapDir, SwapFile,
};

/// Where swapped bytes go: one private folder with one extent file, an I/O
/// engine, and a pinned pool whose slabs stage every transfer.
///
/// Cheap to clone; clones share everything, so several swappers can share
/// one store (one file, one pool). The file and folder are removed when the
/// last clone drops, unless the folder was created with
/// [`DirOptions::keep`].
///
/// ```
/// use swap_api::swapper::SwapStore;
/// let parent = tempfile::tempdir()?;
/// let store = SwapStore::builder().folder(parent.path()).slab_size(1 << 20).slabs(2).build()?;
/// assert_eq!(store.pool().stats().slabs, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SwapStore<E: IoEngine = AnyEngine> {
    inner: Arc<StoreInner<E>>,
}

struct StoreInner<E> {
    engine: E,
    pool: PinnedPool,
    file: SwapFile,
    dir: SwapDir,
    extents: Mutex<Extents>,
}

impl<E: IoEngine> Clone for SwapStore<E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<E: IoEngine> std::fmt::Debug for SwapStore<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwapStore")
            .field("engine", &self.inner.engine.name())
            .field("file", &self.inner.file.path())
            .field("pool", &self.inner.pool)
            .finish()
    }
}

impl SwapStore<AnyEngine> {
    /// Starts configuring a store.
    pub fn builder() -> SwapStoreBuilder {
        SwapStoreBuilder::default()
    }
}

impl<E: IoEngine> SwapStore<E> {
    /// A store from parts: `engine`, a swap folder, and a pool whose
    /// alignment is at least the folder's. The pool is offered to the
    /// engine for registration.
    pub fn new(engine: E, dir: SwapDir, pool: PinnedPool) -> Result<Self> {
        let align = dir.alignment();
        if pool.slab_size() % align != 0 {
            return Err(Error::Config {
                reason: format!(
                    "pool slabs of {} bytes are not a multiple of the swap folder's direct-I/O alignment {align}",
                    pool.slab_size()
                ),
            });
        }
        dir.check_block_size(engine.config().block_size);
        pool.register_with(&engine);
        let file = dir.create_file()?;
        Ok(Self {
            inner: Arc::new(StoreInner {
                engine,
                pool,
                file,
                dir,
                extents: Mutex::new(Extents::new(align)),
            }),
        })
    }

    /// The I/O engine.
    pub fn engine(&self) -> &E {
        &self.inner.engine
    }

    /// The pinned pool transfers stage through.
    pub fn pool(&self) -> &PinnedPool {
        &self.inner.pool
    }

    /// The swap folder.
    pub fn dir(&self) -> &SwapDir {
        &self.inner.dir
    }

    /// The file extents live in.
    pub fn file(&self) -> &SwapFile {
        &self.inner.file
    }

    /// Path of the file extents live in.
    pub fn path(&self) -> &Path {
        self.inner.file.path()
    }

    /// Alignment of extents, slab parts and padded lengths.
    pub fn alignment(&self) -> usize {
        self.inner.dir.alignment()
    }

    /// `len` rounded up to the alignment.
    pub(crate) fn padded(&self, len: usize) -> Result<usize> {
        crate::padded_len(len, self.alignment())
    }

    pub(crate) fn alloc(&self, len: usize) -> Result<Extent> {
        self.extents().alloc(len).ok_or_else(|| Error::Layout {
            reason: format!("an extent of {len} bytes does not fit in a file"),
        })
    }

    pub(crate) fn free(&self, extent: Extent) {
        self.extents().free(extent);
    }

    fn extents(&self) -> MutexGuard<'_, Extents> {
        self.inner.extents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts writing `part` at file offset `offset`.
    pub(crate) fn write(&self, offset: u64, part: SlabPart) -> Submitted<E, SlabPart> {
        self.inner.engine.write(&self.inner.file, offset, part)
    }

    /// Writes `len` zeros at `offset` and waits (the padding of a tensor
    /// written straight from device memory).
    pub(crate) fn zero(&self, offset: u64, len: usize) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let zeros = vec![0u8; len];
        let written = self.inner.engine.write(&self.inner.file, offset, zeros);
        written
            .and_then(|ticket| ticket.wait())
            .map(drop)
            .map_err(|f| f.error)
    }

    /// Starts filling `part` from file offset `offset`.
    pub(crate) fn read(&self, offset: u64, part: SlabPart) -> Submitted<E, SlabPart> {
        self.inner.engine.read(&self.inner.file, offset, part)
    }
}

/// Settings of a [`SwapStore`] built with the run-time chosen engine.
#[derive(Debug, Clone)]
pub struct SwapStoreBuilder {
    folder: Option<PathBuf>,
    dir: DirOptions,
    aio: AioConfig,
    engine: EngineKind,
    slab_size: usize,
    slabs: usize,
    pinning: Pinning,
}

impl Default for SwapStoreBuilder {
    fn default() -> Self {
        Self {
            folder: None,
            dir: DirOptions::default(),
            aio: AioConfig::default(),
            engine: EngineKind::Auto,
            slab_size: 16 << 20,
            slabs: 4,
            pinning: Pinning::Auto,
        }
    }
}

impl SwapStoreBuilder {
    /// Folder the private swap folder is created in (DeepSpeed's
    /// `nvme_path`; default: the system temporary folder).
    pub fn folder(mut self, path: impl Into<PathBuf>) -> Self {
        self.folder = Some(path.into());
        self
    }

    /// Direct-I/O policy, checksums, keep-on-drop.
    pub fn dir_options(mut self, options: DirOptions) -> Self {
        self.dir = options;
        self
    }

    /// The `"aio"` settings of the engine.
    pub fn aio(mut self, config: AioConfig) -> Self {
        self.aio = config;
        self
    }

    /// Which engine to run (default: io_uring where available).
    pub fn engine(mut self, kind: EngineKind) -> Self {
        self.engine = kind;
        self
    }

    /// Bytes per pinned slab (default 16 MiB; rounded up to the alignment).
    /// Tensors larger than a slab stream through several.
    pub fn slab_size(mut self, bytes: usize) -> Self {
        self.slab_size = bytes;
        self
    }

    /// Number of pinned slabs (default 4): how many transfers can be in
    /// flight at once.
    pub fn slabs(mut self, count: usize) -> Self {
        self.slabs = count;
        self
    }

    /// Page-locking policy of the pool (default [`Pinning::Auto`]).
    pub fn pinning(mut self, pinning: Pinning) -> Self {
        self.pinning = pinning;
        self
    }

    /// Builds the store with its pool page-locked (`mlock`).
    pub fn build(self) -> Result<SwapStore> {
        let (dir, builder) = self.prepare()?;
        let pool = builder.build()?;
        SwapStore::new(AnyEngine::new(self.engine, &self.aio)?, dir, pool)
    }

    /// Builds the store with its pool registered with `device`, so slabs
    /// serve both direct I/O and the device's asynchronous copies.
    pub fn build_for<D: Device>(self, device: &D) -> Result<SwapStore> {
        let (dir, builder) = self.prepare()?;
        let pool = builder.build_for(device)?;
        SwapStore::new(AnyEngine::new(self.engine, &self.aio)?, dir, pool)
    }

    fn prepare(&self) -> Result<(SwapDir, crate::PinnedPoolBuilder)> {
        self.aio.validate()?;
        let folder = self.folder.clone().unwrap_or_else(std::env::temp_dir);
        let dir = SwapDir::create_with(&folder, self.dir)?;
        let align = dir.alignment();
        let slab_size = crate::padded_len(self.slab_size, align)?;
        let builder = PinnedPool::builder()
            .slab_size(slab_size)
            .slabs(self.slabs)
            .alignment(align)
            .pinning(self.pinning);
        Ok((dir, builder))
    }
}
