//! [`SwapStore`]: the swap folders, their files, one I/O engine per folder,
//! and the pinned pool that every swapper streams through.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::extent::{Extent, Extents};
use tensorswap_core::storage::{StripedFile, StripedSubmitted, DEFAULT_STRIPE_UNIT};
use tensorswap_core::{
    AioConfig, AnyEngine, Device, DirOptions, EngineKind, Error, IoEngine, PinnedPool, Pinning,
    Result, SlabPart, SwapDir, SwapFile,
};

/// Where swapped bytes go: a private folder in each of one or more parent
/// folders (one per drive), an extent file in each, one I/O engine per
/// folder, and a pinned pool whose slabs stage every transfer.
///
/// Over several folders, extents live in one address space striped over the
/// files a stripe unit at a time ([`StripedFile`]): a tensor longer than a
/// unit is split over the folders and its parts move in parallel, each on
/// its folder's engine. A folder that fails (`ENOSPC`, `EIO`) fails the
/// request with an error naming its file; the swapper keeps the tensor where
/// it was.
///
/// Cheap to clone; clones share everything, so several swappers can share
/// one store (one file, one pool). The files and folders are removed when
/// the last clone drops, unless the folders were created with
/// [`DirOptions::keep`].
///
/// ```
/// use tensorswap_swapper::SwapStore;
/// let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
/// let store = SwapStore::builder().folders([a.path(), b.path()]).slab_size(1 << 20).slabs(2).build()?;
/// assert_eq!(store.pool().stats().slabs, 2);
/// assert_eq!(store.dirs().len(), 2);
/// assert_eq!(store.striped_file().unit(), 1 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SwapStore<E: IoEngine = AnyEngine> {
    inner: Arc<StoreInner<E>>,
}

