//! `tensorswap bench --only store`: the persistent store's puts and gets
//! next to the engine alone making the same requests on a file in the same
//! folder, and next to fio (random writes and reads, same block size and
//! depth) where fio is installed; alternated, medians and ratios. Then the
//! time and memory to reopen a store of many keys.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{ensure, Context};
use clap::Args;
use tensorswap::store::{Durability, PersistentStore, PutOptions, StoreOptions};
use tensorswap::{
    AioConfig, AnyEngine, EngineKind, HostBuffer, IoEngineExt, NamedOptions, SwapFile,
};

use super::size;

/// Options of the store part.
#[derive(Debug, Args)]
pub(crate) struct StoreBenchArgs {
    /// Value sizes the store part measures, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4K,64K,256K,1M,16M,64M", value_parser = size::parse)]
    value_sizes: Vec<usize>,
    /// Bytes put and got per value size and loop (store part).
    #[arg(long, default_value = "256M", value_parser = size::parse)]
    store_bytes: usize,
    /// Puts or gets in flight (store part); fewer for large values, so that
    /// their buffers fit in --store-bytes.
    #[arg(long, default_value_t = 32)]
    store_depth: usize,
    /// Keys of the store whose reopening is timed (store part; 0: none).
    #[arg(long, default_value_t = 100_000)]
    reopen_keys: usize,
}

/// What the part runs on.
pub(crate) struct Setup<'a> {
    pub(crate) folder: &'a Path,
    pub(crate) engine: EngineKind,
    pub(crate) aio: &'a AioConfig,
    pub(crate) loops: usize,
    pub(crate) json: bool,
}

/// The three contenders, measured in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Engine,
    Store,
    Fio,
}

pub(crate) fn run(
    args: &StoreBenchArgs,
    setup: &Setup<'_>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    ensure!(args.store_depth > 0, "--store-depth must be at least 1");
    let scratch = tempfile::Builder::new()
        .prefix("tensorswap-store-bench-")
        .tempdir_in(setup.folder)
        .with_context(|| format!("creating a folder in {}", setup.folder.display()))?;
    let fio = fio_version();
    if !setup.json {
        writeln!(
            out,
            "\nstore in {}: {} engine, block {}, queue depth {}; puts durable at a flush ending each pass; medians of {} loop(s), contenders alternated, ratios the median of each loop's; GB/s = 10^9 bytes/s",
            setup.folder.display(),
            setup.engine,
            size::show(setup.aio.block_size),
            setup.aio.queue_depth,
            setup.loops
        )?;
        match &fio {
            Some(version) => writeln!(out, "fio: {version}, io_uring, O_DIRECT, random, the same block size and depth, end_fsync")?,
            None => writeln!(out, "fio: not installed; its column is left empty")?,
        }
        writeln!(
            out,
            "{:>8} {:>6} {:>5} {:>9} {:>9} {:>9} {:>8} {:>8}",
            "value", "op", "depth", "engine", "store", "fio", "st/eng", "st/fio"
        )?;
    }
    for &value in &args.value_sizes {
        ensure!(value > 0, "value sizes must be at least 1 byte");
        let count = (args.store_bytes / value).max(1);
        let depth = args
            .store_depth
            .min(count)
            .min((args.store_bytes / value).max(1));
        // (loop, contender, op, bytes per second)
        let mut rates: Vec<(usize, Who, &str, f64)> = Vec::new();
        let order = [Who::Engine, Who::Store, Who::Fio];
        for round in 0..setup.loops {
            for i in 0..order.len() {
                let who = order[(round + i) % order.len()];
                let (write, read) = match who {
                    Who::Engine => engine_pass(scratch.path(), setup, value, count, depth)?,
                    Who::Store => store_pass(scratch.path(), setup, value, count, depth)?,
                    Who::Fio if fio.is_some() => fio_pass(scratch.path(), value, count, depth)?,
                    Who::Fio => continue,
                };
                rates.push((round, who, "write", write));
                rates.push((round, who, "read", read));
            }
        }
        for op in ["write", "read"] {
            let rate = |round: usize, who: Who| {
                rates
                    .iter()
                    .find(|r| r.0 == round && r.1 == who && r.2 == op)
                    .map(|r| r.3)
            };
            let median_of = |who: Who| {
                let mut samples: Vec<f64> = (0..setup.loops)
                    .filter_map(|round| rate(round, who))
                    .collect();
                median(&mut samples)
            };
            let (engine, store, fio) = (
                median_of(Who::Engine),
                median_of(Who::Store),
                median_of(Who::Fio),
            );
            // The median of each loop's ratio (the contenders of a loop ran
            // back to back).
            let ratio = |base: Who| {
                let mut ratios: Vec<f64> = (0..setup.loops)
                    .filter_map(|round| Some(rate(round, Who::Store)? / rate(round, base)?))
                    .collect();
                median(&mut ratios)
            };
            let shown = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.2}"));
            let gb = |r: Option<f64>| r.map_or("-".into(), |r| format!("{:.3}", r / 1e9));
            if setup.json {
                let row = serde_json::json!({
                    "part": "store", "value_bytes": value, "op": op, "depth": depth,
                    "engine_bytes_per_s": engine, "store_bytes_per_s": store, "fio_bytes_per_s": fio,
                    "store_to_engine": ratio(Who::Engine), "store_to_fio": ratio(Who::Fio),
                });
                writeln!(out, "{row}")?;
            } else {
                writeln!(
                    out,
                    "{:>8} {:>6} {:>5} {:>9} {:>9} {:>9} {:>8} {:>8}",
                    size::show(value),
                    op,
                    depth,
                    gb(engine),
                    gb(store),
                    gb(fio),
                    shown(ratio(Who::Engine)),
                    shown(ratio(Who::Fio))
                )?;
            }
            out.flush()?;
        }
    }
    if args.reopen_keys > 0 {
        reopen(scratch.path(), setup, args.reopen_keys, out)?;
    }
    Ok(())
}

