//! `tensorswap bench` (the main job): an end-to-end offload workload — N
//! tensors of mixed sizes swapped out of device memory to a file and back,
//! verified — next to the engine alone moving the same bytes in the same
//! requests, measured alternately in the same run.

use std::collections::VecDeque;
use std::io::Write;
use std::time::Instant;

use anyhow::{ensure, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tensorswap::swapper::{SwapStore, Swapper, TensorMeta};
use tensorswap::{
    AioConfig, AnyDevice, AnyEngine, Device, DeviceExt, DirOptions, IoEngine, IoEngineExt, Slab,
    SwapFile,
};

use super::io_bench::{direct_policy, IoTarget};
use super::size;

/// Options of the swap workload.
#[derive(Debug, Args)]
pub(crate) struct SwapArgs {
    /// Number of tensors (sizes mixed, from about 1/32 to 2x the average).
    #[arg(long, default_value_t = 64)]
    tensors: usize,
    /// Bytes per pinned slab (tensors larger than a slab stream through several).
    #[arg(long, default_value = "16M", value_parser = size::parse)]
    slab_size: usize,
    /// Pinned slabs: how many chunks can be in flight.
    #[arg(long, default_value_t = 4)]
    slabs: usize,
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

pub(crate) fn run(
    device: AnyDevice,
    target: &IoTarget,
    aio: &AioConfig,
    args: &SwapArgs,
    loops: usize,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    ensure!(args.tensors > 0, "--tensors must be at least 1");
    ensure!(
        target.size >= args.tensors,
        "--size must give each tensor at least 1 byte"
    );
    let backend = device.info().backend;
    let store = SwapStore::builder()
        .folder(&target.folder)
        .dir_options(
            DirOptions::default()
                .direct_io(direct_policy(target.direct))
                .checksums(target.checksums),
        )
        .aio(aio.clone())
        .engine(target.engine)
        .slab_size(args.slab_size)
        .slabs(args.slabs)
        .build_for(&device)
        .with_context(|| format!("creating a swap store in {}", target.folder.display()))?;
    let baseline_file = store.dir().create_file()?;
    let swapper = Swapper::new(device, store)?;
    let sizes = tensor_sizes(target.size, args.tensors);
    let bytes: usize = sizes.iter().sum();
    let ids: Vec<u64> = (0..sizes.len() as u64).collect();
    let progress = ProgressBar::new(sizes.len() as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} tensors uploaded")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for (&id, &len) in ids.iter().zip(&sizes) {
        let dev = swapper.device();
        let mut host = dev.alloc_host(len)?;
        stamp(&mut host, id);
        let done = dev.upload_blocking(host, dev.alloc(len)?, 0)?;
        swapper.register(id, TensorMeta::bytes_of(len), done.device)?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    let store = swapper.store();
    let chunks = baseline_chunks(&sizes, store.pool().slab_size(), store.alignment());
    if !json {
        let engine = store.engine();
        let c = engine.config();
        writeln!(
            out,
            "tensorswap bench: {} on {}; {} tensors, {} ({} to {} each) in {}",
            backend,
            swapper.device().info(),
            sizes.len(),
            size::show_approx(bytes),
            size::show_approx(*sizes.iter().min().unwrap_or(&0)),
            size::show_approx(*sizes.iter().max().unwrap_or(&0)),
            store.dir().path().display(),
        )?;
        writeln!(
            out,
            "{} engine (block {}, queue depth {}, parallelism {}), {}, {} pinned slabs of {}{}; medians of {loops} loop(s), GB = 10^9 bytes",
            engine.name(),
            size::show(c.block_size),
            c.queue_depth,
            c.intra_op_parallelism,
            if store.file().is_direct() { "direct I/O" } else { "buffered I/O" },
            store.pool().stats().slabs,
            size::show(store.pool().slab_size()),
            if store.pool().is_pinned() { "" } else { " (not page-locked)" },
        )?;
        writeln!(out, "swap data path: {}", swapper.data_path())?;
    }
    // Seconds per loop: swap out, swap in, engine write, engine read. Odd
    // loops run the swap before the engine, even loops after, so drift of
    // the disk's speed during a run falls on both alike.
    let mut times: [Vec<f64>; 4] = Default::default();
    let swap_out = || timed(|| swapper.swap_out(&ids)?.wait());
    let swap_in = || timed(|| swapper.swap_in(&ids)?.wait());
    let engine = |write| engine_pass(store, &baseline_file, &chunks, write);
    for round in 0..loops {
        let [out, inn, write, read] = if round % 2 == 0 {
            let write = engine(true)?;
            let out = swap_out()?;
            let read = engine(false)?;
            [out, swap_in()?, write, read]
        } else {
            let out = swap_out()?;
            let write = engine(true)?;
            let inn = swap_in()?;
            [out, inn, write, engine(false)?]
        };
        for (series, value) in times.iter_mut().zip([out, inn, write, read]) {
            series.push(value);
        }
    }
    // Ratios per loop (swap vs engine measured back to back), then medians.
    let ratio = |swap: &[f64], engine: &[f64]| -> f64 {
        median(swap.iter().zip(engine).map(|(s, e)| e / s).collect())
    };
    let trip = |i: usize| times[0][i] + times[1][i];
    let engine_trip = |i: usize| times[2][i] + times[3][i];
    let trip_ratio = median((0..loops).map(|i| engine_trip(i) / trip(i)).collect());
    let ratios = [
        ratio(&times[0], &times[2]),
        ratio(&times[1], &times[3]),
        trip_ratio,
    ];
    for (&id, &len) in ids.iter().zip(&sizes) {
        let got = swapper.swap_into(id, vec![0u8; len])?;
        let mut want = vec![0u8; len];
        stamp(&mut want, id);
        ensure!(got == want, "tensor {id} came back with different bytes");
    }
    let seconds: Vec<f64> = times.into_iter().map(median).collect();
    let ops = ["swap_out", "swap_in", "engine_write", "engine_read"];
    let rows: Vec<SwapMeasurement> = ops
        .iter()
        .zip(&seconds)
        .map(|(&op, &s)| SwapMeasurement {
            op,
            backend,
            bytes,
            seconds: s,
            gbps: bytes as f64 / s / 1e9,
            data_path: swapper.data_path().to_string(),
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
    for ((name, swap, engine), ratio) in table.into_iter().zip(ratios) {
        writeln!(out, "{name:>10} {swap:>10.2} {engine:>16.2} {ratio:>7.2}x")?;
    }
    writeln!(
        out,
        "(ratio: median over loops of swap / engine-only measured back to back)"
    )?;
    writeln!(
        out,
        "every byte of every tensor verified after the last swap-in"
    )?;
    Ok(())
}

/// Writes a tensor's deterministic bytes (id in every 8-byte word).
fn stamp(bytes: &mut [u8], id: u64) {
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let word = (id << 40 | i as u64).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// The requests the swapper makes for these tensors: each tensor cut into
/// slab-sized chunks (padded), small ones packed into shared slabs.
/// Returns, per slab, the (file offset, padded length) of its chunks.
fn baseline_chunks(sizes: &[usize], slab: usize, align: usize) -> Vec<Vec<(u64, usize)>> {
    let mut batches = vec![Vec::new()];
    let (mut used, mut offset) = (0, 0u64);
    for &len in sizes {
        let padded = len.next_multiple_of(align);
        if used + padded.min(slab) > slab {
            batches.push(Vec::new());
            used = 0;
        }
        let mut done = 0;
        while done < padded {
            let n = (padded - done).min(slab);
            if let Some(batch) = batches.last_mut() {
                batch.push((offset + done as u64, n));
            }
            (used, done) = (used + n, done + n);
            if used == slab {
                batches.push(Vec::new());
                used = 0;
            }
        }
        offset += padded as u64;
    }
    batches.retain(|b| !b.is_empty());
    batches
}

/// The engine alone writing (or reading) the same requests through the same
/// pool, as many in flight as there are slabs. Returns seconds.
fn engine_pass(
    store: &SwapStore<AnyEngine>,
    file: &SwapFile,
    batches: &[Vec<(u64, usize)>],
    write: bool,
) -> anyhow::Result<f64> {
    let engine = store.engine();
    let pool = store.pool();
    let start = Instant::now();
    let mut inflight = VecDeque::new();
    for batch in batches {
        let slab: Slab = loop {
            match pool.try_lease() {
                Ok(slab) => break slab,
                Err(_) => match inflight.pop_front() {
                    Some(ticket) => drop(finish(ticket)?),
                    None => break pool.lease(),
                },
            }
        };
        let lens: Vec<usize> = batch.iter().map(|&(_, n)| n).collect();
        for (&(offset, _), part) in batch.iter().zip(slab.split(&lens)?) {
            let ticket = if write {
                engine.write(file, offset, part)?
            } else {
                engine.read(file, offset, part)?
            };
            inflight.push_back(ticket);
        }
    }
    for ticket in inflight {
        finish(ticket)?;
    }
    Ok(start.elapsed().as_secs_f64())
}

fn finish<P: tensorswap::IoPending, B: tensorswap::HostBuf>(
    ticket: tensorswap::IoTicket<P, B>,
) -> anyhow::Result<B> {
    Ok(ticket.wait()?.buf)
}

fn timed(f: impl FnOnce() -> tensorswap::Result<()>) -> anyhow::Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}