struct StoreInner<E> {
    /// One per folder, in stripe order.
    engines: Vec<E>,
    dirs: Vec<SwapDir>,
    file: StripedFile,
    /// The largest of the folders' direct-I/O alignments.
    align: usize,
    pool: PinnedPool,
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
            .field("engine", &self.engine().name())
            .field("file", &self.inner.file)
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
        Self::striped(vec![(engine, dir)], pool, DEFAULT_STRIPE_UNIT)
    }

    /// A store striped over several folders, each with its own engine
    /// (`lanes`, in stripe order), `unit` bytes per stripe (a power of two
    /// of at least 1 MiB). The pool's slabs must be a multiple of every
    /// folder's alignment; it is offered to every engine for registration.
    pub fn striped(lanes: Vec<(E, SwapDir)>, pool: PinnedPool, unit: u64) -> Result<Self> {
        let align = lanes.iter().map(|(_, d)| d.alignment()).max().unwrap_or(1);
        if pool.slab_size() % align != 0 {
            return Err(Error::Config {
                reason: format!(
                    "pool slabs of {} bytes are not a multiple of the swap folder's direct-I/O alignment {align}",
                    pool.slab_size()
                ),
            });
        }
        let mut engines = Vec::with_capacity(lanes.len());
        let mut dirs = Vec::with_capacity(lanes.len());
        let mut files = Vec::with_capacity(lanes.len());
        for (engine, dir) in lanes {
            dir.check_block_size(engine.config().block_size);
            pool.register_with(&engine);
            files.push(dir.create_file()?);
            engines.push(engine);
            dirs.push(dir);
        }
        let file = StripedFile::new(files, unit)?;
        Ok(Self {
            inner: Arc::new(StoreInner {
                engines,
                dirs,
                file,
                align,
                pool,
                extents: Mutex::new(Extents::new(align)),
            }),
        })
    }

    /// The first folder's I/O engine (the only one unless striped).
    pub fn engine(&self) -> &E {
        &self.inner.engines[0]
    }

    /// Every folder's I/O engine, in stripe order.
    pub fn engines(&self) -> &[E] {
        &self.inner.engines
    }

    /// The pinned pool transfers stage through.
    pub fn pool(&self) -> &PinnedPool {
        &self.inner.pool
    }

    /// The first swap folder (the only one unless striped).
    pub fn dir(&self) -> &SwapDir {
        &self.inner.dirs[0]
    }

    /// Every swap folder, in stripe order.
    pub fn dirs(&self) -> &[SwapDir] {
        &self.inner.dirs
    }

    /// The first folder's file (the only one unless striped).
    pub fn file(&self) -> &SwapFile {
        &self.inner.file.files()[0]
    }

    /// The files extents live in, as one striped address space: offsets
    /// such as [`Swapper::stored_range`](super::Swapper::stored_range)'s are
    /// in it.
    pub fn striped_file(&self) -> &StripedFile {
        &self.inner.file
    }

    /// Path of the first folder's file.
    pub fn path(&self) -> &Path {
        self.file().path()
    }

    /// A new file in every folder, striped like the store's     /// file for [`Swapper::file_io_only`](super::Swapper::file_io_only)).
    pub fn create_file(&self) -> Result<StripedFile> {
        let files = self
            .dirs()
            .iter()
            .map(SwapDir::create_file)
            .collect::<Result<Vec<_>>>()?;
        StripedFile::new(files, self.inner.file.unit())
    }

    /// Alignment of extents, slab parts and padded lengths: the largest of
    /// the folders' direct-I/O alignments.
    pub fn alignment(&self) -> usize {
        self.inner.align
    }

    /// `len` rounded up to the alignment.
    pub(crate) fn padded(&self, len: usize) -> Result<usize> {
        tensorswap_core::padded_len(len, self.alignment())
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

    /// Starts writing `part` at offset `offset` of the store's striped file.
    pub(crate) fn write(&self, offset: u64, part: SlabPart) -> StripedSubmitted<E, SlabPart> {
        self.write_to(&self.inner.file, offset, part)
    }

    /// Starts writing `part` at `offset` of `file` (the store's, or one from
    /// [`SwapStore::create_file`]).
    pub(crate) fn write_to(
        &self,
        file: &StripedFile,
        offset: u64,
        part: SlabPart,
    ) -> StripedSubmitted<E, SlabPart> {
        file.write(self.engines(), offset, part)
    }

    /// Writes `len` zeros at `offset` and waits (the padding of a tensor
    /// written straight from device memory).
    pub(crate) fn zero(&self, offset: u64, len: usize) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let zeros = vec![0u8; len];
        let written = self.inner.file.write(self.engines(), offset, zeros);
        written
            .and_then(|ticket| ticket.wait())
            .map(drop)
            .map_err(|f| f.error)
    }

    /// Starts filling `part` from offset `offset` of the store's striped file.
    pub(crate) fn read(&self, offset: u64, part: SlabPart) -> StripedSubmitted<E, SlabPart> {
        self.read_from(&self.inner.file, offset, part)
    }

    /// Starts filling `part` from `offset` of `file`.
    pub(crate) fn read_from(
        &self,
        file: &StripedFile,
        offset: u64,
        part: SlabPart,
    ) -> StripedSubmitted<E, SlabPart> {
        file.read(self.engines(), offset, part)
    }
}

/// Settings of a [`SwapStore`] built with the run-time chosen engine.
#[derive(Debug, Clone)]
pub struct SwapStoreBuilder {
    folders: Vec<PathBuf>,
    stripe_unit: u64,
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
            folders: Vec::new(),
            stripe_unit: DEFAULT_STRIPE_UNIT,
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
    /// The one folder the private swap folder is created in (DeepSpeed's
    /// `nvme_path`; default: the system temporary folder). Replaces any
    /// folders set before.
    pub fn folder(mut self, path: impl Into<PathBuf>) -> Self {
        self.folders = vec![path.into()];
        self
    }

