//! Threads putting, reading and removing the same keys at once, in a store
//! small enough to evict: every read is one whole value put for its key.

use std::sync::Arc;

use tensorswap_core::IoEngine;
use tensorswap_store::{Durability, PersistentStore, PutOptions, StoreOptions};

use super::open;
use crate::engine::scratch_parent;
use crate::{check, pattern, CaseError, Ctx, Outcome};

const KEYS: u64 = 12;
const THREADS: u64 = 4;
const OPS: u64 = 150;

/// A value that says whose it is: key, version, length, then bytes that
/// follow from them.
fn value(key: u64, version: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len.max(24));
    out.extend_from_slice(&key.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(len as u64).to_le_bytes());
    out.extend_from_slice(&pattern(key << 32 | version, len.max(24) - 24));
    out
}

/// `None` when `bytes` are one whole value of `key`; else what is wrong.
fn whole(key: u64, bytes: &[u8]) -> Option<String> {
    let word = |i: usize| {
        bytes
            .get(i * 8..i * 8 + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8")))
    };
    let (Some(k), Some(version), Some(len)) = (word(0), word(1), word(2)) else {
        return Some(format!("{} bytes, too short for a header", bytes.len()));
    };
    if k != key || len as usize != bytes.len().max(24) || bytes != value(key, version, len as usize)
    {
        return Some(format!(
            "not a whole value of key {key} (header: key {k}, version {version}, len {len})"
        ));
    }
    None
}

/// Four threads, random puts (of 24 B to 160 KiB), gets and removes over a
/// dozen keys, durable at flush only, in a store that holds about a dozen
/// values: every get is a whole value of its key; after a reopen every
/// value is still whole and `verify` is clean.
pub fn threads_see_whole_values<E: IoEngine + 'static>(ctx: &Ctx<E>) -> Outcome {
    let folder = scratch_parent()?;
    let options = StoreOptions::new(1 << 20).durability(Durability::Flush);
    let store = Arc::new(open(ctx, folder.path(), options.clone())?);
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || work(&store, t))
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| CaseError("a worker panicked".into()))??;
    }
    let store =
        Arc::into_inner(store).ok_or_else(|| CaseError("the store is still shared".into()))?;
    store.close()?;
    let store = open(ctx, folder.path(), options)?;
    for key in 0..KEYS {
        if let Ok(ticket) = store.get_owned(&key.to_le_bytes()) {
            let got = ticket.wait()?;
            if let Some(wrong) = whole(key, &got.buf[..got.len]) {
                return Err(CaseError(format!("after reopening: {wrong}")));
            }
        }
    }
    let report = store.verify()?;
    check!(report.is_clean(), "verify: {:?}", report.problems);
    ctx.checked((THREADS * OPS) as usize);
    Ok(())
}

fn work<E: IoEngine + 'static>(store: &PersistentStore<E>, thread: u64) -> Outcome {
    let mut x = thread.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for op in 0..OPS {
        let key = next() % KEYS;
        match next() % 10 {
            0..=4 => {
                let len = 24 + (next() % (160 << 10)) as usize;
                let version = thread << 32 | op;
                store
                    .put(
                        &key.to_le_bytes(),
                        value(key, version, len),
                        &PutOptions::new(),
                    )?
                    .wait()?;
            }
            5..=8 => match store.get_owned(&key.to_le_bytes()) {
                Ok(ticket) => {
                    let got = ticket.wait()?;
                    if let Some(wrong) = whole(key, &got.buf[..got.len]) {
                        return Err(CaseError(format!("thread {thread}, op {op}: {wrong}")));
                    }
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            },
            _ => {
                store.remove(&key.to_le_bytes()).wait()?;
            }
        }
    }
    Ok(())
}