fn median(samples: &mut [f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    Some(samples[samples.len() / 2])
}

/// A buffer of `len` bytes, page-aligned, with bytes that differ per buffer.
fn stamped(len: usize, seed: usize) -> anyhow::Result<HostBuffer> {
    let mut buf = HostBuffer::new(len)?;
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i / 4096 + seed) as u8;
    }
    Ok(buf)
}

/// `depth` stamped buffers of `value` bytes (reads overwrite them).
fn stamped_buffers(value: usize, depth: usize) -> anyhow::Result<Vec<HostBuffer>> {
    (0..depth).map(|i| stamped(value, i)).collect()
}

/// Runs `count` requests with at most `depth` in flight, each taking and
/// giving back one of `depth` buffers; the seconds taken.
fn pipelined<T>(
    count: usize,
    buffers: Vec<HostBuffer>,
    mut start: impl FnMut(usize, HostBuffer) -> anyhow::Result<T>,
    mut finish: impl FnMut(T) -> anyhow::Result<HostBuffer>,
) -> anyhow::Result<f64> {
    let mut free = buffers;
    let mut flying = VecDeque::new();
    let began = Instant::now();
    for i in 0..count {
        let buf = match free.pop() {
            Some(buf) => buf,
            None => finish(flying.pop_front().context("a request is in flight")?)?,
        };
        flying.push_back(start(i, buf)?);
    }
    for ticket in flying {
        finish(ticket)?;
    }
    Ok(began.elapsed().as_secs_f64())
}

/// The engine alone: the same requests on a file of its own (kept from
/// loop to loop, as the store keeps its own), synced at the end of the
/// write pass. (write, read) bytes per second.
fn engine_pass(
    dir: &Path,
    setup: &Setup<'_>,
    value: usize,
    count: usize,
    depth: usize,
) -> anyhow::Result<(f64, f64)> {
    let engine = AnyEngine::new(setup.engine, setup.aio)?;
    let path = dir.join("engine.dat");
    let file = SwapFile::open_named(&path, NamedOptions::read_write().create(true))?;
    let stride = value.next_multiple_of(4096) as u64;
    let buffers = stamped_buffers(value, depth)?;
    let mut seconds = pipelined(
        count,
        buffers,
        |i, buf| Ok(engine.write(&file, i as u64 * stride, buf)?),
        |ticket| Ok(ticket.wait()?.buf),
    )?;
    let synced = Instant::now();
    file.descriptor(false)
        .try_clone_to_owned()
        .map(std::fs::File::from)?
        .sync_data()?;
    seconds += synced.elapsed().as_secs_f64();
    let buffers = stamped_buffers(value, depth)?;
    let read = pipelined(
        count,
        buffers,
        |i, buf| Ok(engine.read(&file, i as u64 * stride, buf)?),
        |ticket| Ok(ticket.wait()?.buf),
    )?;
    let bytes = (count * value) as f64;
    Ok((bytes / seconds, bytes / read))
}

