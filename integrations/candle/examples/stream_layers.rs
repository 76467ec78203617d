//! Layer streaming (ZeRO-Inference style) on candle: the weights of a
//! transformer of N blocks live on NVMe; block i+1 is prefetched while
//! block i computes, and block i's weights are dropped after use, so the
//! weights in memory stay under a budget smaller than the model.
//!
//! It prints the peak resident weight bytes (measured after every step:
//! the offloader's memory plus the block being computed), the time with and
//! without prefetch (alternating runs, medians), and checks the output bit
//! for bit against the same model run with every weight in memory.
//!
//! Run: `cargo run --release -p tensorswap-candle --example stream_layers
//! [-- --folder /mnt/nvme --blocks 12 --width 512 --rounds 5]`

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use candle_core::{Device, Tensor, D};
use tensorswap_candle::Offloader;

/// The weights of one block, in this order.
const PARTS: [&str; 8] = ["norm1", "wq", "wk", "wv", "wo", "norm2", "w1", "w2"];

/// Layer streaming on candle: weights on NVMe, one block ahead in memory.
#[derive(clap::Parser)]
struct Args {
    /// Folder for the swap folder (default: the system's temporary folder).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    folder: std::path::PathBuf,
    /// Transformer blocks (at least 4, for the budget to be smaller than the model).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(4..))]
    blocks: u64,
    /// Model width.
    #[arg(long, default_value_t = 512)]
    width: usize,
    /// Tokens per forward pass.
    #[arg(long, default_value_t = 128)]
    tokens: usize,
    /// Forward passes of each kind, alternating.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
}

/// One block's weights (random; the check compares two runs of the same
/// weights): two RMS-norm scales, attention and a 4x MLP.
fn block_weights(d: usize, device: &Device) -> candle_core::Result<Vec<Tensor>> {
    let scale = 1.0 / (d as f64).sqrt();
    PARTS
        .iter()
        .map(|part| match *part {
            "norm1" | "norm2" => Tensor::rand(0.8f32, 1.2, d, device),
            "w1" => Tensor::randn(0f32, scale as f32, (d, 4 * d), device),
            "w2" => Tensor::randn(0f32, (scale / 2.0) as f32, (4 * d, d), device),
            _ => Tensor::randn(0f32, scale as f32, (d, d), device),
        })
        .collect()
}

/// One pre-norm transformer block: attention, then an MLP, both residual.
fn block(x: &Tensor, w: &[Tensor]) -> candle_core::Result<Tensor> {
    let [norm1, wq, wk, wv, wo, norm2, w1, w2] = w else {
        candle_core::bail!("a block has {} weights, not 8", w.len())
    };
    let d = x.dim(D::Minus1)?;
    let h = candle_nn::ops::rms_norm(x, norm1, 1e-5)?;
    let (q, k, v) = (h.matmul(wq)?, h.matmul(wk)?, h.matmul(wv)?);
    let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?;
    let attention = candle_nn::ops::softmax_last_dim(&scores)?
        .matmul(&v)?
        .matmul(wo)?;
    let x = (x + attention)?;
    let h = candle_nn::ops::rms_norm(&x, norm2, 1e-5)?;
    x + h.matmul(w1)?.silu()?.matmul(w2)?
}

fn id(b: usize, j: usize) -> u64 {
    (b * PARTS.len() + j) as u64
}

