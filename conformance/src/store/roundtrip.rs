//! Values of every edge size, whole and in ranges, back after a reopen;
//! replacement, removal and listing.

use tensorswap_core::IoEngine;
use tensorswap_store::{PersistentStore, PutOptions, StoreOptions};

use super::open;
use crate::engine::scratch_parent;
use crate::{check, expect_bytes, pattern, Ctx, Outcome};

const SIZES: [usize; 9] = [
    0,
    1,
    511,
    4095,
    4096,
    4097,
    3 * 4096 + 17,
    1 << 20,
    (1 << 20) + 3,
];

fn key(i: usize) -> Vec<u8> {
    format!("layers.{i}.weight").into_bytes()
}

fn meta(len: usize) -> Vec<u8> {
    format!("u8 [{len}]").into_bytes()
}

/// Every size put, read whole, in ranges (aligned and not) and into an
/// owned buffer, with its metadata; then again after a reopen.
pub fn edge_sizes_survive_reopen<E: IoEngine + 'static>(ctx: &Ctx<E>) -> Outcome {
    let folder = scratch_parent()?;
    let options = StoreOptions::new(64 << 20);
    let store = open(ctx, folder.path(), options.clone())?;
    for (i, &len) in SIZES.iter().enumerate() {
        let put = PutOptions::new().meta(meta(len));
        store.put(&key(i), pattern(i as u64, len), &put)?.wait()?;
    }
    read_all(ctx, &store)?;
    drop(store);
    let store = open(ctx, folder.path(), options)?;
    read_all(ctx, &store)?;
    check!(
        store.verify()?.is_clean(),
        "verify found problems after the reopen"
    );
    Ok(())
}

fn read_all<E: IoEngine + 'static>(ctx: &Ctx<E>, store: &PersistentStore<E>) -> Outcome {
    for (i, &len) in SIZES.iter().enumerate() {
        let want = pattern(i as u64, len);
        let got = store.get(&key(i), vec![0u8; len + 7])?.wait()?;
        check!(
            got.len == len,
            "{len}-byte value: get read {} bytes",
            got.len
        );
        expect_bytes(&format!("{len}-byte value"), &got.buf[..len], &want)?;
        let owned = store.get_owned(&key(i))?.wait()?;
        expect_bytes(
            &format!("{len}-byte value, owned"),
            &owned.buf[..owned.len],
            &want,
        )?;
        let ranges = [
            (0, len / 2),
            (len / 3, len / 3),
            (4096, 100),
            (len.saturating_sub(5), 5),
        ];
        for (from, n) in ranges.into_iter().filter(|&(from, n)| from + n <= len) {
            let part = store
                .get_range(&key(i), from as u64, vec![0u8; n])?
                .wait()?;
            let what = format!("{len}-byte value, bytes {from}..+{n}");
            expect_bytes(&what, &part.buf, &want[from..from + n])?;
        }
        let entry = store.entry(&key(i))?;
        check!(
            entry
                .as_ref()
                .is_some_and(|e| e.len == len as u64 && e.meta == meta(len)),
            "{len}-byte value: entry {entry:?}"
        );
        ctx.checked(1);
    }
    Ok(())
}

fn kv(i: u64) -> Vec<u8> {
    format!("kv/{i}").into_bytes()
}

/// A replaced value reads as the new one, a removed key is gone, both
/// before and after a reopen; listing by prefix and the prefix count agree.
pub fn replace_remove_and_list<E: IoEngine + 'static>(ctx: &Ctx<E>) -> Outcome {
    let folder = scratch_parent()?;
    let options = StoreOptions::new(16 << 20);
    let store = open(ctx, folder.path(), options.clone())?;
    for i in 0..8 {
        store
            .put(&kv(i), pattern(i, 20_000), &PutOptions::new())?
            .wait()?;
    }
    // A shorter and a longer value replace two; one is removed.
    store
        .put(&kv(1), pattern(100, 5000), &PutOptions::new())?
        .wait()?;
    store
        .put(&kv(2), pattern(200, 50_000), &PutOptions::new())?
        .wait()?;
    check!(
        store.remove(&kv(3)).wait()?,
        "removing a present key said it was absent"
    );
    check!(
        !store.remove(&kv(3)).wait()?,
        "removing it again said it was present"
    );
    check!(!store.contains(&kv(3)), "a removed key is still there");
    store
        .put(b"other", vec![1u8; 10], &PutOptions::new())?
        .wait()?;
    check_replaced(ctx, &store)?;
    drop(store);
    check_replaced(ctx, &open(ctx, folder.path(), options)?)
}

fn check_replaced<E: IoEngine + 'static>(ctx: &Ctx<E>, store: &PersistentStore<E>) -> Outcome {
    let got = store.get(&kv(1), vec![0u8; 5000])?.wait()?;
    expect_bytes("the replaced kv/1", &got.buf, &pattern(100, 5000))?;
    let got = store.get(&kv(2), vec![0u8; 50_000])?.wait()?;
    expect_bytes("the replaced kv/2", &got.buf, &pattern(200, 50_000))?;
    check!(!store.contains(&kv(3)), "the removed kv/3 is back");
    let listed: Vec<Vec<u8>> = store.list(b"kv/")?.into_iter().map(|e| e.key).collect();
    let want: Vec<Vec<u8>> = [0, 1, 2, 4, 5, 6, 7].map(kv).to_vec();
    check!(listed == want, "list(kv/) gave {listed:?}");
    let asked = [0, 1, 2, 3, 4].map(kv);
    check!(
        store.count_present(&asked) == 3,
        "the prefix count did not stop at kv/3"
    );
    let stats = store.stats();
    check!(stats.keys == 8, "{} keys, not 8", stats.keys);
    let blocks = |len: u64| len.div_ceil(4096) * 4096;
    let held = 5 * blocks(20_000) + blocks(5000) + blocks(50_000) + blocks(10);
    check!(
        stats.held_bytes == held,
        "{} bytes held, not {held}",
        stats.held_bytes
    );
    ctx.checked(1);
    Ok(())
}