/// The store: `count` puts (replacing the last loop's) made durable by one
/// flush, then `count` gets.
fn store_pass(
    dir: &Path,
    setup: &Setup<'_>,
    value: usize,
    count: usize,
    depth: usize,
) -> anyhow::Result<(f64, f64)> {
    let engine = AnyEngine::new(setup.engine, setup.aio)?;
    // Room for this loop's values and the last loop's, freed at the flush.
    let capacity = 2 * (count * value.next_multiple_of(4096)) as u64 + (16 << 20);
    let options = StoreOptions::new(capacity).durability(Durability::Flush);
    let store = PersistentStore::open_with_engine(dir.join("store"), options, engine)?;
    let buffers = stamped_buffers(value, depth)?;
    let put = PutOptions::new();
    let mut seconds = pipelined(
        count,
        buffers,
        |i, buf| {
            store
                .put(&(i as u64).to_be_bytes(), buf, &put)
                .map_err(|r| r.error.into())
        },
        |ticket| ticket.wait().map_err(|r| r.error.into()),
    )?;
    let flushed = Instant::now();
    store.flush().wait()?;
    seconds += flushed.elapsed().as_secs_f64();
    let buffers = stamped_buffers(value, depth)?;
    let read = pipelined(
        count,
        buffers,
        |i, buf| {
            store
                .get(&(i as u64).to_be_bytes(), buf)
                .map_err(|r| r.error.into())
        },
        |ticket| Ok(ticket.wait().map_err(|r| r.error)?.buf),
    )?;
    store.close()?;
    let bytes = (count * value) as f64;
    Ok((bytes / seconds, bytes / read))
}

fn fio_version() -> Option<String> {
    let out = Command::new("fio").arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// fio's random writes (synced at the end) then random reads of the same
/// file, `value`-byte blocks, `depth` in flight.
fn fio_pass(dir: &Path, value: usize, count: usize, depth: usize) -> anyhow::Result<(f64, f64)> {
    let file: PathBuf = dir.join("fio.dat");
    let mut rates = [0.0; 2];
    for (slot, rw, key) in [(0, "randwrite", "write"), (1, "randread", "read")] {
        let out = Command::new("fio")
            .arg("--name=store-bench")
            .arg(format!("--filename={}", file.display()))
            .arg(format!("--size={}", count * value))
            .arg(format!("--bs={value}"))
            .arg(format!("--iodepth={depth}"))
            .arg(format!("--rw={rw}"))
            .args([
                "--ioengine=io_uring",
                "--direct=1",
                "--end_fsync=1",
                "--output-format=json",
            ])
            .output()
            .context("running fio")?;
        ensure!(
            out.status.success(),
            "fio failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("reading fio's JSON")?;
        let bw = report["jobs"][0][key]["bw_bytes"]
            .as_f64()
            .context("fio's report has no bw_bytes")?;
        rates[slot] = bw;
    }
    std::fs::remove_file(&file)?;
    Ok((rates[0], rates[1]))
}

/// Heap bytes in use (glibc's count: small blocks and mapped ones).
fn heap_in_use() -> Option<u64> {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    Some((info.uordblks + info.hblkhd) as u64)
}

/// Fills a store with `keys` entries (32-byte keys, as content hashes; no
/// value bytes, 64 bytes of metadata), closes it, and times its reopening
/// and the memory the reopened store holds.
fn reopen(dir: &Path, setup: &Setup<'_>, keys: usize, out: &mut impl Write) -> anyhow::Result<()> {
    let folder = dir.join("reopen");
    let options = StoreOptions::new(1 << 30).durability(Durability::Flush);
    let store = PersistentStore::open(&folder, options.clone().engine(setup.engine))?;
    let put = PutOptions::new().meta(vec![7u8; 64]);
    let filled = Instant::now();
    let mut flying = VecDeque::new();
    for i in 0..keys as u64 {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
        flying.push_back(
            store
                .put(&key, Vec::<u8>::new(), &put)
                .map_err(|r| r.error)?,
        );
        if flying.len() >= 1024 {
            flying
                .pop_front()
                .context("in flight")?
                .wait()
                .map_err(|r| r.error)?;
        }
    }
    for ticket in flying {
        ticket.wait().map_err(|r| r.error)?;
    }
    store.close()?;
    let fill = filled.elapsed();
    let before = heap_in_use();
    let opened = Instant::now();
    let store = PersistentStore::open(&folder, StoreOptions::existing().engine(setup.engine))?;
    let open = opened.elapsed();
    let per_key = match (before, heap_in_use()) {
        (Some(a), Some(b)) => format!("{:.0}", b.saturating_sub(a) as f64 / keys as f64),
        _ => "-".into(),
    };
    ensure!(
        store.stats().keys == keys as u64,
        "the reopened store has {} keys, not {keys}",
        store.stats().keys
    );
    let index = std::fs::metadata(folder.join("index.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    drop(store);
    if setup.json {
        let row = serde_json::json!({
            "part": "store", "reopen_keys": keys, "reopen_seconds": open.as_secs_f64(),
            "fill_seconds": fill.as_secs_f64(), "index_bytes": index, "heap_bytes_per_key": per_key,
        });
        writeln!(out, "{row}")?;
    } else {
        writeln!(
            out,
            "reopen with {keys} keys: {:.3} s ({per_key} bytes of heap per key; index {}; filled in {:.1} s, {:.0} puts/s)",
            open.as_secs_f64(),
            size::show(index as usize),
            fill.as_secs_f64(),
            keys as f64 / fill.as_secs_f64().max(f64::EPSILON)
        )?;
    }
    Ok(())
}
