//! The swap workload, what a bare `tensorswap bench` runs: N tensors of
//! mixed sizes swapped out of device memory to a file and back, verified,
//! next to the engine alone making the same file requests
//! (`Swapper::file_io_only`), the two alternated in the same run.

use std::io::Write;
use std::time::Instant;

use anyhow::{ensure, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tensorswap::storage::StripedFile;
use tensorswap::swapper::{DataPath, SwapStore, SwapStoreBuilder, Swapper, TensorId, TensorMeta};
use tensorswap::{
    AioConfig, AnyDevice, Device, DeviceExt, DirOptions, IoEngine, IoOp, ThrottledEngine,
};

use super::io_bench::{direct_policy, per_folder, FolderRate, IoTarget};
use super::{interrupt, size};

/// Options of the swap workload.
#[derive(Debug, Args)]
pub(crate) struct SwapArgs {
    /// Number of tensors (swap part; sizes mixed, from about 1/32 to 2x the average).
    #[arg(long, default_value_t = 64)]
    tensors: usize,
    /// Bytes per pinned slab (swap part; tensors larger than a slab stream through several).
    #[arg(long, default_value = "16M", value_parser = size::parse, allow_hyphen_values = true)]
    slab_size: usize,
    /// Pinned slabs (swap part): how many chunks can be in flight.
    #[arg(long, default_value_t = 4)]
    slabs: usize,
    /// Swap straight between device memory and the file, no host copy
    /// (swap part; DeepSpeed `use_gds`; cuda built with `gds`, and cpu).
    /// Where the device cannot, the swap says why and goes through pinned memory.
    #[arg(long)]
    gds: bool,
    /// Cap each folder's engine at this many bytes per second (swap part;
    /// e.g. 200M), as if each folder were a drive of that speed: with
    /// several `--folder`s on one disk, shows how striping scales.
    #[arg(long, value_parser = size::parse, allow_hyphen_values = true)]
    throttle: Option<usize>,
}

/// What the swap workload shares with the files part.
pub(crate) struct Common<'a> {
    /// Folder, total bytes, engine, direct-I/O policy, checksums.
    pub(crate) target: &'a IoTarget,
    /// The engine's settings.
    pub(crate) aio: &'a AioConfig,
    /// Loops (each: swap out, swap in, engine write, engine read).
    pub(crate) loops: usize,
    /// JSON records instead of a table.
    pub(crate) json: bool,
}

/// One measured operation of the swap workload.
#[derive(Debug, Serialize)]
struct SwapMeasurement {
    op: &'static str,
    backend: &'static str,
    bytes: usize,
    /// Median seconds per loop.
    seconds: f64,
    /// bytes / seconds / 10^9.
    gbps: f64,
    /// How the swapper moved the bytes (pinned, direct, or compat and why).
    data_path: String,
    /// Each folder's share: its bytes over the median seconds, in stripe order.
    folders: Vec<FolderRate>,
    /// `--throttle`: each folder's cap, bytes per second.
    cap_per_folder: Option<usize>,
}

/// The swapper under test, its tensors, and the engine-only baseline's file.
struct Workload<E: IoEngine> {
    swapper: Swapper<AnyDevice, E>,
    ids: Vec<TensorId>,
    sizes: Vec<usize>,
    baseline: StripedFile,
    throttle: Option<usize>,
}

/// Per-loop seconds of swap out, swap in, engine write, engine read.
type Times = [Vec<f64>; 4];

/// Bytes each folder moved in one loop of each op, in the order of [`Times`].
type Shares = [Vec<u64>; 4];

