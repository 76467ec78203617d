//! A full store: least recently used values evicted, pinned ones kept,
//! freed space reused; with eviction off, a typed `Full`.

use tensorswap_core::IoEngine;
use tensorswap_store::{PutOptions, StoreError, StoreOptions};

use super::open;
use crate::engine::scratch_parent;
use crate::{check, expect_bytes, pattern, Ctx, Outcome};

const VALUE: usize = 64 << 10;

fn key(i: u64) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

/// Puts four times the capacity through a store: it never holds more than
/// its capacity, a pinned key and a key read often survive, the oldest go
/// first, and every value left reads back whole.
pub fn eviction_order_and_pins<E: IoEngine + 'static>(ctx: &Ctx<E>) -> Outcome {
    let folder = scratch_parent()?;
    let capacity = 32 * VALUE as u64;
    let store = open(ctx, folder.path(), StoreOptions::new(capacity))?;
    store
        .put(
            b"pinned",
            pattern(1, VALUE),
            &PutOptions::new().pinned(true),
        )?
        .wait()?;
    store
        .put(b"hot", pattern(2, VALUE), &PutOptions::new())?
        .wait()?;
    for i in 0..128 {
        store
            .put(&key(i), pattern(i + 10, VALUE), &PutOptions::new())?
            .wait()?;
        // Read "hot" now and then: it stays recent.
        if i % 8 == 0 {
            store.get(b"hot", vec![0u8; VALUE])?.wait()?;
        }
        let stats = store.stats();
        check!(
            stats.held_bytes <= capacity,
            "{} bytes held in a store of {capacity}",
            stats.held_bytes
        );
    }
    let stats = store.stats();
    check!(stats.evictions > 0, "nothing was evicted");
    check!(store.contains(b"pinned"), "the pinned key was evicted");
    check!(store.contains(b"hot"), "a key read often was evicted");
    check!(!store.contains(&key(0)), "the oldest key survived");
    check!(store.contains(&key(127)), "the newest key was evicted");
    let present: Vec<u64> = (0..128).filter(|&i| store.contains(&key(i))).collect();
    // Whatever survives is a run of the newest keys.
    check!(
        present.windows(2).all(|w| w[1] == w[0] + 1) && present.last() == Some(&127),
        "the keys left are not the newest: {present:?}"
    );
    for &i in &present {
        let got = store.get(&key(i), vec![0u8; VALUE])?.wait()?;
        expect_bytes(&format!("key {i}"), &got.buf, &pattern(i + 10, VALUE))?;
        ctx.checked(1);
    }
    let got = store.get(b"pinned", vec![0u8; VALUE])?.wait()?;
    expect_bytes("the pinned key", &got.buf, &pattern(1, VALUE))?;
    check!(store.verify()?.is_clean(), "verify found problems");
    Ok(())
}

/// With eviction off, a put that does not fit is `Full` (its buffer back,
/// nothing else lost); a value larger than the store is `TooLarge`; space
/// freed by a removal is reused.
pub fn full_without_eviction<E: IoEngine + 'static>(ctx: &Ctx<E>) -> Outcome {
    let folder = scratch_parent()?;
    let capacity = 8 * VALUE as u64;
    let store = open(
        ctx,
        folder.path(),
        StoreOptions::new(capacity).eviction(false),
    )?;
    for i in 0..8 {
        store
            .put(&key(i), pattern(i, VALUE), &PutOptions::new())?
            .wait()?;
    }
    let refused = store.put(&key(8), pattern(8, VALUE), &PutOptions::new());
    let Err(refused) = refused else {
        return Err(crate::CaseError(
            "a put into a full store was accepted".into(),
        ));
    };
    check!(
        matches!(refused.error, StoreError::Full { eviction: false, capacity: c, .. } if c == capacity),
        "a put into a full store failed with {}",
        refused.error
    );
    expect_bytes(
        "the refused put's buffer",
        &refused.value,
        &pattern(8, VALUE),
    )?;
    let too_large = store.put(
        b"huge",
        vec![0u8; capacity as usize + 1],
        &PutOptions::new(),
    );
    check!(
        matches!(too_large, Err(ref r) if matches!(r.error, StoreError::TooLarge { .. })),
        "a value larger than the store was not TooLarge"
    );
    store.remove(&key(3)).wait()?;
    store
        .put(&key(8), pattern(8, VALUE), &PutOptions::new())?
        .wait()?;
    for i in (0..9).filter(|&i| i != 3) {
        let got = store.get(&key(i), vec![0u8; VALUE])?.wait()?;
        expect_bytes(&format!("key {i}"), &got.buf, &pattern(i, VALUE))?;
        ctx.checked(1);
    }
    Ok(())
}
