//! File I/O throughput of an engine configuration, like DeepSpeed's `ds_io`:
//! the measuring core of `tensorswap bench` (files) and `tensorswap tune`.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::{Args, ValueEnum};
use serde::Serialize;
use tensorswap::storage::{StripedFile, DEFAULT_STRIPE_UNIT};
use tensorswap::{
    AioConfig, AnyEngine, DirOptions, DirectIo, EngineKind, IoEngine, IoOp, PinnedPool, SwapDir,
};

use super::cpu::CpuClock;
use super::{interrupt, size};

/// Where and how much file I/O to measure (shared by `bench` and `tune`).
#[derive(Debug, Clone, Args)]
pub(crate) struct IoTarget {
    /// Folder to put the test file in (a private subfolder is created and
    /// removed). Give it several times, one per drive, to stripe over them
    /// (1 MiB a folder at a time, one engine each); the report gives each
    /// folder's rate.
    #[arg(id = "folder", long = "folder", default_values_os_t = [std::env::temp_dir()])]
    pub(crate) folders: Vec<PathBuf>,
    /// Bytes written and read per loop.
    #[arg(long, default_value = "1G", value_parser = size::parse, allow_hyphen_values = true)]
    pub(crate) size: usize,
    /// Bytes per request (each with its own ticket; default: one request of --size).
    #[arg(long, value_parser = size::parse, allow_hyphen_values = true)]
    pub(crate) io_size: Option<usize>,
    /// I/O engine: auto, uring or threads.
    #[arg(long, default_value = "auto", value_parser = parse_engine)]
    pub(crate) engine: EngineKind,
    /// Direct I/O (O_DIRECT): auto (where supported), on (or fail), off.
    #[arg(long, value_enum, default_value_t = DirectArg::Auto)]
    pub(crate) direct: DirectArg,
    /// Turn off the CRC32C every 4 KiB block gets at write and is checked
    /// against at read (on by default).
    #[arg(long)]
    pub(crate) no_checksums: bool,
}

/// `--direct` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DirectArg {
    Auto,
    On,
    Off,
}

/// The direct-I/O policy a `--direct` value asks for.
pub(crate) fn direct_policy(direct: DirectArg) -> DirectIo {
    match direct {
        DirectArg::Auto => DirectIo::Auto,
        DirectArg::On => DirectIo::Required,
        DirectArg::Off => DirectIo::Off,
    }
}

fn parse_engine(text: &str) -> Result<EngineKind, String> {
    text.parse().map_err(|e: tensorswap::Error| e.to_string())
}

/// One measured operation of one configuration.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IoMeasurement {
    pub(crate) op: &'static str,
    pub(crate) engine: &'static str,
    pub(crate) bytes: usize,
    pub(crate) io_size: usize,
    pub(crate) requests: usize,
    pub(crate) block_size: usize,
    pub(crate) queue_depth: usize,
    pub(crate) parallelism: usize,
    pub(crate) direct: bool,
    pub(crate) registered: bool,
    pub(crate) loops: usize,
    /// Median seconds per loop.
    pub(crate) seconds: f64,
    /// bytes / seconds / 10^9.
    pub(crate) gbps: f64,
    /// bytes / seconds / 2^30.
    pub(crate) gibps: f64,
    /// Per-request latency percentiles over all loops, microseconds.
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    /// CPU time of this process per second of I/O, in percent of one core.
    pub(crate) cpu_pct: f64,
    /// Each folder's share: its bytes over the median seconds, in stripe order.
    pub(crate) folders: Vec<FolderRate>,
}

/// One folder's part of a measured operation.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FolderRate {
    pub(crate) folder: String,
    pub(crate) bytes: u64,
    pub(crate) gbps: f64,
}

impl FolderRate {
    /// Each of `folders` with the bytes it moved, over `seconds`.
    pub(crate) fn each(folders: &[String], moved: &[u64], seconds: f64) -> Vec<Self> {
        folders
            .iter()
            .zip(moved)
            .map(|(folder, &bytes)| Self {
                folder: folder.clone(),
                bytes,
                gbps: bytes as f64 / seconds / 1e9,
            })
            .collect()
    }
}

