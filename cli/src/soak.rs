//! `tensorswap soak`: threads doing random operations on one swapper and
//! one I/O engine for a set time, every byte checked against a model, and
//! the pool, the files and the folder checked whole at the end.
//!
//! Each thread owns its tensor ids and its engine file, so its model is
//! exact; the swapper, its pool (few slabs, so threads wait on each other),
//! its file and the engine are shared by all.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Args;
use tensorswap::swapper::{SwapStore, Swapper, TensorId, TensorMeta, TensorState};
use tensorswap::{
    AioConfig, AnyDevice, AnyEngine, DeviceExt, DirOptions, IoEngine, IoEngineExt, SwapDir,
    SwapFile,
};

use super::device_bench::open_device;
use super::interrupt;

/// Options of `tensorswap soak`.
#[derive(Debug, Args)]
pub(crate) struct SoakArgs {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Threads hammering the swapper and the engine.
    #[arg(long, default_value_t = 8)]
    threads: usize,
    /// Tensors each thread owns.
    #[arg(long, default_value_t = 12)]
    tensors: usize,
    /// Seed of the random operations (printed, to replay a run).
    #[arg(long)]
    seed: Option<u64>,
    /// Backend: auto, cpu, wgpu or cuda.
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Parent folder of the swap folder.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    folder: PathBuf,
}

/// Bytes per slab: small, so that tensors stream through several.
const SLAB: usize = 256 << 10;
/// Slabs in the shared pool: fewer than threads, so they wait on each other.
const SLABS: usize = 4;
/// Largest tensor and largest engine request.
const MAX_LEN: usize = 3 * SLAB + 1000;
/// Address space a thread's stack takes (std's default).
const THREAD_STACK: usize = 2 << 20;
/// Engine writes start before this offset, so a thread's file (and its
/// model in memory) stays under `FILE_MAX + MAX_LEN` bytes.
const FILE_MAX: usize = 8 * MAX_LEN;

/// What the threads did, added up.
#[derive(Debug, Default)]
struct Tally {
    ops: u64,
    swapper_ops: u64,
    engine_ops: u64,
    bytes_checked: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.ops += other.ops;
        self.swapper_ops += other.swapper_ops;
        self.engine_ops += other.engine_ops;
        self.bytes_checked += other.bytes_checked;
    }
}

pub(crate) fn run(args: &SoakArgs, out: &mut impl Write) -> anyhow::Result<()> {
    ensure!(args.threads > 0, "--threads must be at least 1");
    ensure!(args.tensors > 0, "--tensors must be at least 1");
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    }) | 1;
    // Each thread's tensors (their bytes, and on the cpu backend their
    // "device" memory), its engine file's model and a read of it, a few
    // buffers in flight; the pool.
    let per_thread = args
        .tensors
        .saturating_mul(2 * MAX_LEN)
        .saturating_add(2 * (FILE_MAX + MAX_LEN) + 3 * MAX_LEN);
    super::budget::check(
        per_thread
            .saturating_add(THREAD_STACK)
            .saturating_mul(args.threads)
            .saturating_add(SLABS * SLAB),
        &format!(
            "soak with {} threads x {} tensors of up to {} KiB",
            args.threads,
            args.tensors,
            MAX_LEN >> 10
        ),
        "lower --threads or --tensors",
    )?;
    let device = open_device(&args.backend)?;
    let aio = AioConfig::default()
        .with_block_size(64 << 10)
        .with_queue_depth(8)
        .with_parallelism(2);
    let store = SwapStore::builder()
        .folder(&args.folder)
        .dir_options(DirOptions::default())
        .aio(aio.clone())
        .slab_size(SLAB)
        .slabs(SLABS)
        .build_for(&device)?;
    let pool = store.pool().clone();
    let engine = AnyEngine::new(tensorswap::EngineKind::Auto, &aio)?;
    let dir = SwapDir::create(&args.folder)?;
    // Swap folders of their own (swept by a later run if this one dies).
    let folders: Vec<PathBuf> = store
        .dirs()
        .iter()
        .chain([&dir])
        .map(|d| d.path().to_path_buf())
        .collect();
    let swapper = Swapper::new(device, store)?;
    writeln!(
        out,
        "soak: {} threads x {} tensors on one swapper ({} engine, {SLABS} slabs of {} KiB) and one {} engine, {} s, seed {seed}",
        args.threads,
        args.tensors,
        swapper.store().engine().name(),
        SLAB >> 10,
        engine.name(),
        args.seconds,
    )?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let results: Vec<anyhow::Result<Tally>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.threads)
            .map(|t| {
                let (swapper, engine, dir) = (&swapper, &engine, &dir);
                scope.spawn(move || {
                    let mut worker = Worker::new(t, args.tensors, seed, swapper, engine, dir)?;
                    worker.run(deadline)?;
                    worker.finish()?;
                    Ok(worker.tally)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| bail!("a soak thread panicked")))
            .collect()
    });
    let mut total = Tally::default();
    for (t, result) in results.into_iter().enumerate() {
        total.add(&result.with_context(|| format!("soak thread {t} (seed {seed})"))?);
    }
    swapper.wait_idle();
    ensure!(
        swapper.ids().is_empty(),
        "tensors left: {:?}",
        swapper.ids()
    );
    let stats = pool.stats();
    ensure!(stats.leased == 0, "the pool is not whole: {stats:?}");
    drop((swapper, dir));
    let left: Vec<&PathBuf> = folders.iter().filter(|f| f.exists()).collect();
    ensure!(left.is_empty(), "swap folders left behind: {left:?}");
    writeln!(
        out,
        "soak: {} operations ({} swapper, {} engine), {:.2} GB checked byte for byte, 0 wrong; pool whole (peak {} of {SLABS} slabs), folders removed",
        total.ops,
        total.swapper_ops,
        total.engine_ops,
        total.bytes_checked as f64 / 1e9,
        stats.peak,
    )?;
    Ok(())
}