/// Runs the model with weights from the offloader; returns the output, the
/// time, and the peak resident weight bytes seen.
fn streamed(
    off: &Offloader,
    x: &Tensor,
    blocks: usize,
    prefetch: bool,
) -> anyhow::Result<(Tensor, Duration, usize)> {
    let ids = |b: usize| (0..PARTS.len()).map(move |j| id(b, j)).collect::<Vec<_>>();
    let start = Instant::now();
    let mut peak = 0;
    let mut x = x.clone();
    if prefetch {
        off.prefetch(&ids(0))?;
    }
    for b in 0..blocks {
        // Take block b (waiting for its prefetch), then start reading b+1.
        let weights: Vec<Tensor> = ids(b)
            .into_iter()
            .map(|i| off.swap_in(i))
            .collect::<Result<_, _>>()?;
        let live: usize = weights
            .iter()
            .map(|w| w.elem_count() * w.dtype().size_in_bytes())
            .sum();
        peak = peak.max(off.resident_bytes() + live);
        if prefetch && b + 1 < blocks {
            off.prefetch(&ids(b + 1))?;
        }
        peak = peak.max(off.resident_bytes() + live);
        x = block(&x, &weights)?;
        peak = peak.max(off.resident_bytes() + live);
        drop(weights);
    }
    Ok((x, start.elapsed(), peak))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let (blocks, d) = (args.blocks as usize, args.width);
    let device = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (args.tokens, d), &device)?;

    // Reference: every weight in memory.
    let all: Vec<Vec<Tensor>> = (0..blocks)
        .map(|_| block_weights(d, &device))
        .collect::<candle_core::Result<_>>()?;
    let block_bytes: usize = all[0].iter().map(|w| w.elem_count() * 4).sum();
    let model_bytes = block_bytes * blocks;
    let mut reference = x.clone();
    for w in &all {
        reference = block(&reference, w)?;
    }

    // Out to NVMe; the weights in memory are dropped.
    let off = Offloader::builder()
        .folder(&args.folder)
        .build()
        .with_context(|| format!("making a swap folder in {}", args.folder.display()))?;
    let mut tickets = Vec::new();
    for (b, weights) in all.iter().enumerate() {
        for (j, w) in weights.iter().enumerate() {
            tickets.push(off.swap_out(id(b, j), w)?);
        }
    }
    drop(all);
    for ticket in tickets {
        ticket.wait()?;
    }
    // The block being computed, the next one arriving, and slack for one
    // being copied out of the offloader's memory.
    let budget = 3 * block_bytes;
    println!(
        "{blocks} blocks of {:.1} MiB ({:.1} MiB of f32 weights) on {}; weight budget {:.1} MiB",
        block_bytes as f64 / (1 << 20) as f64,
        model_bytes as f64 / (1 << 20) as f64,
        args.folder.display(),
        budget as f64 / (1 << 20) as f64,
    );

    let (mut with, mut without, mut peak) = (Vec::new(), Vec::new(), 0);
    for _ in 0..args.rounds {
        for prefetch in [true, false] {
            let (out, took, seen) = streamed(&off, &x, blocks, prefetch)?;
            ensure!(
                out.flatten_all()?
                    .to_vec1::<f32>()?
                    .iter()
                    .map(|v| v.to_bits())
                    .eq(reference
                        .flatten_all()?
                        .to_vec1::<f32>()?
                        .iter()
                        .map(|v| v.to_bits())),
                "the streamed output (prefetch {prefetch}) differs from the all-in-memory output"
            );
            peak = peak.max(seen);
            (if prefetch { &mut with } else { &mut without }).push(took.as_secs_f64());
        }
    }
    ensure!(
        peak <= budget,
        "peak resident weights {peak} B exceeded the budget {budget} B"
    );
    let ratio = median(with.iter().zip(&without).map(|(a, b)| a / b).collect());
    let (a, b) = (median(with), median(without));
    println!(
        "peak resident weight bytes: {peak} ({:.1} MiB, {:.0}% of the model, under the {:.1} MiB budget)",
        peak as f64 / (1 << 20) as f64,
        100.0 * peak as f64 / model_bytes as f64,
        budget as f64 / (1 << 20) as f64
    );
    println!(
        "forward pass, median of {} alternating rounds: prefetch {:.1} ms, no prefetch {:.1} ms; \
         time prefetch/no-prefetch: median of the rounds' ratios {:.2}",
        args.rounds,
        a * 1e3,
        b * 1e3,
        ratio
    );
    println!(
        "output of {}x{d} matches the all-in-memory run bit for bit",
        args.tokens
    );
    Ok(())
}
