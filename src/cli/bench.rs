//! `tensorswap bench`: host <-> device transfer throughput next to a plain
//! memcpy, and file I/O throughput of an engine configuration (like `ds_io`).

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tensorswap::{AioConfig, Device, DeviceExt};

use super::io_bench::{table_row, IoRun, IoTarget};
use super::size;
use super::swap_bench::{self, SwapArgs};

/// Options of `tensorswap bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Backend to measure: auto (the best this machine runs), cpu, wgpu or cuda.
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Smallest transfer size (sizes grow by 4x up to --max-size).
    #[arg(long, default_value = "4K", value_parser = size::parse)]
    min_size: usize,
    /// Largest transfer size.
    #[arg(long, default_value = "256M", value_parser = size::parse)]
    max_size: usize,
    /// Repetitions per size and operation (default: enough to move ~2 GiB, 5 to 1000).
    #[arg(long)]
    reps: Option<usize>,
    /// Print one JSON object per line per measurement instead of a table.
    #[arg(long)]
    json: bool,
    /// Run the end-to-end swap workload (what a bare `bench` runs).
    #[arg(long)]
    swap: bool,
    /// Run one part instead: the swap workload (default), device transfers
    /// next to memcpy, or file I/O through the engine.
    #[arg(long, value_enum, conflicts_with = "swap")]
    only: Option<Part>,
    /// Run all three parts.
    #[arg(long, conflicts_with_all = ["swap", "only"])]
    all: bool,
    #[command(flatten)]
    swap_args: SwapArgs,
    #[command(flatten)]
    files: FileArgs,
}

/// `--only` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// Tensors swapped out of device memory to a file and back, next to the engine alone.
    Swap,
    /// Host <-> device transfers.
    Device,
    /// File writes and reads through the I/O engine.
    Files,
}

/// The file I/O part of `tensorswap bench`.
#[derive(Debug, Args)]
struct FileArgs {
    #[command(flatten)]
    target: IoTarget,
    /// Bytes per I/O piece (DeepSpeed `block_size`).
    #[arg(long, default_value = "1M", value_parser = size::parse)]
    block_size: usize,
    /// Pieces in flight per worker (DeepSpeed `queue_depth`).
    #[arg(long, default_value_t = 8)]
    queue_depth: usize,
    /// Workers a request is spread over (DeepSpeed `intra_op_parallelism`).
    #[arg(long, default_value_t = 1)]
    io_parallel: usize,
    /// Submit pieces one at a time (DeepSpeed `single_submit`).
    #[arg(long)]
    single_submit: bool,
    /// Swap straight between device memory and the file, no host copy
    /// (DeepSpeed `use_gds`; cuda built with `gds`, and cpu). Where the
    /// device cannot, the swap says why and goes through pinned memory.
    #[arg(long)]
    gds: bool,
    /// Measure reads only (the file is written once first, untimed).
    #[arg(long)]
    read: bool,
    /// Measure writes only.
    #[arg(long)]
    write: bool,
    /// Write and read passes over the file; medians are reported.
    #[arg(long, default_value_t = 3)]
    loops: usize,
}

/// One measured operation at one size.
#[derive(Debug, Serialize)]
struct Measurement {
    op: &'static str,
    backend: &'static str,
    bytes: usize,
    /// Median seconds per operation.
    seconds: f64,
    /// bytes / seconds / 10^9.
    gbps: f64,
    reps: usize,
    /// gbps / memcpy gbps at the same size (upload and download only).
    #[serde(skip_serializing_if = "Option::is_none")]
    vs_memcpy: Option<f64>,
}

pub(crate) fn run(args: &BenchArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let part = args.only.unwrap_or(Part::Swap);
    if args.all || part == Part::Swap {
        let files = &args.files;
        if files.loops == 0 {
            bail!("--loops must be at least 1");
        }
        let device = open_device(&args.backend)?;
        let config = aio_config(files)?;
        swap_bench::run(
            device,
            &files.target,
            &config,
            &args.swap_args,
            files.loops,
            args.json,
            out,
        )?;
    }
    if args.all || part == Part::Device {
        run_device(args, out)?;
    }
    if args.all || part == Part::Files {
        run_files(&args.files, args.json, out)?;
    }
    Ok(())
}

/// The device `--backend` names (`auto`: the best this machine runs).
fn open_device(backend: &str) -> anyhow::Result<tensorswap::AnyDevice> {
    Ok(if backend == "auto" {
        let selection = tensorswap::open_best()?;
        tracing::info!("{selection}");
        selection.device
    } else {
        tensorswap::open(backend)?
    })
}

/// The `"aio"` settings the file options ask for.
fn aio_config(args: &FileArgs) -> anyhow::Result<AioConfig> {
    let config = AioConfig {
        use_gds: args.gds,
        ..AioConfig::default()
            .with_block_size(args.block_size)
            .with_queue_depth(args.queue_depth)
            .with_parallelism(args.io_parallel)
            .with_single_submit(args.single_submit)
    };
    config.validate()?;
    Ok(config)
}

