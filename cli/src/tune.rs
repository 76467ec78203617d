//! `tensorswap tune`: sweep block size x queue depth x parallelism x
//! single submission, like DeepSpeed's `ds_nvme_tune`, and write the best
//! `"aio"` section.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tensorswap::AioConfig;

use super::io_bench::{IoRun, IoTarget};
use super::{interrupt, size};

/// Options of `tensorswap tune`.
#[derive(Debug, Args)]
#[command(after_help = super::size::UNITS)]
pub(crate) struct TuneArgs {
    #[command(flatten)]
    target: IoTarget,
    /// Block sizes to try (comma-separated).
    #[arg(long, value_delimiter = ',', default_values = ["256K", "1M", "4M"], value_parser = size::parse, allow_hyphen_values = true)]
    block_sizes: Vec<usize>,
    /// Queue depths to try (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [4, 8, 16, 32])]
    queue_depths: Vec<usize>,
    /// Parallelism (workers per request) to try (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2])]
    parallelism: Vec<usize>,
    /// `single_submit` values to try (comma-separated): one `io_uring_enter`
    /// per piece (true) or a batch (false), which the block layer may merge.
    #[arg(long, value_delimiter = ',', default_values_t = [false, true])]
    single_submit: Vec<bool>,
    /// Write and read passes per configuration (medians are compared).
    #[arg(long, default_value_t = 1)]
    loops: usize,
    /// Where to write the best configuration as a DeepSpeed `{"aio": {...}}`
    /// JSON. Checked before the sweep; an existing file (or symlink) there is
    /// an error unless `--force` is given.
    #[arg(long, default_value = "aio.json")]
    output: PathBuf,
    /// Replace an existing `--output` (a symlink there is replaced, not followed).
    #[arg(long)]
    force: bool,
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
    single_submit: bool,
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
    let output = Output::reserve(&args.output, args.force)?;
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
    output.commit(&(config.to_json() + "\n"))?;
    if !args.json {
        writeln!(
            out,
            "best: block {} x depth {} x parallelism {} x single submit {} ({score:.2} GB/s); wrote {}",
            size::show(config.block_size),
            config.queue_depth,
            config.intra_op_parallelism,
            config.single_submit,
            args.output.display()
        )?;
    }
    Ok(())
}

/// Every block size x queue depth x parallelism x single submission asked
/// for, checked.
fn sweep(args: &TuneArgs) -> anyhow::Result<Vec<AioConfig>> {
    let mut configs = Vec::new();
    for &block_size in &args.block_sizes {
        for &queue_depth in &args.queue_depths {
            for &parallelism in &args.parallelism {
                for &single in &args.single_submit {
                    let config = AioConfig::default()
                        .with_block_size(block_size)
                        .with_queue_depth(queue_depth)
                        .with_parallelism(parallelism)
                        .with_single_submit(single);
                    config.validate()?;
                    configs.push(config);
                }
            }
        }
    }
    if configs.is_empty() {
        bail!("nothing to sweep: give at least one block size, queue depth, parallelism and single-submit value");
    }
    Ok(configs)
}

fn header(args: &TuneArgs, configs: usize, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "tune: {configs} configurations, {} written and read per pass, {} pass(es) each, in {}",
        size::show(args.target.size),
        args.loops,
        args.target.describe_folders()
    )?;
    writeln!(
        out,
        "{:>10} {:>6} {:>6} {:>7} {:>12} {:>12} {:>12}",
        "block", "depth", "par", "single", "write GB/s", "read GB/s", "score GB/s"
    )?;
    Ok(())
}

/// Write and read passes with one configuration.
fn measure(args: &TuneArgs, config: &AioConfig) -> anyhow::Result<Trial> {
    let run = IoRun::prepare(&args.target, config)?;
    let rows = run
        .measure(args.loops, true, true, |_| {})
        .with_context(|| {
            format!(
                "measuring block {} x depth {} x parallelism {} x single submit {}",
                size::show(config.block_size),
                config.queue_depth,
                config.intra_op_parallelism,
                config.single_submit
            )
        })?;
    let gbps = |op: &str| rows.iter().find(|r| r.op == op).map_or(0.0, |r| r.gbps);
    let (write, read) = (gbps("write"), gbps("read"));
    Ok(Trial {
        block_size: config.block_size,
        queue_depth: config.queue_depth,
        intra_op_parallelism: config.intra_op_parallelism,
        single_submit: config.single_submit,
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
            "{:>10} {:>6} {:>6} {:>7} {:>12.2} {:>12.2} {:>12.2}",
            size::show(trial.block_size),
            trial.queue_depth,
            trial.intra_op_parallelism,
            trial.single_submit,
            trial.write_gbps,
            trial.read_gbps,
            trial.score_gbps
        )?;
    }
    Ok(out.flush()?)
}

/// The output file, checked before the sweep: a new file next to it is
/// written at the end and then takes the output's name (without replacing
/// anything unless forced). Removed if the run fails.
struct Output {
    target: PathBuf,
    staging: PathBuf,
    force: bool,
}

impl Output {
    fn reserve(target: &Path, force: bool) -> anyhow::Result<Self> {
        Self::replaceable(target, force)?;
        let name = target
            .file_name()
            .with_context(|| format!("--output {} names no file", target.display()))?;
        let mut staging_name = std::ffi::OsString::from(".");
        staging_name.push(name);
        staging_name.push(format!(".tensorswap-{}", std::process::id()));
        let staging = target.with_file_name(staging_name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)
            .with_context(|| {
                format!("--output {}: cannot create a file there", target.display())
            })?;
        Ok(Self {
            target: target.to_path_buf(),
            staging,
            force,
        })
    }

    /// Fails unless the target is free, or `force` and it is a regular file
    /// or a symlink: a device, a FIFO, a socket or a folder is never
    /// replaced.
    fn replaceable(target: &Path, force: bool) -> anyhow::Result<()> {
        let Ok(found) = std::fs::symlink_metadata(target) else {
            return Ok(());
        };
        let kind = found.file_type();
        if !(kind.is_file() || kind.is_symlink()) {
            bail!(
                "--output {} is {}, not a regular file; --force replaces only a regular file or a symlink",
                target.display(),
                file_kind(&kind)
            );
        }
        if !force {
            bail!(
                "--output {} exists; pass --force to replace it",
                target.display()
            );
        }
        Ok(())
    }

    fn commit(self, text: &str) -> anyhow::Result<()> {
        std::fs::write(&self.staging, text)
            .with_context(|| format!("writing {}", self.staging.display()))?;
        // Again: something else may have taken the name during the sweep.
        Self::replaceable(&self.target, self.force)?;
        let placed = if self.force {
            // rename replaces a symlink at the target; it never follows it.
            std::fs::rename(&self.staging, &self.target)
        } else {
            // A hard link never replaces: whatever appeared meanwhile stays.
            std::fs::hard_link(&self.staging, &self.target)
        };
        placed.with_context(|| format!("writing {}", self.target.display()))?;
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        // After a rename the staging name is gone already.
        let _ = std::fs::remove_file(&self.staging);
    }
}

/// What a file that is not a regular one is, in words.
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a folder"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}