/// Each op's per-folder rates, one line per op.
pub(crate) fn per_folder<'a>(
    rows: impl Iterator<Item = (&'a str, &'a [FolderRate])>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "per folder, GB/s (its bytes over the op's median time):"
    )?;
    for (op, folders) in rows {
        let each: Vec<String> = folders
            .iter()
            .map(|f| format!("{} {:.2}", f.folder, f.gbps))
            .collect();
        writeln!(out, "{op:>13}: {}", each.join(", "))?;
    }
    Ok(())
}

impl IoTarget {
    /// The folders, as a message names them.
    pub(crate) fn describe_folders(&self) -> String {
        let names: Vec<String> = self
            .folders
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        names.join(", ")
    }
}

/// A prepared run: folders, engines (one per folder) and pinned slabs for
/// one configuration.
pub(crate) struct IoRun {
    dirs: Vec<SwapDir>,
    engines: Vec<AnyEngine>,
    pool: PinnedPool,
    registered: bool,
    size: usize,
    io_size: usize,
    window: usize,
    stamp: Vec<u8>,
}

impl IoRun {
    pub(crate) fn prepare(target: &IoTarget, config: &AioConfig) -> anyhow::Result<Self> {
        ensure!(target.size > 0, "--size must be at least 1 byte");
        let io_size = target.io_size.unwrap_or(target.size).min(target.size);
        ensure!(io_size > 0, "--io-size must be at least 1 byte");
        let policy = direct_policy(target.direct);
        let options = DirOptions::default()
            .direct_io(policy)
            .checksums(!target.no_checksums);
        SwapDir::check_distinct(&target.folders)?;
        let mut dirs = Vec::with_capacity(target.folders.len());
        let mut engines = Vec::with_capacity(target.folders.len());
        for folder in &target.folders {
            let dir = SwapDir::create_with(folder, options)
                .with_context(|| format!("creating a swap folder in {}", folder.display()))?;
            dir.check_block_size(config.block_size);
            dirs.push(dir);
            engines.push(AnyEngine::new(target.engine, config)?);
        }
        let requests = target.size.div_ceil(io_size);
        let window = requests.min(config.queue_depth * config.intra_op_parallelism * dirs.len());
        let alignment = dirs.iter().map(SwapDir::alignment).max().unwrap_or(1);
        // The window's slabs, and the stamp the slabs are filled from.
        super::budget::check(
            window
                .saturating_mul(io_size.next_multiple_of(alignment))
                .saturating_add(io_size),
            &format!(
                "{window} request buffers of {}",
                super::size::show_approx(io_size)
            ),
            "lower --size, or --io-size (each request in flight has a buffer of its own)",
        )?;
        let pool = PinnedPool::builder()
            .slab_size(io_size)
            .slabs(window)
            .alignment(alignment)
            .build()?;
        let registered = engines.iter().all(|e| pool.register_with(e));
        let stamp = stamp_pattern(io_size);
        let slabs: Vec<_> = (0..window).map(|_| pool.lease()).collect();
        // A slab may be longer than one request (padded to the alignment).
        for mut slab in slabs {
            let len = slab.len().min(stamp.len());
            slab[..len].copy_from_slice(&stamp[..len]);
        }
        Ok(Self {
            dirs,
            engines,
            pool,
            registered,
            size: target.size,
            io_size,
            window,
            stamp,
        })
    }

    /// The swap folders, in stripe order.
    pub(crate) fn folder_names(&self) -> Vec<String> {
        self.dirs
            .iter()
            .map(|d| d.path().display().to_string())
            .collect()
    }

