//! `tensorswap bench`, the main job. Four parts, one per run unless
//! `--all`:
//!
//! - the swap workload (the default, [`swap_bench`]): tensors of mixed
//!   sizes swapped out of device memory to a file and back, verified, next
//!   to the engine alone making the same file requests, alternated;
//! - `--only device` ([`device_bench`]): host <-> device transfers next to
//!   a plain memcpy, size by size;
//! - `--only files`: file writes and reads through the I/O engine, like
//!   DeepSpeed's `ds_io`;
//! - `--only store` ([`store_bench`]): the persistent store's puts and
//!   gets next to the engine alone and fio, and its reopen time.
//!
//! An option that belongs to a part the run does not measure is an error
//! that names the part (`bench --write` runs the swap workload, which has no
//! use for it).

use std::io::Write;

use anyhow::bail;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tensorswap::AioConfig;

use super::device_bench::{self, DeviceArgs};
use super::io_bench::{per_folder, table_row, IoRun, IoTarget};
use super::size;
use super::store_bench::{self, StoreBenchArgs};
use super::swap_bench::{self, SwapArgs};

/// Options of `tensorswap bench`.
#[derive(Debug, Args)]
#[command(after_help = size::UNITS)]
pub(crate) struct BenchArgs {
    /// Backend to measure (swap and device parts): auto (the best this
    /// machine runs), cpu, wgpu or cuda.
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Print one JSON object per line per measurement instead of a table.
    #[arg(long)]
    json: bool,
    /// Run one part instead of the swap workload: swap (the default),
    /// device transfers next to memcpy, or file I/O through the engine.
    #[arg(long, value_enum)]
    only: Option<Part>,
    /// Run all four parts.
    #[arg(long, conflicts_with = "only")]
    all: bool,
    #[command(flatten)]
    swap: SwapArgs,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    files: FileArgs,
    #[command(flatten)]
    store: StoreBenchArgs,
}

/// The parts of the bench (`--only` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// Tensors swapped out of device memory to a file and back, next to the engine alone.
    Swap,
    /// Host <-> device transfers next to memcpy.
    Device,
    /// File writes and reads through the I/O engine.
    Files,
    /// The persistent store's puts and gets next to the engine alone and fio.
    Store,
}

impl Part {
    /// The `--only` value.
    fn name(self) -> &'static str {
        match self {
            Part::Swap => "swap",
            Part::Device => "device",
            Part::Files => "files",
            Part::Store => "store",
        }
    }

    /// How a message names the part.
    fn described(self) -> &'static str {
        match self {
            Part::Swap => "the swap workload (the default, `--only swap`)",
            Part::Device => "`--only device`",
            Part::Files => "`--only files`",
            Part::Store => "`--only store`",
        }
    }
}

/// The file and engine options (swap and files parts).
#[derive(Debug, Args)]
struct FileArgs {
    #[command(flatten)]
    target: IoTarget,
    /// Bytes per I/O piece (DeepSpeed `block_size`).
    #[arg(long, default_value = "1M", value_parser = size::parse, allow_hyphen_values = true)]
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
    /// Measure reads only (files part; the file is written once first, untimed).
    #[arg(long, conflicts_with = "write")]
    read: bool,
    /// Measure writes only (files part).
    #[arg(long)]
    write: bool,
    /// Passes over the tensors or the file; medians are reported.
    #[arg(long, default_value_t = 3)]
    loops: usize,
}

/// Options that only some parts take, by argument id, with those parts;
/// `--json`, `--only` and `--all` apply to every run.
const PART_OPTIONS: &[(&str, &[Part])] = &[
    ("backend", &[Part::Swap, Part::Device]),
    ("tensors", &[Part::Swap]),
    ("slab_size", &[Part::Swap]),
    ("slabs", &[Part::Swap]),
    ("gds", &[Part::Swap]),
    ("throttle", &[Part::Swap]),
    ("min_size", &[Part::Device]),
    ("max_size", &[Part::Device]),
    ("reps", &[Part::Device]),
    ("folder", &[Part::Swap, Part::Files, Part::Store]),
    ("size", &[Part::Swap, Part::Files]),
    ("engine", &[Part::Swap, Part::Files, Part::Store]),
    ("direct", &[Part::Swap, Part::Files]),
    ("no_checksums", &[Part::Swap, Part::Files]),
    ("block_size", &[Part::Swap, Part::Files, Part::Store]),
    ("queue_depth", &[Part::Swap, Part::Files, Part::Store]),
    ("io_parallel", &[Part::Swap, Part::Files, Part::Store]),
    ("single_submit", &[Part::Swap, Part::Files, Part::Store]),
    ("loops", &[Part::Swap, Part::Files, Part::Store]),
    ("io_size", &[Part::Files]),
    ("read", &[Part::Files]),
    ("write", &[Part::Files]),
    ("value_sizes", &[Part::Store]),
    ("store_bytes", &[Part::Store]),
    ("store_depth", &[Part::Store]),
    ("reopen_keys", &[Part::Store]),
];