pub(crate) fn run(
    device: AnyDevice,
    args: &SwapArgs,
    common: &Common<'_>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    ensure!(args.tensors > 0, "--tensors must be at least 1");
    ensure!(
        common.target.size >= args.tensors,
        "--size must give each tensor at least 1 byte"
    );
    let target = common.target;
    // The pool's slabs, the largest tensor's host buffers, and on the cpu
    // backend the tensors themselves ("device" memory is host memory).
    let largest = tensor_sizes(target.size, args.tensors)
        .into_iter()
        .max()
        .unwrap_or(0);
    let resident = if device.info().backend == "cpu" {
        target.size
    } else {
        0
    };
    super::budget::check(
        args.slabs
            .saturating_mul(args.slab_size)
            .saturating_add(largest.saturating_mul(2))
            .saturating_add(resident),
        &format!(
            "--size {} on the {} backend",
            super::size::show_approx(target.size),
            device.info().backend
        ),
        "lower --size (or --slabs / --slab-size)",
    )?;
    let builder = SwapStore::builder()
        .folders(&target.folders)
        .dir_options(
            DirOptions::default()
                .direct_io(direct_policy(target.direct))
                .checksums(!target.no_checksums),
        )
        .aio(common.aio.clone())
        .engine(target.engine)
        .slab_size(args.slab_size)
        .slabs(args.slabs);
    let creating = || format!("creating a swap store in {}", target.describe_folders());
    match args.throttle {
        None => {
            let store = builder.build_for(&device).with_context(creating)?;
            Workload::set_up(device, store, args, common)?.run(common, out)
        }
        Some(cap) => {
            ensure!(cap > 0, "--throttle must be at least 1 byte per second");
            let store = throttled(builder, &device, cap).with_context(creating)?;
            Workload::set_up(device, store, args, common)?.run(common, out)
        }
    }
}

/// The store with every folder's engine capped at `cap` bytes per second.
fn throttled(
    builder: SwapStoreBuilder,
    device: &AnyDevice,
    cap: usize,
) -> tensorswap::Result<SwapStore<ThrottledEngine<tensorswap::AnyEngine>>> {
    builder.build_wrapping(device, |_, engine| ThrottledEngine::new(engine, cap as u64))
}

/// Mixed tensor sizes summing to about `total`: weights 1, 2, 4, ... 64
/// cycling, minus a few odd bytes so that most are not aligned.
fn tensor_sizes(total: usize, count: usize) -> Vec<usize> {
    let weights: Vec<usize> = (0..count).map(|i| 1 << (i * 5 % 7)).collect();
    let sum: usize = weights.iter().sum();
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| (total / sum * w).saturating_sub(i * 37 % 4096).max(1))
        .collect()
}

