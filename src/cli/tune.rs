//! `tensorswap tune`: sweep block size x queue depth x parallelism, like
//! DeepSpeed's `ds_nvme_tune`, and write the best `"aio"` section.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tensorswap::AioConfig;

use super::io_bench::{IoRun, IoTarget};
use super::{interrupt, size};

/// Options of `tensorswap tune`.
#[derive(Debug, Args)]
pub(crate) struct TuneArgs {
    #[command(flatten)]
    target: IoTarget,
    /// Block sizes to try (comma-separated).
    #[arg(long, value_delimiter = ',', default_values = ["256K", "1M", "4M"], value_parser = size::parse)]
    block_sizes: Vec<usize>,
    /// Queue depths to try (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [4, 8, 16, 32])]
    queue_depths: Vec<usize>,
    /// Parallelism (workers per request) to try (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2])]
    parallelism: Vec<usize>,
    /// Write and read passes per configuration (medians are compared).
    #[arg(long, default_value_t = 1)]
    loops: usize,
    /// Where to write the best configuration as a DeepSpeed `{"aio": {...}}` JSON.
    #[arg(long, default_value = "aio.json")]
    output: PathBuf,
    /// Print one JSON object per line per configuration instead of a table.
    #[arg(long)]
    json: bool,
}

/// One configuration's result.
#[derive(Debug, Serialize)]
struct Trial {
    block_size: usize,
    queue_depth: usize,
    intra_op_parallelism: usize,
    write_gbps: f64,
    read_gbps: f64,
    /// Harmonic mean of write and read GB/s: the rate of a write + read round trip.
    score_gbps: f64,
}

pub(crate) fn run(args: &TuneArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if args.loops == 0 {
        bail!("--loops must be at least 1");
    }
    let configs = sweep(args)?;
    if !args.json {
        header(args, configs.len(), out)?;
    }
    let progress = ProgressBar::new(configs.len() as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} configurations")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut best: Option<(f64, AioConfig)> = None;
    for config in configs {
        interrupt::check()?;
        let trial = measure(args, &config)?;
        progress.suspend(|| print_trial(&trial, args.json, out))?;
        progress.inc(1);
        if best
            .as_ref()
            .is_none_or(|(score, _)| trial.score_gbps > *score)
        {
            best = Some((trial.score_gbps, config));
        }
    }
    progress.finish_and_clear();
    let (score, config) = best.context("no configuration was measured")?;
    std::fs::write(&args.output, config.to_json() + "\n")
        .with_context(|| format!("writing {}", args.output.display()))?;
    if !args.json {
        writeln!(
            out,
            "best: block {} x depth {} x parallelism {} ({score:.2} GB/s); wrote {}",
            size::show(config.block_size),
            config.queue_depth,
            config.intra_op_parallelism,
            args.output.display()
        )?;
    }
    Ok(())
}

/// Every block size x queue depth x parallelism asked for, checked.
fn sweep(args: &TuneArgs) -> anyhow::Result<Vec<AioConfig>> {
    let mut configs = Vec::new();
    for &block_size in &args.block_sizes {
        for &queue_depth in &args.queue_depths {
            for &parallelism in &args.parallelism {
                let config = AioConfig::default()
                    .with_block_size(block_size)
                    .with_queue_depth(queue_depth)
                    .with_parallelism(parallelism);
                config.validate()?;
                configs.push(config);
            }
        }
    }
    if configs.is_empty() {
        bail!("nothing to sweep: give at least one block size, queue depth and parallelism");
    }
    Ok(configs)
}

fn header(args: &TuneArgs, configs: usize, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "tune: {configs} configurations, {} written and read per pass, {} pass(es) each, in {}",
        size::show(args.target.size),
        args.loops,
        args.target.folder.display()
    )?;
    writeln!(
        out,
        "{:>10} {:>6} {:>6} {:>12} {:>12} {:>12}",
        "block", "depth", "par", "write GB/s", "read GB/s", "score GB/s"
    )?;
    Ok(())
}

/// Write and read passes with one configuration.
fn measure(args: &TuneArgs, config: &AioConfig) -> anyhow::Result<Trial> {
    let run = IoRun::prepare(&args.target, config)?;
    let rows = run
        .measure(args.loops, true, true, |_| {})
        .with_context(|| format!("measuring {config:?}"))?;
    let gbps = |op: &str| rows.iter().find(|r| r.op == op).map_or(0.0, |r| r.gbps);
    let (write, read) = (gbps("write"), gbps("read"));
    Ok(Trial {
        block_size: config.block_size,
        queue_depth: config.queue_depth,
        intra_op_parallelism: config.intra_op_parallelism,
        write_gbps: write,
        read_gbps: read,
        score_gbps: 2.0 / (1.0 / write + 1.0 / read),
    })
}

fn print_trial(trial: &Trial, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(trial)?)?;
    } else {
        writeln!(
            out,
            "{:>10} {:>6} {:>6} {:>12.2} {:>12.2} {:>12.2}",
            size::show(trial.block_size),
            trial.queue_depth,
            trial.intra_op_parallelism,
            trial.write_gbps,
            trial.read_gbps,
            trial.score_gbps
        )?;
    }
    Ok(out.flush()?)
}