    pub(crate) fn describe(&self) -> String {
        let c = self.engines[0].config();
        let dio = match self.dirs[0].direct_io() {
            Some(d) => format!(
                "direct I/O (alignment: memory {}, offset {}, from {})",
                d.memory_align, d.offset_align, d.source
            ),
            None => "buffered I/O".into(),
        };
        format!(
            "{}{} engine, block {}, queue depth {}, parallelism {}, {}, buffers {}registered; {} in {} request(s) of {}",
            match self.dirs.len() {
                1 => String::new(),
                n => format!("striped over {n} folders ({} each), one ", size::show(DEFAULT_STRIPE_UNIT as usize)),
            },
            self.engines[0].name(),
            size::show(c.block_size),
            c.queue_depth,
            c.intra_op_parallelism,
            dio,
            if self.registered { "" } else { "not " },
            size::show(self.size),
            self.size.div_ceil(self.io_size),
            size::show(self.io_size),
        )
    }

    /// Runs `loops` rounds (write then read in each, as selected) on a fresh
    /// preallocated file, then checks every request's bytes once.
    pub(crate) fn measure(
        &self,
        loops: usize,
        write: bool,
        read: bool,
        mut tick: impl FnMut(usize),
    ) -> anyhow::Result<Vec<IoMeasurement>> {
        let files = self
            .dirs
            .iter()
            .map(SwapDir::create_file)
            .collect::<Result<Vec<_>, _>>()?;
        for file in &files {
            file.preallocate(self.size.div_ceil(files.len()) as u64)?;
        }
        let file = StripedFile::new(files, DEFAULT_STRIPE_UNIT)?;
        if !write {
            self.pass(&file, IoOp::Write, &mut |_| {})?;
        }
        let mut samples = [Vec::new(), Vec::new()];
        for _ in 0..loops {
            for (k, op) in [(0, IoOp::Write), (1, IoOp::Read)] {
                if [write, read][k] {
                    samples[k].push(self.pass(&file, op, &mut tick)?);
                }
            }
        }
        self.verify(&file)?;
        let [writes, reads] = samples;
        Ok([("write", writes), ("read", reads)]
            .into_iter()
            .filter(|(_, passes)| !passes.is_empty())
            .map(|(op, passes)| self.summarise(op, passes))
            .collect())
    }

    /// One pass over the file: every request submitted with at most
    /// `window` in flight, the oldest waited first.
    fn pass(
        &self,
        file: &StripedFile,
        op: IoOp,
        tick: &mut dyn FnMut(usize),
    ) -> anyhow::Result<Pass> {
        let requests = self.size.div_ceil(self.io_size);
        let mut latencies = Vec::with_capacity(requests);
        let mut in_flight = VecDeque::with_capacity(self.window);
        let before = file.bytes_moved();
        let cpu = CpuClock::start();
        let start = Instant::now();
        for i in 0..requests {
            interrupt::check()?;
            if in_flight.len() == self.window {
                // The oldest, then every other one finished meanwhile: the
                // window refills with all that completed, as fio reaps.
                let (ticket, len): (tensorswap::storage::StripedTicket<_, _>, usize) =
                    in_flight.pop_front().context("window empty")?;
                latencies.push(ticket.wait()?.latency);
                tick(len);
                let mut k = 0;
                while k < in_flight.len() {
                    if in_flight[k].0.is_complete() {
                        let (ticket, len) = in_flight.remove(k).context("window entry")?;
                        latencies.push(ticket.wait()?.latency);
                        tick(len);
                    } else {
                        k += 1;
                    }
                }
            }
            let offset = i * self.io_size;
            let len = self.io_size.min(self.size - offset);
            let mut slab = self.pool.lease();
            slab.set_len(len)?;
            let ticket = match op {
                IoOp::Write => {
                    stamp(&mut slab, i);
                    file.write(&self.engines, offset as u64, slab)?
                }
                _ => file.read(&self.engines, offset as u64, slab)?,
            };
            in_flight.push_back((ticket, len));
        }
        for (ticket, len) in in_flight {
            latencies.push(ticket.wait()?.latency);
            tick(len);
        }
        let seconds = start.elapsed();
        let moved = file
            .bytes_moved()
            .iter()
            .zip(before)
            .map(|(n, b)| n - b)
            .collect();
        Ok(Pass {
            seconds,
            cpu: cpu.seconds(),
            latencies,
            moved,
        })
    }