fn run_files(args: &FileArgs, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if args.loops == 0 {
        bail!("--loops must be at least 1");
    }
    let config = aio_config(args)?;
    let (write, read) = match (args.write, args.read) {
        (false, false) => (true, true),
        selected => selected,
    };
    let run = IoRun::prepare(&args.target, &config)?;
    if !json {
        writeln!(
            out,
            "\nfile I/O in {}: {}",
            run.folder().display(),
            run.describe()
        )?;
        writeln!(
            out,
            "medians of {} loop(s); GB = 10^9 bytes, GiB = 2^30 bytes; latency per request",
            args.loops
        )?;
        writeln!(out, "{}", table_row(None))?;
        out.flush()?;
    }
    let passes = args.loops * (usize::from(write) + usize::from(read));
    let progress = ProgressBar::new((passes * args.target.size) as u64).with_style(
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let rows = run.measure(args.loops, write, read, |bytes| progress.inc(bytes as u64))?;
    progress.finish_and_clear();
    for row in &rows {
        if json {
            writeln!(out, "{}", serde_json::to_string(row)?)?;
        } else {
            writeln!(out, "{}", table_row(Some(row)))?;
        }
    }
    Ok(())
}

fn run_device(args: &BenchArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if args.min_size == 0 || args.min_size > args.max_size {
        bail!(
            "--min-size ({}) must be at least 1 byte and at most --max-size ({})",
            args.min_size,
            args.max_size
        );
    }
    if args.reps == Some(0) {
        bail!("--reps must be at least 1");
    }
    let dev = open_device(&args.backend)?;
    let sizes: Vec<usize> = std::iter::successors(Some(args.min_size), |&s| s.checked_mul(4))
        .take_while(|&s| s <= args.max_size)
        .collect();

    let info = dev.info();
    let caps = dev.capabilities();
    if !args.json {
        writeln!(
            out,
            "tensorswap bench: {info}; pinned host memory: {}; GB = 10^9 bytes; medians",
            if caps.pinned_host { "yes" } else { "no" }
        )?;
        writeln!(
            out,
            "{:>10} {:>6} {:>12} {:>14} {:>12} {:>14} {:>16}",
            "size",
            "reps",
            "upload GB/s",
            "download GB/s",
            "memcpy GB/s",
            "upload/memcpy",
            "download/memcpy"
        )?;
    }
    let progress = ProgressBar::new(sizes.len() as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} sizes {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for &bytes in &sizes {
        progress.set_message(size::show(bytes));
        let reps = args
            .reps
            .unwrap_or_else(|| ((2usize << 30) / bytes).clamp(5, 1000));
        let [up, down, copy] = measure(&dev, bytes, reps)
            .with_context(|| format!("measuring {} on {}", size::show(bytes), info.backend))?;
        let memcpy_gbps = gbps(bytes, copy);
        let record = |op, seconds: f64, ratio: bool| Measurement {
            op,
            backend: info.backend,
            bytes,
            seconds,
            gbps: gbps(bytes, seconds),
            reps,
            vs_memcpy: ratio.then(|| gbps(bytes, seconds) / memcpy_gbps),
        };
        let rows = [
            record("upload", up, true),
            record("download", down, true),
            record("memcpy", copy, false),
        ];
        progress.suspend(|| -> anyhow::Result<()> {
            if args.json {
                for row in &rows {
                    writeln!(out, "{}", serde_json::to_string(row)?)?;
                }
            } else {
                writeln!(
                    out,
                    "{:>10} {:>6} {:>12.2} {:>14.2} {:>12.2} {:>13.2}x {:>15.2}x",
                    size::show(bytes),
                    reps,
                    rows[0].gbps,
                    rows[1].gbps,
                    rows[2].gbps,
                    rows[0].vs_memcpy.unwrap_or(f64::NAN),
                    rows[1].vs_memcpy.unwrap_or(f64::NAN),
                )?;
            }
            Ok(out.flush()?)
        })?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(())
}

/// Median seconds of upload, download and memcpy of `bytes`, measured
/// alternately (one of each per round) on the same, pre-touched buffers.
fn measure<D: Device>(dev: &D, bytes: usize, reps: usize) -> anyhow::Result<[f64; 3]> {
    let mut src = dev.alloc_host(bytes)?;
    for (i, b) in src.iter_mut().enumerate() {
        *b = (i.wrapping_mul(31) >> 3) as u8;
    }
    let mut dst = dev.alloc_host(bytes)?;
    dst.fill(1);
    let mut mem = dev.alloc(bytes)?;
    let mut times = [
        Vec::with_capacity(reps),
        Vec::with_capacity(reps),
        Vec::with_capacity(reps),
    ];
    // Round 0 warms up (first touch of device memory, thread wake-up) and is not recorded.
    for round in 0..=reps {
        let t = Instant::now();
        let done = dev.upload(src, mem, 0)?.wait()?;
        let up = t.elapsed();
        (src, mem) = (done.host, done.device);

        let t = Instant::now();
        let done = dev.download(mem, 0, dst)?.wait()?;
        let down = t.elapsed();
        (dst, mem) = (done.host, done.device);
        if round == 0 && dst[..] != src[..] {
            bail!("downloaded bytes differ from uploaded bytes");
        }

        let t = Instant::now();
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
        let copy = t.elapsed();

        if round > 0 {
            for (series, d) in times.iter_mut().zip([up, down, copy]) {
                series.push(d);
            }
        }
    }
    Ok(times.map(median))
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    samples
        .get(samples.len() / 2)
        .map_or(f64::NAN, Duration::as_secs_f64)
}

fn gbps(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / seconds / 1e9
}
