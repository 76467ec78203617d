//! What both crash campaigns share: the child's workload and what it
//! reports, the model of what may survive, and the check after a crash.

// Each campaign uses most of it, not all; `pub` reaches both campaigns.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tensorswap_core::IoEngine;
use tensorswap_store::{Durability, PersistentStore, PutOptions, StoreOptions};

/// The variable that makes the test binary the child.
pub const CHILD_VAR: &str = "TENSORSWAP_CRASH_CHILD";
pub const KEYS: u64 = 48;
const MAX_LEN: u64 = 300 << 10;

/// A value that says whose it is: key, version and length, then bytes that
/// follow from them.
pub fn value(key: u64, version: u64, len: usize) -> Vec<u8> {
    let len = len.max(24);
    let mut out = Vec::with_capacity(len);
    for word in [key, version, len as u64] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    let mut rng = Rng((key << 40 ^ version).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The store's options: large enough never to evict, or small enough to.
pub fn options(evicting: bool) -> StoreOptions {
    let capacity = if evicting { 2 << 20 } else { 256 << 20 };
    StoreOptions::new(capacity).durability(Durability::Sync)
}

pub fn key_bytes(key: u64) -> [u8; 8] {
    key.to_be_bytes()
}

/// What the parent tells a child: where, which seed, the first version,
/// whether the store evicts, and a campaign's own field.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    pub folder: String,
    pub seed: u64,
    pub base: u64,
    pub evicting: bool,
    pub extra: u64,
}

impl ChildSpec {
    /// The child of crash point `round` of a campaign with `seed`.
    pub fn for_round(folder: &Path, seed: u64, round: u64, evicting: bool, extra: u64) -> Self {
        Self {
            folder: folder.display().to_string(),
            seed: seed ^ round.wrapping_mul(0x51_7C_C1_B7),
            base: round * 10_000_000,
            evicting,
            extra,
        }
    }

    fn encode(&self) -> String {
        format!(
            "{},{},{},{},{}",
            self.folder,
            self.seed,
            self.base,
            u8::from(self.evicting),
            self.extra
        )
    }

    pub fn decode(spec: &str) -> anyhow::Result<Self> {
        let mut parts = spec.split(',');
        let mut field = || parts.next().unwrap_or_default().to_string();
        Ok(Self {
            folder: field(),
            seed: field().parse()?,
            base: field().parse()?,
            evicting: field() == "1",
            extra: field().parse()?,
        })
    }
}

/// The workload: batches of requests on distinct keys, reported as
/// `B put KEY VERSION DURABLE` / `B remove KEY` when started,
/// `A put KEY VERSION` / `A remove KEY` when their tickets complete, and
/// `A flush` after a flush. Runs until the process ends.
pub fn workload<E: IoEngine + 'static>(
    store: &PersistentStore<E>,
    spec: &ChildSpec,
) -> anyhow::Result<()> {
    let (seed, base) = (spec.seed, spec.base);
    let mut rng = Rng(seed | 1);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut version = base;
    loop {
        let mut keys: Vec<u64> = Vec::new();
        let width = 1 + rng.below(8);
        while (keys.len() as u64) < width {
            let key = rng.below(KEYS);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        enum Started {
            Put(u64, u64, tensorswap_store::PutTicket<Vec<u8>>),
            Remove(u64, tensorswap_store::CommitTicket<bool>),
        }
        let mut started = Vec::new();
        for key in keys {
            if rng.below(6) == 0 {
                writeln!(out, "B remove {key}")?;
                out.flush()?;
                started.push(Started::Remove(key, store.remove(&key_bytes(key))));
            } else {
                version += 1;
                let len = rng.below(MAX_LEN + 1) as usize;
                let (durability, durable) = match rng.below(3) {
                    0 => (Durability::Sync, 1),
                    1 => (Durability::Flush, 0),
                    _ => (Durability::Within(Duration::from_millis(5)), 0),
                };
                writeln!(out, "B put {key} {version} {durable}")?;
                out.flush()?;
                let put = PutOptions::new().durability(durability);
                let ticket = store
                    .put(&key_bytes(key), value(key, version, len), &put)
                    .map_err(|r| r.error)?;
                started.push(Started::Put(key, version, ticket));
            }
        }
        for request in started {
            match request {
                Started::Put(key, version, ticket) => {
                    ticket.wait().map_err(|r| r.error)?;
                    writeln!(out, "A put {key} {version}")?;
                }
                Started::Remove(key, ticket) => {
                    ticket.wait()?;
                    writeln!(out, "A remove {key}")?;
                }
            }
            out.flush()?;
        }
        if rng.below(8) == 0 {
            store.flush().wait()?;
            writeln!(out, "A flush")?;
            out.flush()?;
        }
    }
}

/// Runs the child with `spec` and ends it with `stop` (a kill, or a wait
/// for its own end); its report's lines.
pub fn run_child(
    spec: &ChildSpec,
    stop: impl FnOnce(&mut Child) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<String>> {
    let mut child = Command::new(std::env::current_exe()?)
        .env(CHILD_VAR, spec.encode())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let stopped = stop(&mut child);
    if stopped.is_err() {
        let _ = child.kill();
    }
    child.wait()?;
    let lines = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader panicked"))?;
    stopped?;
    anyhow::ensure!(
        lines.first().map(String::as_str) == Some("ready"),
        "the child never opened the store"
    );
    Ok(lines)
}

/// Waits `for_` while the child runs; an early exit is an error.
pub fn let_run(child: &mut Child, for_: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < for_ {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the child exited on its own ({status})");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// What a key may hold: a version, or nothing.
pub type State = Option<u64>;

/// One key's requests in a round, in order.
#[derive(Default)]
pub struct History {
    /// Each request's resulting state, whether it was acknowledged, and
    /// whether it was durable when acknowledged.
    ops: Vec<(State, bool, bool)>,
    /// Index of the last op known durable (a durable put or any remove
    /// acknowledged, or any op acknowledged before an acknowledged flush).
    durable: Option<usize>,
}

pub struct Round {
    histories: HashMap<u64, History>,
    durable_acks: u64,
}

pub fn parse(lines: &[String]) -> Round {
    let mut histories: HashMap<u64, History> = HashMap::new();
    let mut durable_acks = 0;
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
        match (words.first().copied(), words.get(1).copied()) {
            (Some("B"), Some("put")) => {
                let (Some(key), Some(version), Some(durable)) = (num(2), num(3), num(4)) else {
                    continue;
                };
                histories
                    .entry(key)
                    .or_default()
                    .ops
                    .push((Some(version), false, durable == 1));
            }
            (Some("B"), Some("remove")) => {
                let Some(key) = num(2) else { continue };
                // Removes have the store's durability: Sync.
                histories
                    .entry(key)
                    .or_default()
                    .ops
                    .push((None, false, true));
            }
            (Some("A"), Some("put" | "remove")) => {
                let Some(key) = num(2) else { continue };
                let history = histories.entry(key).or_default();
                let last = history.ops.len() - 1;
                history.ops[last].1 = true;
                if history.ops[last].2 {
                    history.durable = Some(last);
                    durable_acks += 1;
                }
            }
            (Some("A"), Some("flush")) => {
                for history in histories.values_mut() {
                    if let Some(last) = history.ops.iter().rposition(|op| op.1) {
                        history.durable = Some(history.durable.map_or(last, |d| d.max(last)));
                    }
                }
            }
            _ => {}
        }
    }
    Round {
        histories,
        durable_acks,
    }
}

/// The states `key` may be found in after the crash.
pub fn allowed(initial: State, history: Option<&History>, evicting: bool) -> BTreeSet<State> {
    let mut states = BTreeSet::new();
    if evicting {
        states.insert(None);
    }
    let Some(history) = history else {
        states.insert(initial);
        return states;
    };
    if history.durable.is_none() {
        states.insert(initial);
    }
    let from = history.durable.unwrap_or(0);
    states.extend(history.ops[from..].iter().map(|op| op.0));
    states
}

/// What a campaign counted.
#[derive(Debug, Default)]
pub struct Totals {
    pub crash_points: u64,
    pub durable_acks: u64,
    pub keys_checked: u64,
    pub values_read: u64,
}

/// Reopens the store after a crash and checks every key against the
/// child's report; `state` holds each key's value before the round and is
/// updated to what was found.
pub fn check(
    folder: &Path,
    round: u64,
    evicting: bool,
    lines: &[String],
    state: &mut HashMap<u64, State>,
    totals: &mut Totals,
) -> anyhow::Result<()> {
    let Round {
        histories,
        durable_acks,
    } = parse(lines);
    let store = PersistentStore::open(folder, options(evicting))?;
    let report = store.verify()?;
    anyhow::ensure!(
        report.is_clean(),
        "round {round}: verify after the crash: {:?}",
        report.problems
    );
    for key in 0..KEYS {
        let initial = state.get(&key).copied().flatten();
        let found = match store.get_owned(&key_bytes(key)) {
            Ok(ticket) => {
                let got = ticket.wait().map_err(|r| r.error)?;
                let bytes = &got.buf[..got.len];
                let word =
                    |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8"));
                anyhow::ensure!(
                    bytes.len() >= 24,
                    "round {round}: key {key} holds {} bytes, not a value",
                    bytes.len()
                );
                let version = word(1);
                anyhow::ensure!(
                    word(0) == key && bytes == value(key, version, word(2) as usize).as_slice(),
                    "round {round}: key {key} holds bytes that are not one whole value put for it"
                );
                totals.values_read += 1;
                Some(version)
            }
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let may = allowed(initial, histories.get(&key), evicting);
        anyhow::ensure!(
            may.contains(&found),
            "round {round}: key {key} holds {found:?} after the crash; allowed: {may:?} (its requests: {:?})",
            histories.get(&key).map(|h| (&h.ops, h.durable))
        );
        state.insert(key, found);
        totals.keys_checked += 1;
    }
    store.close()?;
    totals.crash_points += 1;
    totals.durable_acks += durable_acks;
    Ok(())
}

/// In the child (the test binary run with [`CHILD_VAR`]): runs `child` and
/// says how it ended; in the parent: `None`.
pub fn as_child(child: fn(&ChildSpec) -> anyhow::Result<()>) -> Option<std::process::ExitCode> {
    let spec = std::env::var(CHILD_VAR).ok()?;
    Some(
        match ChildSpec::decode(&spec).and_then(|spec| child(&spec)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("crash child: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
    )
}

/// Runs `points` crash points (`TENSORSWAP_CRASH_POINTS`, default
/// `default_points`) with `point`, and prints what the campaign checked.
pub fn campaign(
    name: &str,
    default_points: u64,
    mut point: impl FnMut(&Path, u64, u64, &mut HashMap<u64, State>, &mut Totals) -> anyhow::Result<()>,
) -> std::process::ExitCode {
    let points: u64 = std::env::var("TENSORSWAP_CRASH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_points);
    let seed: u64 = std::env::var("TENSORSWAP_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let folder = match tempfile::tempdir() {
        Ok(folder) => folder,
        Err(e) => {
            eprintln!("crash campaign: no temporary folder: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let store = folder.path().join("store");
    let mut state = HashMap::new();
    let mut totals = Totals::default();
    let started = Instant::now();
    for round in 0..points {
        if let Err(e) = point(&store, seed, round, &mut state, &mut totals) {
            println!("crash campaign ({name}), seed {seed}: FAILED at crash point {round}: {e:#}");
            println!("rerun with TENSORSWAP_CRASH_SEED={seed}");
            return std::process::ExitCode::FAILURE;
        }
    }
    println!(
        "crash campaign ({name}), seed {seed}: {} crash points, {} puts and removes acknowledged as durable, {} key states checked, {} values read whole; none lost or torn ({:.1} s)",
        totals.crash_points,
        totals.durable_acks,
        totals.keys_checked,
        totals.values_read,
        started.elapsed().as_secs_f64()
    );
    std::process::ExitCode::SUCCESS
}