    /// Reads every request back and checks its stamp and pattern.
    fn verify(&self, file: &StripedFile) -> anyhow::Result<()> {
        for i in 0..self.size.div_ceil(self.io_size) {
            interrupt::check()?;
            let offset = i * self.io_size;
            let len = self.io_size.min(self.size - offset);
            let mut slab = self.pool.lease();
            slab.set_len(len)?;
            let back = file.read(&self.engines, offset as u64, slab)?.wait()?.buf;
            let mut want = self.stamp[..len].to_vec();
            stamp(&mut want, i);
            if back[..] != want[..] {
                bail!(
                    "verification failed: request {i} ({len} bytes at offset {offset}) read back different bytes"
                );
            }
        }
        Ok(())
    }

    fn summarise(&self, op: &'static str, passes: Vec<Pass>) -> IoMeasurement {
        let c = self.engines[0].config();
        let mut seconds: Vec<f64> = passes.iter().map(|p| p.seconds.as_secs_f64()).collect();
        let mut latencies: Vec<Duration> =
            passes.iter().flat_map(|p| p.latencies.clone()).collect();
        let cpu: f64 = passes.iter().map(|p| p.cpu).sum();
        let busy: f64 = seconds.iter().sum();
        let median = percentile(&mut seconds, 0.5);
        latencies.sort_unstable();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
        };
        IoMeasurement {
            op,
            engine: self.engines[0].name(),
            bytes: self.size,
            io_size: self.io_size,
            requests: self.size.div_ceil(self.io_size),
            block_size: c.block_size,
            queue_depth: c.queue_depth,
            parallelism: c.intra_op_parallelism,
            direct: self.dirs.iter().all(|d| d.direct_io().is_some()),
            registered: self.registered,
            loops: passes.len(),
            seconds: median,
            gbps: self.size as f64 / median / 1e9,
            gibps: self.size as f64 / median / (1u64 << 30) as f64,
            p50_us: at(0.5),
            p99_us: at(0.99),
            cpu_pct: 100.0 * cpu / busy,
            folders: FolderRate::each(&self.folder_names(), &passes[0].moved, median),
        }
    }
}

struct Pass {
    seconds: Duration,
    cpu: f64,
    latencies: Vec<Duration>,
    /// Bytes each folder moved.
    moved: Vec<u64>,
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    values
        .get(((values.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// The bytes every request carries (its index is stamped over the first 8).
fn stamp_pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(131) >> 2) as u8).collect()
}

fn stamp(bytes: &mut [u8], request: usize) {
    let tag = (request as u64).to_le_bytes();
    let n = bytes.len().min(8);
    bytes[..n].copy_from_slice(&tag[..n]);
}

/// Formats a table row (or the header when `m` is None).
pub(crate) fn table_row(m: Option<&IoMeasurement>) -> String {
    match m {
        None => format!(
            "{:>6} {:>8} {:>8} {:>10} {:>10} {:>6}",
            "op", "GB/s", "GiB/s", "p50 us", "p99 us", "CPU%"
        ),
        Some(m) => format!(
            "{:>6} {:>8.2} {:>8.2} {:>10.0} {:>10.0} {:>6.0}",
            m.op, m.gbps, m.gibps, m.p50_us, m.p99_us, m.cpu_pct
        ),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        /// Any text is one of the engines (and prints back as itself) or an
        /// error listing the known ones; never a panic.
        #[test]
        fn any_text_is_an_engine_or_names_the_known_ones(text in any::<String>()) {
            match parse_engine(&text) {
                Ok(kind) => prop_assert_eq!(parse_engine(&kind.to_string()).ok(), Some(kind)),
                Err(message) => prop_assert!(message.contains("known: auto, uring, threads"), "{}", message),
            }
        }
    }

    #[test]
    fn the_engine_names_parse() {
        for (text, kind) in [
            ("auto", EngineKind::Auto),
            ("uring", EngineKind::Uring),
            ("io_uring", EngineKind::Uring),
            ("threads", EngineKind::Threads),
        ] {
            assert_eq!(parse_engine(text), Ok(kind));
        }
    }
}
