//! The persistent store's index workload on redb, fjall and heed (LMDB):
//! 32-byte keys (content hashes), 96-byte records (location, length,
//! checksum, metadata, recency). Durable puts one at a time and in
//! batches, point lookups, in-order prefix counts, reopen, disk use.

use std::path::Path;
use std::time::{Duration, Instant};

const RECORD: usize = 96;

fn key(i: u64) -> [u8; 32] {
    // A cheap stand-in for a content hash: spread, fixed length.
    let mut k = [0u8; 32];
    let mut x = i.wrapping_mul(0x9E3779B97F4A7C15) ^ 0xD1B54A32D192ED03;
    for chunk in k.chunks_mut(8) {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51afd7ed558ccd);
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    k
}

fn record(i: u64) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..8].copy_from_slice(&i.to_le_bytes());
    r
}

trait Index {
    fn name(&self) -> &'static str;
    fn put_durable(&mut self, items: &[(u64, [u8; 32])]);
    fn get(&self, key: &[u8; 32]) -> bool;
    fn count_present(&self, keys: &[[u8; 32]]) -> usize;
}

struct Redb(redb::Database);
const TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("index");

impl Index for Redb {
    fn name(&self) -> &'static str {
        "redb 5"
    }
    fn put_durable(&mut self, items: &[(u64, [u8; 32])]) {
        let tx = self.0.begin_write().unwrap();
        {
            let mut t = tx.open_table(TABLE).unwrap();
            for (i, k) in items {
                t.insert(&k[..], &record(*i)[..]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    fn get(&self, key: &[u8; 32]) -> bool {
        use redb::{ReadableDatabase, ReadableTable};
        let tx = self.0.begin_read().unwrap();
        let t = tx.open_table(TABLE).unwrap();
        let found = t.get(&key[..]).unwrap().is_some();
        found
    }
    fn count_present(&self, keys: &[[u8; 32]]) -> usize {
        use redb::{ReadableDatabase, ReadableTable};
        let tx = self.0.begin_read().unwrap();
        let t = tx.open_table(TABLE).unwrap();
        keys.iter()
            .take_while(|k| t.get(&k[..]).unwrap().is_some())
            .count()
    }
}

struct Fjall(fjall::Database, fjall::Keyspace);

impl Index for Fjall {
    fn name(&self) -> &'static str {
        "fjall 3"
    }
    fn put_durable(&mut self, items: &[(u64, [u8; 32])]) {
        let mut b = self.0.batch().durability(Some(fjall::PersistMode::SyncAll));
        for (i, k) in items {
            b.insert(&self.1, k.to_vec(), record(*i).to_vec());
        }
        b.commit().unwrap();
    }
    fn get(&self, key: &[u8; 32]) -> bool {
        self.1.get(key).unwrap().is_some()
    }
    fn count_present(&self, keys: &[[u8; 32]]) -> usize {
        keys.iter()
            .take_while(|k| self.1.get(k).unwrap().is_some())
            .count()
    }
}

struct Heed(
    heed::Env,
    heed::Database<heed::types::Bytes, heed::types::Bytes>,
);

impl Index for Heed {
    fn name(&self) -> &'static str {
        "heed 0.22 (LMDB)"
    }
    fn put_durable(&mut self, items: &[(u64, [u8; 32])]) {
        let mut tx = self.0.write_txn().unwrap();
        for (i, k) in items {
            self.1.put(&mut tx, &k[..], &record(*i)[..]).unwrap();
        }
        tx.commit().unwrap();
    }
    fn get(&self, key: &[u8; 32]) -> bool {
        let tx = self.0.read_txn().unwrap();
        self.1.get(&tx, &key[..]).unwrap().is_some()
    }
    fn count_present(&self, keys: &[[u8; 32]]) -> usize {
        let tx = self.0.read_txn().unwrap();
        keys.iter()
            .take_while(|k| self.1.get(&tx, &k[..]).unwrap().is_some())
            .count()
    }
}

fn open(kind: &str, dir: &Path) -> Box<dyn Index> {
    match kind {
        "redb" => Box::new(Redb(
            redb::Database::create(dir.join("index.redb")).unwrap(),
        )),
        "fjall" => {
            let db = fjall::Database::builder(dir.join("fjall")).open().unwrap();
            let ks = db
                .keyspace("index", fjall::KeyspaceCreateOptions::default)
                .unwrap();
            Box::new(Fjall(db, ks))
        }
        "heed" => {
            std::fs::create_dir_all(dir.join("lmdb")).unwrap();
            // SAFETY: one process, one open of this folder.
            let env = unsafe {
                heed::EnvOpenOptions::new()
                    .map_size(8 << 30)
                    .max_dbs(1)
                    .open(dir.join("lmdb"))
                    .unwrap()
            };
            let mut tx = env.write_txn().unwrap();
            let db = env.create_database(&mut tx, Some("index")).unwrap();
            tx.commit().unwrap();
            Box::new(Heed(env, db))
        }
        _ => unreachable!(),
    }
}

fn du(path: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(path).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        total += if m.is_dir() { du(&e.path()) } else { m.len() };
    }
    total
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One engine's figures in one round.
struct Figures {
    single_put: Duration,
    batched_per_s: f64,
    lookup_us: f64,
    prefix_us: f64,
    reopen: Duration,
    disk_mib: f64,
}

fn measure(kind: &str, n: u64, parent: &str) -> (&'static str, Figures) {
    let dir = tempfile::tempdir_in(parent).unwrap();
    let mut ix = open(kind, dir.path());
    // 1. Durable single puts (each its own fsynced commit): the latency a put waits for.
    let mut single = Vec::new();
    for i in 0..300u64 {
        let t = Instant::now();
        ix.put_durable(&[(i, key(i))]);
        single.push(t.elapsed());
    }
    // 2. Batches of 1000 per durable commit.
    let t = Instant::now();
    let mut i = 300;
    while i < n {
        let batch: Vec<_> = (i..(i + 1000).min(n)).map(|j| (j, key(j))).collect();
        ix.put_durable(&batch);
        i += 1000;
    }
    let batched = t.elapsed();
    // 3. Point lookups, random existing keys.
    let t = Instant::now();
    let mut hits = 0;
    for j in 0..100_000u64 {
        hits += ix.get(&key((j * 7919) % n)) as usize;
    }
    let lookups = t.elapsed();
    assert_eq!(hits, 100_000);
    // 4. In-order prefix counts: 10,000 chains of 16 keys, the last 4 absent.
    let t = Instant::now();
    let mut counted = 0;
    for c in 0..10_000u64 {
        let chain: Vec<_> = (0..16u64)
            .map(|j| {
                if j < 12 {
                    key((c * 16 + j) % n)
                } else {
                    key(n + c * 16 + j)
                }
            })
            .collect();
        counted += ix.count_present(&chain);
    }
    let prefix = t.elapsed();
    assert_eq!(counted, 120_000);
    let name = ix.name();
    drop(ix);
    // 5. Reopen and one lookup.
    let t = Instant::now();
    let ix = open(kind, dir.path());
    assert!(ix.get(&key(n / 2)));
    let reopen = t.elapsed();
    drop(ix);
    let figures = Figures {
        single_put: median(single),
        batched_per_s: (n - 300) as f64 / batched.as_secs_f64(),
        lookup_us: lookups.as_secs_f64() * 1e6 / 1e5,
        prefix_us: prefix.as_secs_f64() * 1e6 / 1e4,
        reopen,
        disk_mib: du(dir.path()) as f64 / (1 << 20) as f64,
    };
    (name, figures)
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `indexcmp [ENTRIES] [FOLDER] [ROUNDS]`: every round runs each engine
/// once, the order rotated; medians over rounds.
fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let parent = args.next().unwrap_or_else(|| "/tmp".into());
    let rounds: usize = args.next().map_or(3, |a| a.parse().unwrap());
    let kinds = ["redb", "fjall", "heed"];
    let mut all: Vec<(&'static str, Vec<Figures>)> = Vec::new();
    for round in 0..rounds {
        for k in 0..kinds.len() {
            let kind = kinds[(k + round) % kinds.len()];
            let (name, figures) = measure(kind, n, &parent);
            match all.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(figures),
                None => all.push((name, vec![figures])),
            }
        }
    }
    println!("{n} entries (32-byte keys, {RECORD}-byte records) in {parent}; medians of {rounds} rounds, engine order rotated");
    for (name, f) in &all {
        println!(
            "{name:>18}: durable single put {:>8.2?}; batches of 1000: {:>4.0} k puts/s; lookup {:>5.2} us; 16-key prefix count {:>6.1} us; reopen {:>9.2?}; disk {:>6.1} MiB",
            median(f.iter().map(|x| x.single_put).collect()),
            median_f(f.iter().map(|x| x.batched_per_s).collect()) / 1e3,
            median_f(f.iter().map(|x| x.lookup_us).collect()),
            median_f(f.iter().map(|x| x.prefix_us).collect()),
            median(f.iter().map(|x| x.reopen).collect()),
            median_f(f.iter().map(|x| x.disk_mib).collect()),
        );
    }
}
