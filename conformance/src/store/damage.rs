//! Damaged values are named, never served; space nothing points to is
//! reclaimed when the store opens.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};

use tensorswap_core::IoEngine;
use tensorswap_store::{PutOptions, StoreError, StoreOptions};

use super::open;
use crate::engine::scratch_parent;
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

const VALUE: usize = 5 * 4096 + 100;

/// One byte of one value's second block flipped on disk: getting it is a
/// `Checksum` error naming the key and the block, a range that avoids the
/// block still reads, the other values read whole, and `verify` lists that
/// key alone.
pub fn damaged_value_named<E: IoEngine + 'static>(ctx: &Ctx<E>) -> Outcome {
    let folder = scratch_parent()?;
    let options = StoreOptions::new(1 << 20);
    let store = open(ctx, folder.path(), options.clone())?;
    for i in 0..3u64 {
        store
            .put(
                format!("v{i}").as_bytes(),
                pattern(i, VALUE),
                &PutOptions::new(),
            )?
            .wait()?;
    }
    drop(store);

    // Find value 1's second block in the data file, and flip a byte of it.
    let path = folder.path().join("values.dat");
    let io = |e: std::io::Error| CaseError(format!("{}: {e}", path.display()));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    let needle = &pattern(1, VALUE)[4096..4096 + 64];
    let at = bytes
        .chunks(4096)
        .position(|block| block.starts_with(needle))
        .ok_or_else(|| CaseError("value 1's second block is not in the data file".into()))?;
    let offset = at as u64 * 4096 + 1000;
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    file.write_all(&[bytes[offset as usize] ^ 0x40])
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);

    let store = open(ctx, folder.path(), options)?;
    let got = store.get(b"v1", vec![0u8; VALUE])?.wait();
    check!(
        matches!(&got, Err(r) if matches!(r.error, StoreError::Checksum { offset: 4096, len: 4096, .. })
            && r.error.to_string().contains("`v1`")),
        "a damaged value was not refused naming its key and block: {:?}",
        got.map(|d| d.len).map_err(|r| r.error.to_string())
    );
    let part = store
        .get_range(b"v1", 3 * 4096, vec![0u8; 2 * 4096])?
        .wait()?;
    expect_bytes(
        "v1's blocks after the damage",
        &part.buf,
        &pattern(1, VALUE)[3 * 4096..5 * 4096],
    )?;
    for i in [0u64, 2] {
        let got = store
            .get(format!("v{i}").as_bytes(), vec![0u8; VALUE])?
            .wait()?;
        expect_bytes(&format!("v{i}"), &got.buf, &pattern(i, VALUE))?;
    }
    let report = store.verify()?;
    check!(
        report.problems.len() == 1 && report.problems[0].key == b"v1" && report.keys == 3,
        "verify reported {:?}",
        report.problems
    );
    ctx.checked(1);
    Ok(())
}

/// Bytes past the last value (a put that never committed) are cut off when
/// the store opens, and all the space no value holds is free.
pub fn unreferenced_space_reclaimed<E: IoEngine + 'static>(ctx: &Ctx<E>) -> Outcome {
    let folder = scratch_parent()?;
    let options = StoreOptions::new(4 << 20);
    let store = open(ctx, folder.path(), options.clone())?;
    for i in 0..4u64 {
        store
            .put(&[i as u8], pattern(i, 40_000), &PutOptions::new())?
            .wait()?;
    }
    store.remove(&[3]).wait()?;
    let held = store.stats().held_bytes;
    drop(store);
    let path = folder.path().join("values.dat");
    let io = |e: std::io::Error| CaseError(format!("{}: {e}", path.display()));
    let mut file = OpenOptions::new().append(true).open(&path).map_err(io)?;
    file.write_all(&vec![0xEE; 3 << 20]).map_err(io)?;
    drop(file);

    let store = open(ctx, folder.path(), options)?;
    let stats = store.stats();
    check!(
        stats.free_bytes == stats.capacity - held && stats.held_bytes == held,
        "after reopening: {} free, {} held, of {} (held before: {held})",
        stats.free_bytes,
        stats.held_bytes,
        stats.capacity
    );
    let len = std::fs::metadata(&path).map_err(io)?.len();
    check!(len <= 3 * 40_960, "the data file still holds {len} bytes");
    for i in 0..3u64 {
        let got = store.get(&[i as u8], vec![0u8; 40_000])?.wait()?;
        expect_bytes(&format!("value {i}"), &got.buf, &pattern(i, 40_000))?;
    }
    ctx.checked(1);
    Ok(())
}
