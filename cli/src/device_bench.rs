//! `tensorswap bench --only device`: host <-> device transfer throughput,
//! size by size, next to a plain memcpy of the same bytes, alternated.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tensorswap::{AnyDevice, Device, DeviceExt};

use super::{interrupt, size};

/// Options of the device part.
#[derive(Debug, Args)]
pub(crate) struct DeviceArgs {
    /// Smallest transfer size (device part; sizes grow by 4x up to --max-size).
    #[arg(long, default_value = "4K", value_parser = size::parse, allow_hyphen_values = true)]
    min_size: usize,
    /// Largest transfer size (device part).
    #[arg(long, default_value = "256M", value_parser = size::parse, allow_hyphen_values = true)]
    max_size: usize,
    /// Repetitions per size and operation (device part; default: enough to
    /// move ~2 GiB, 5 to 1000).
    #[arg(long)]
    reps: Option<usize>,
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

/// The device `backend` names (`auto`: the best this machine runs).
pub(crate) fn open_device(backend: &str) -> anyhow::Result<AnyDevice> {
    let device = if backend == "auto" {
        let selection = tensorswap::open_best()?;
        tracing::info!("{selection}");
        selection.device
    } else {
        tensorswap::open(backend)?
    };
    #[cfg(feature = "cuda")]
    if matches!(device, AnyDevice::Cuda(_)) && tensorswap::cuda::emulated::is_emulated() {
        tracing::warn!(
            "the cuda driver is EMULATED on the CPU (TENSORSWAP_CUDA_EMULATOR): this run checks \
             the cuda code paths; its figures measure the emulator, not a GPU"
        );
    }
    Ok(device)
}

/// Measures every size from `--min-size` to `--max-size` and prints a row
/// (or three JSON records) per size.
pub(crate) fn run(
    backend: &str,
    args: &DeviceArgs,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let sizes = sizes(args)?;
    let dev = open_device(backend)?;
    budget(&dev, sizes.last().copied().unwrap_or(0))?;
    if !json {
        header(&dev, out)?;
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
        let rows = measure_size(&dev, bytes, reps)?;
        progress.suspend(|| print_rows(&rows, json, out))?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(())
}

/// Refuses, before allocating anything, a size whose buffers do not fit in
/// the memory this process may take: two host buffers per size, and on the
/// cpu backend a third for the "device".
fn budget(dev: &AnyDevice, largest: usize) -> anyhow::Result<()> {
    let buffers = if dev.info().backend == "cpu" { 3 } else { 2 };
    super::budget::check(
        largest.saturating_mul(buffers),
        &format!(
            "--max-size {} ({buffers} buffers of that size)",
            size::show_approx(largest)
        ),
        "lower --max-size",
    )
}

/// The sizes to measure, checked.
fn sizes(args: &DeviceArgs) -> anyhow::Result<Vec<usize>> {
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
    Ok(
        std::iter::successors(Some(args.min_size), |&s| s.checked_mul(4))
            .take_while(|&s| s <= args.max_size)
            .collect(),
    )
}

fn header(dev: &AnyDevice, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "tensorswap bench: {}; pinned host memory: {}; GB = 10^9 bytes; medians",
        dev.info(),
        if dev.capabilities().pinned_host {
            "yes"
        } else {
            "no"
        }
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
    Ok(())
}

/// Upload, download and memcpy of `bytes`, as records.
fn measure_size(dev: &AnyDevice, bytes: usize, reps: usize) -> anyhow::Result<[Measurement; 3]> {
    let backend = dev.info().backend;
    let [up, down, copy] = measure(dev, bytes, reps)
        .with_context(|| format!("measuring {} on {backend}", size::show(bytes)))?;
    let memcpy_gbps = gbps(bytes, copy);
    let record = |op, seconds: f64, ratio: bool| Measurement {
        op,
        backend,
        bytes,
        seconds,
        gbps: gbps(bytes, seconds),
        reps,
        vs_memcpy: ratio.then(|| gbps(bytes, seconds) / memcpy_gbps),
    };
    Ok([
        record("upload", up, true),
        record("download", down, true),
        record("memcpy", copy, false),
    ])
}

fn print_rows(rows: &[Measurement; 3], json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if json {
        for row in rows {
            writeln!(out, "{}", serde_json::to_string(row)?)?;
        }
    } else {
        writeln!(
            out,
            "{:>10} {:>6} {:>12.2} {:>14.2} {:>12.2} {:>13.2}x {:>15.2}x",
            size::show(rows[0].bytes),
            rows[0].reps,
            rows[0].gbps,
            rows[1].gbps,
            rows[2].gbps,
            rows[0].vs_memcpy.unwrap_or(f64::NAN),
            rows[1].vs_memcpy.unwrap_or(f64::NAN),
        )?;
    }
    Ok(out.flush()?)
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
    let mut times: [Vec<Duration>; 3] = Default::default();
    // Round 0 warms up (first touch of device memory, thread wake-up) and is not recorded.
    for round in 0..=reps {
        interrupt::check()?;
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