    /// Several folders, one per drive, to stripe the store over (a list
    /// `nvme_path`): a private swap folder and an engine in each. Replaces
    /// any folders set before; an empty list means the system temporary
    /// folder. The same folder may be named twice (two files on one drive).
    pub fn folders<P: Into<PathBuf>>(mut self, paths: impl IntoIterator<Item = P>) -> Self {
        self.folders = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Bytes per stripe over several folders (default 1 MiB; a power of two
    /// of at least 1 MiB). Tensors longer than a unit are split over the
    /// folders.
    pub fn stripe_unit(mut self, bytes: u64) -> Self {
        self.stripe_unit = bytes;
        self
    }

    /// Direct-I/O policy, checksums, keep-on-drop (of every folder).
    pub fn dir_options(mut self, options: DirOptions) -> Self {
        self.dir = options;
        self
    }

    /// The `"aio"` settings of the engines.
    pub fn aio(mut self, config: AioConfig) -> Self {
        self.aio = config;
        self
    }

    /// Which engine each folder runs (default: io_uring where available).
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
        let (lanes, builder) = self.prepare()?;
        let pool = builder.build()?;
        let lanes = self.engines(lanes, |_, engine| engine)?;
        SwapStore::striped(lanes, pool, self.stripe_unit)
    }

    /// Builds the store with its pool registered with `device`, so slabs
    /// serve both direct I/O and the device's asynchronous copies.
    pub fn build_for<D: Device>(self, device: &D) -> Result<SwapStore> {
        self.build_wrapping(device, |_, engine| engine)
    }

    /// [`build_for`](Self::build_for), with each folder's engine passed
    /// through `wrap` (its index in stripe order, the engine) first: to
    /// decorate it, with a [`ThrottledEngine`](tensorswap_core::ThrottledEngine) or a
    /// [`FaultyEngine`](tensorswap_core::FaultyEngine) for example.
    ///
    /// ```
    /// use tensorswap_swapper::SwapStore;
    /// use tensorswap_core::ThrottledEngine;
    /// let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    /// let device = tensorswap_cpu::CpuDevice::new()?;
    /// let store = SwapStore::builder()
    ///     .folders([a.path(), b.path()])
    ///     .build_wrapping(&device, |_, engine| ThrottledEngine::new(engine, 500_000_000))?;
    /// assert_eq!(store.engines().len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_wrapping<D: Device, W: IoEngine>(
        self,
        device: &D,
        wrap: impl FnMut(usize, AnyEngine) -> W,
    ) -> Result<SwapStore<W>> {
        let (dirs, builder) = self.prepare()?;
        let pool = builder.build_for(device)?;
        let lanes = self.engines(dirs, wrap)?;
        SwapStore::striped(lanes, pool, self.stripe_unit)
    }

    /// An engine for each folder, through `wrap`.
    fn engines<W>(
        &self,
        dirs: Vec<SwapDir>,
        mut wrap: impl FnMut(usize, AnyEngine) -> W,
    ) -> Result<Vec<(W, SwapDir)>> {
        dirs.into_iter()
            .enumerate()
            .map(|(i, dir)| Ok((wrap(i, AnyEngine::new(self.engine, &self.aio)?), dir)))
            .collect()
    }

    fn prepare(&self) -> Result<(Vec<SwapDir>, tensorswap_core::PinnedPoolBuilder)> {
        self.aio.validate()?;
        StripedFile::check_unit(self.stripe_unit)?;
        let folders = match self.folders.as_slice() {
            [] => vec![std::env::temp_dir()],
            some => some.to_vec(),
        };
        SwapDir::check_distinct(&folders)?;
        let dirs = folders
            .iter()
            .map(|folder| SwapDir::create_with(folder, self.dir))
            .collect::<Result<Vec<_>>>()?;
        let align = dirs.iter().map(SwapDir::alignment).max().unwrap_or(1);
        let slab_size = tensorswap_core::padded_len(self.slab_size, align)?;
        let builder = PinnedPool::builder()
            .slab_size(slab_size)
            .slabs(self.slabs)
            .alignment(align)
            .pinning(self.pinning);
        Ok((dirs, builder))
    }
}