/// Runs the parts `args` ask for; `given` tells which options were typed.
pub(crate) fn run(
    args: &BenchArgs,
    given: &ArgMatches,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let parts = match (args.all, args.only) {
        (true, _) => vec![Part::Swap, Part::Device, Part::Files, Part::Store],
        (false, only) => vec![only.unwrap_or(Part::Swap)],
    };
    check_options(&parts, given)?;
    for part in parts {
        match part {
            Part::Swap => {
                let files = &args.files;
                let config = aio_config(files)?;
                let device = device_bench::open_device(&args.backend)?;
                let common = swap_bench::Common {
                    target: &files.target,
                    aio: &config,
                    loops: files.loops,
                    json: args.json,
                };
                swap_bench::run(device, &args.swap, &common, out)?;
            }
            Part::Device => device_bench::run(&args.backend, &args.device, args.json, out)?,
            Part::Files => run_files(&args.files, args.json, out)?,
            Part::Store => {
                let files = &args.files;
                let config = aio_config(files)?;
                let setup = store_bench::Setup {
                    folder: &files.target.folders[0],
                    engine: files.target.engine,
                    aio: &config,
                    loops: files.loops,
                    json: args.json,
                };
                store_bench::run(&args.store, &setup, out)?;
            }
        }
    }
    Ok(())
}

/// Refuses an option typed for a part this run does not measure.
fn check_options(parts: &[Part], given: &ArgMatches) -> anyhow::Result<()> {
    for &(id, applies) in PART_OPTIONS {
        let typed = given.value_source(id) == Some(ValueSource::CommandLine);
        if typed && !parts.iter().any(|p| applies.contains(p)) {
            let wanted: Vec<&str> = applies.iter().map(|p| p.described()).collect();
            bail!(
                "`--{}` applies to {}, not to {}, which this run measures: add `--only {}` \
                 (or `--all`), or leave the option out",
                id.replace('_', "-"),
                wanted.join(" and "),
                parts[0].described(),
                applies[0].name(),
            );
        }
    }
    Ok(())
}

/// The `"aio"` settings the file options ask for.
fn aio_config(args: &FileArgs) -> anyhow::Result<AioConfig> {
    if args.loops == 0 {
        bail!("--loops must be at least 1");
    }
    let config = AioConfig::default()
        .with_block_size(args.block_size)
        .with_queue_depth(args.queue_depth)
        .with_parallelism(args.io_parallel)
        .with_single_submit(args.single_submit);
    config.validate()?;
    Ok(config)
}

/// The files part: write and read passes over one file, ds_io's table.
fn run_files(args: &FileArgs, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
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
            run.folder_names().join(", "),
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
    if !json && run.folder_names().len() > 1 {
        per_folder(rows.iter().map(|r| (r.op, r.folders.as_slice())), out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{Args as _, Command};

    use super::*;

    /// Every id the option check looks up is an option of the command, and
    /// every option but the shared ones is in the table.
    #[test]
    fn the_option_table_matches_the_command() {
        let command = BenchArgs::augment_args(Command::new("bench"));
        let ids: Vec<&str> = command
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .collect();
        for (id, _) in PART_OPTIONS {
            assert!(ids.contains(id), "{id} is not an option of bench");
        }
        for id in ids {
            let shared = ["json", "only", "all"].contains(&id);
            assert!(
                shared || PART_OPTIONS.iter().any(|(known, _)| *known == id),
                "--{id} is missing from PART_OPTIONS"
            );
        }
    }
}