impl<E: IoEngine + 'static> Workload<E> {
    /// The swapper over `store` and its tensors, uploaded and registered.
    fn set_up(
        device: AnyDevice,
        store: SwapStore<E>,
        args: &SwapArgs,
        common: &Common<'_>,
    ) -> anyhow::Result<Self> {
        let baseline = store.create_file()?;
        let swapper = if args.gds {
            Swapper::with_direct_storage(device, store)?
        } else {
            Swapper::new(device, store)?
        };
        let sizes = tensor_sizes(common.target.size, args.tensors);
        let ids: Vec<TensorId> = (0..sizes.len() as u64).collect();
        let progress = ProgressBar::new(sizes.len() as u64).with_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} tensors uploaded")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        for (&id, &len) in ids.iter().zip(&sizes) {
            interrupt::check()?;
            let dev = swapper.device();
            let mut host = dev.alloc_host(len)?;
            stamp(&mut host, id);
            let done = dev.upload_blocking(host, dev.alloc(len)?, 0)?;
            swapper.register(id, TensorMeta::bytes_of(len), done.device)?;
            progress.inc(1);
        }
        progress.finish_and_clear();
        Ok(Self {
            swapper,
            ids,
            sizes,
            baseline,
            throttle: args.throttle,
        })
    }

    fn run(self, common: &Common<'_>, out: &mut impl Write) -> anyhow::Result<()> {
        if !common.json {
            self.describe(common.loops, out)?;
        }
        let (times, shares) = self.measure(common.loops)?;
        self.verify()?;
        self.report(&times, &shares, common.json, out)
    }

    fn bytes(&self) -> usize {
        self.sizes.iter().sum()
    }

    fn describe(&self, loops: usize, out: &mut impl Write) -> anyhow::Result<()> {
        let store = self.swapper.store();
        let device = self.swapper.device().info();
        writeln!(
            out,
            "tensorswap bench: {} on {device}; {} tensors, {} ({} to {} each) in {}",
            device.backend,
            self.sizes.len(),
            size::show_approx(self.bytes()),
            size::show_approx(*self.sizes.iter().min().unwrap_or(&0)),
            size::show_approx(*self.sizes.iter().max().unwrap_or(&0)),
            folder_names(store).join(", "),
        )?;
        if store.dirs().len() > 1 {
            writeln!(
                out,
                "striped over {} folders, {} at a time, one engine each{}",
                store.dirs().len(),
                size::show(store.striped_file().unit() as usize),
                match self.throttle {
                    Some(cap) => format!(
                        "; each capped at {}/s (--throttle), so the most the store can do is {}/s",
                        size::show_approx(cap),
                        size::show_approx(cap * store.dirs().len())
                    ),
                    None => String::new(),
                }
            )?;
        } else if let Some(cap) = self.throttle {
            writeln!(
                out,
                "the folder's engine capped at {}/s (--throttle)",
                size::show_approx(cap)
            )?;
        }
        let c = store.engine().config();
        writeln!(
            out,
            "{} engine (block {}, queue depth {}, parallelism {}), {}, {} pinned slabs of {}{}; medians of {loops} loop(s), GB = 10^9 bytes",
            store.engine().name(),
            size::show(c.block_size),
            c.queue_depth,
            c.intra_op_parallelism,
            if store.file().is_direct() { "direct I/O" } else { "buffered I/O" },
            store.pool().stats().slabs,
            size::show(store.pool().slab_size()),
            if store.pool().is_pinned() {
                ""
            } else {
                " (not page-locked: over the memlock limit; raise `ulimit -l`, or lower --slabs / --slab-size)"
            },
        )?;
        let path = self.swapper.data_path();
        let caveat = match (path, store.pool().is_pinned()) {
            (DataPath::Direct, _) if device.backend == "cpu" => {
                "; on the cpu backend direct storage is pread/pwrite into host memory through the page cache, so its speed is the page cache's, not the disk's"
            }
            (DataPath::Pinned | DataPath::Compat { .. }, false) => " (the slabs are not page-locked)",
            _ => "",
        };
        writeln!(out, "swap data path: {path}{caveat}")?;
        Ok(())
    }

    /// One untimed round of each (every tensor gets its place in the store's
    /// file, the baseline file its blocks), then `loops` timed rounds. Odd
    /// rounds run the swap before the engine, even rounds after, so drift of
    /// the disk's speed during a run falls on both alike. Also gives the
    /// bytes each folder moved in one round of each op.
    fn measure(&self, loops: usize) -> anyhow::Result<(Times, Shares)> {
        self.swap(IoOp::Write)?;
        self.swap(IoOp::Read)?;
        self.engine(IoOp::Write)?;
        let mut times = Times::default();
        let mut shares = Shares::default();
        for round in 0..loops {
            let [out, inn, write, read] = if round % 2 == 0 {
                let write = self.engine(IoOp::Write)?;
                let out = self.swap(IoOp::Write)?;
                let read = self.engine(IoOp::Read)?;
                [out, self.swap(IoOp::Read)?, write, read]
            } else {
                let out = self.swap(IoOp::Write)?;
                let write = self.engine(IoOp::Write)?;
                let inn = self.swap(IoOp::Read)?;
                [out, inn, write, self.engine(IoOp::Read)?]
            };
            let measured = [out, inn, write, read];
            for ((series, share), (seconds, moved)) in
                times.iter_mut().zip(&mut shares).zip(measured)
            {
                series.push(seconds);
                if round == 0 {
                    *share = moved;
                }
            }
        }
        Ok((times, shares))
    }

    /// Seconds to swap every tensor out (`Write`) or in (`Read`), and the
    /// bytes each folder moved.
    fn swap(&self, op: IoOp) -> anyhow::Result<(f64, Vec<u64>)> {
        interrupt::check()?;
        let file = self.swapper.store().striped_file();
        let before = file.bytes_moved();
        let start = Instant::now();
        match op {
            IoOp::Write => self.swapper.swap_out(&self.ids)?.wait()?,
            IoOp::Read => self.swapper.swap_in(&self.ids)?.wait()?,
        }
        Ok((start.elapsed().as_secs_f64(), moved_since(file, &before)))
    }

    /// Seconds for the engine alone to make the same file requests, and the
    /// bytes each folder moved.
    fn engine(&self, op: IoOp) -> anyhow::Result<(f64, Vec<u64>)> {
        interrupt::check()?;
        let before = self.baseline.bytes_moved();
        let start = Instant::now();
        self.swapper.file_io_only(&self.ids, op, &self.baseline)?;
        let seconds = start.elapsed().as_secs_f64();
        Ok((seconds, moved_since(&self.baseline, &before)))
    }

    /// Every byte of every tensor, after the last swap-in.
    fn verify(&self) -> anyhow::Result<()> {
        for (&id, &len) in self.ids.iter().zip(&self.sizes) {
            interrupt::check()?;
            let got = self.swapper.swap_into(id, vec![0u8; len])?;
            let mut want = vec![0u8; len];
            stamp(&mut want, id);
            ensure!(got == want, "tensor {id} came back with different bytes");
        }
        Ok(())
    }

    fn report(
        &self,
        times: &Times,
        shares: &Shares,
        json: bool,
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        let bytes = self.bytes();
        let seconds: Vec<f64> = times.iter().map(|t| median(t.clone())).collect();
        let ops = ["swap_out", "swap_in", "engine_write", "engine_read"];
        let names = folder_names(self.swapper.store());
        let rows: Vec<SwapMeasurement> = ops
            .iter()
            .zip(&seconds)
            .zip(shares)
            .map(|((&op, &s), share)| SwapMeasurement {
                op,
                backend: self.swapper.device().info().backend,
                bytes,
                seconds: s,
                gbps: bytes as f64 / s / 1e9,
                data_path: self.swapper.data_path().to_string(),
                folders: FolderRate::each(&names, share, s),
                cap_per_folder: self.throttle,
            })
            .collect();
        if json {
            for row in &rows {
                writeln!(out, "{}", serde_json::to_string(row)?)?;
            }
            return Ok(());
        }
        writeln!(
            out,
            "{:>10} {:>10} {:>16} {:>8}",
            "op", "swap GB/s", "engine-only GB/s", "ratio"
        )?;
        let round_trip = |a: f64, b: f64| 2.0 * bytes as f64 / (a + b) / 1e9;
        let table = [
            ("swap out", rows[0].gbps, rows[2].gbps),
            ("swap in", rows[1].gbps, rows[3].gbps),
            (
                "round trip",
                round_trip(seconds[0], seconds[1]),
                round_trip(seconds[2], seconds[3]),
            ),
        ];
        for ((name, swap, engine), ratio) in table.into_iter().zip(ratios(times)) {
            writeln!(out, "{name:>10} {swap:>10.2} {engine:>16.2} {ratio:>7.2}x")?;
        }
        writeln!(
            out,
            "(ratio: median over loops of swap / engine-only measured back to back)"
        )?;
        if names.len() > 1 {
            per_folder(rows.iter().map(|r| (r.op, r.folders.as_slice())), out)?;
        }
        writeln!(
            out,
            "every byte of every tensor verified after the last swap-in"
        )?;
        Ok(())
    }
}

/// The store's swap folders, in stripe order.
fn folder_names<E: IoEngine>(store: &SwapStore<E>) -> Vec<String> {
    store
        .dirs()
        .iter()
        .map(|d| d.path().display().to_string())
        .collect()
}

/// Bytes each of `file`'s folders moved since `before`.
fn moved_since(file: &StripedFile, before: &[u64]) -> Vec<u64> {
    file.bytes_moved()
        .iter()
        .zip(before)
        .map(|(now, then)| now - then)
        .collect()
}

/// Swap out, swap in and round trip as medians over loops of the ratio of
/// the engine's time to the swap's, both measured back to back.
fn ratios([out, inn, write, read]: &Times) -> [f64; 3] {
    let ratio = |swap: &[f64], engine: &[f64]| -> f64 {
        median(swap.iter().zip(engine).map(|(s, e)| e / s).collect())
    };
    let trips = (0..out.len())
        .map(|i| (write[i] + read[i]) / (out[i] + inn[i]))
        .collect();
    [ratio(out, write), ratio(inn, read), median(trips)]
}

/// Writes a tensor's deterministic bytes (id in every 8-byte word).
fn stamp(bytes: &mut [u8], id: u64) {
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let word = (id << 40 | i as u64).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}