/// xorshift64*: per-thread, reproducible from the run's seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes of `len` from `seed`.
/// `len` pseudo-random bytes; running out of memory is an error, not an
/// abort.
fn pattern(seed: u64, len: usize) -> anyhow::Result<Vec<u8>> {
    let mut rng = Rng(seed | 1);
    let mut bytes = zeroed(len)?;
    bytes.iter_mut().for_each(|b| *b = rng.next() as u8);
    Ok(bytes)
}

/// `len` zero bytes, or an error where the allocator refuses.
fn zeroed(len: usize) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len)
        .with_context(|| format!("allocating {len} bytes"))?;
    bytes.resize(len, 0);
    Ok(bytes)
}

/// One thread: its tensors and their expected bytes, its engine file and
/// its expected contents.
struct Worker<'a> {
    rng: Rng,
    swapper: &'a Swapper<AnyDevice>,
    engine: &'a AnyEngine,
    ids: Vec<TensorId>,
    bytes: Vec<Vec<u8>>,
    file: SwapFile,
    contents: Vec<u8>,
    tally: Tally,
}

impl<'a> Worker<'a> {
    fn new(
        t: usize,
        tensors: usize,
        seed: u64,
        swapper: &'a Swapper<AnyDevice>,
        engine: &'a AnyEngine,
        dir: &SwapDir,
    ) -> anyhow::Result<Self> {
        let mut worker = Self {
            rng: Rng((seed ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1),
            swapper,
            engine,
            ids: (0..tensors).map(|i| (t * tensors + i) as u64).collect(),
            bytes: vec![Vec::new(); tensors],
            file: dir.create_file()?,
            contents: Vec::new(),
            tally: Tally::default(),
        };
        for i in 0..tensors {
            worker.put(i)?;
        }
        Ok(worker)
    }

    /// Registers tensor `i` with fresh bytes of a random length.
    fn put(&mut self, i: usize) -> anyhow::Result<()> {
        let len = self.rng.below(MAX_LEN + 1);
        let bytes = pattern(self.rng.next(), len)?;
        let dev = self.swapper.device();
        let mut host = dev.alloc_host(len)?;
        host.copy_from_slice(&bytes);
        let done = dev.upload_blocking(host, dev.alloc(len)?, 0)?;
        self.swapper
            .register(self.ids[i], TensorMeta::bytes_of(len), done.device)?;
        self.bytes[i] = bytes;
        Ok(())
    }

    fn run(&mut self, deadline: Instant) -> anyhow::Result<()> {
        while Instant::now() < deadline {
            interrupt::check()?;
            if self.rng.below(3) == 0 {
                self.engine_op()?;
                self.tally.engine_ops += 1;
            } else {
                self.swapper_op()?;
                self.tally.swapper_ops += 1;
            }
            self.tally.ops += 1;
        }
        Ok(())
    }

    fn state(&self, i: usize) -> anyhow::Result<TensorState> {
        Ok(self.swapper.status(self.ids[i])?.state)
    }

    /// The tensors among `some` in `state`.
    fn in_state(&self, some: &[usize], state: TensorState) -> anyhow::Result<Vec<TensorId>> {
        let mut ids = Vec::new();
        for &i in some {
            if self.state(i)? == state {
                ids.push(self.ids[i]);
            }
        }
        Ok(ids)
    }

    fn swapper_op(&mut self) -> anyhow::Result<()> {
        let n = self.ids.len();
        let batch: Vec<usize> = (0..1 + self.rng.below(4))
            .map(|_| self.rng.below(n))
            .collect();
        let mut batch_unique = batch.clone();
        batch_unique.sort_unstable();
        batch_unique.dedup();
        let i = batch[0];
        match self.rng.below(7) {
            0 => {
                let ids = self.in_state(&batch_unique, TensorState::Resident)?;
                self.swapper.swap_out(&ids)?.wait()?;
            }
            1 => {
                let ids = self.in_state(&batch_unique, TensorState::Stored)?;
                self.swapper.swap_in(&ids)?.wait()?;
            }
            2 => {
                // Prefetch, then read the tensor from device memory.
                self.swapper.prefetch(&[self.ids[i]])?;
                let handle = self.swapper.get(self.ids[i])?;
                let got = self.swapper.device().download_shared(
                    handle.buffer(),
                    0,
                    zeroed(self.bytes[i].len())?,
                )?;
                self.expect(i, &got, "get after prefetch")?;
            }
            3 => {
                let got = self
                    .swapper
                    .swap_into(self.ids[i], zeroed(self.bytes[i].len())?)
                    .map_err(|r| r.error)?;
                self.expect(i, &got, "swap_into")?;
            }
            4 => {
                let status = self.swapper.status(self.ids[i])?;
                if status.state == TensorState::Resident && status.clean {
                    self.swapper.release(&[self.ids[i]])?;
                }
            }
            5 => {
                self.swapper.remove(self.ids[i])?;
                self.put(i)?;
            }
            _ => {
                // Swap a tensor all the way out and back, then check it.
                if self.state(i)? == TensorState::Resident {
                    self.swapper.swap_out(&[self.ids[i]])?.wait()?;
                }
                self.swapper.swap_in(&[self.ids[i]])?.wait()?;
                let got = self
                    .swapper
                    .swap_into(self.ids[i], zeroed(self.bytes[i].len())?)
                    .map_err(|r| r.error)?;
                self.expect(i, &got, "round trip")?;
            }
        }
        Ok(())
    }

    fn engine_op(&mut self) -> anyhow::Result<()> {
        let len = self.contents.len();
        if len == 0 || self.rng.below(2) == 0 {
            let offset = self.rng.below(len.min(FILE_MAX) + 1);
            let n = 1 + self.rng.below(MAX_LEN);
            let bytes = self
                .engine
                .write(&self.file, offset as u64, pattern(self.rng.next(), n)?)?
                .wait()?
                .buf;
            if self.contents.len() < offset + n {
                let more = offset + n - self.contents.len();
                self.contents
                    .try_reserve_exact(more)
                    .with_context(|| format!("allocating {more} bytes"))?;
                self.contents.resize(offset + n, 0);
            }
            self.contents[offset..offset + n].copy_from_slice(&bytes);
        } else {
            let offset = self.rng.below(len);
            let n = 1 + self.rng.below(len - offset);
            let got = self
                .engine
                .read(&self.file, offset as u64, zeroed(n)?)?
                .wait()?
                .buf;
            if got[..] != self.contents[offset..offset + n] {
                bail!("engine read of {n} bytes at {offset} differs from what was written");
            }
            self.tally.bytes_checked += n as u64;
        }
        Ok(())
    }

    fn expect(&mut self, i: usize, got: &[u8], what: &str) -> anyhow::Result<()> {
        if got != self.bytes[i] {
            let at = got.iter().zip(&self.bytes[i]).position(|(a, b)| a != b);
            bail!(
                "{what} of tensor {}: {} bytes back, {} expected, first difference at {at:?}",
                self.ids[i],
                got.len(),
                self.bytes[i].len()
            );
        }
        self.tally.bytes_checked += got.len() as u64;
        Ok(())
    }

    /// Every tensor's and the file's bytes once more, then the tensors removed.
    fn finish(&mut self) -> anyhow::Result<()> {
        for i in 0..self.ids.len() {
            let got = self
                .swapper
                .swap_into(self.ids[i], zeroed(self.bytes[i].len())?)
                .map_err(|r| r.error)?;
            self.expect(i, &got, "final check")?;
            self.swapper.remove(self.ids[i])?;
        }
        let len = self.contents.len();
        if len > 0 {
            let got = self.engine.read(&self.file, 0, zeroed(len)?)?.wait()?.buf;
            ensure!(
                got == self.contents,
                "the engine file differs from what was written"
            );
            self.tally.bytes_checked += len as u64;
        }
        Ok(())
    }
}
