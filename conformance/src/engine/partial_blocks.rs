//! Checksums cover every byte served: the 4 KiB blocks a request covers only
//! in part (a file's last block, an unaligned request's head and tail) are
//! checked like whole ones, on swap files and on files the caller names.

use std::os::unix::fs::FileExt;

use tensorswap_core::{Error, IoEngine, IoEngineExt, NamedOptions, SwapFile};

use super::scratch::{both_policies, scratch, scratch_parent};
use crate::{check, pattern, raw_file, CaseError, Ctx, Outcome};

/// For each write (offset, length) and byte flipped behind the engine's
/// back: reading the write's range, and a few bytes around the flip, fail
/// with `Checksum` naming the block; before the flip both succeed.
const CASES: [(u64, usize, u64); 6] = [
    (0, 10_000, 9_500),
    (0, 3_000, 0),
    (0, 3_000, 2_999),
    (100, 65_536, 100),
    (100, 65_536, 65_635),
    (0, (1 << 20) + 1, 1 << 20),
];

/// Flipped bytes in blocks a request covers in part are `Checksum`
/// errors, on swap files (unlinked) and named files, direct or buffered;
/// so are the bytes of a file cut short and extended behind the engine's
/// back.
pub fn partial_blocks_checked<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    for options in both_policies() {
        let direct = options.direct_io;
        for (offset, len, at) in CASES {
            let s = scratch(options)?;
            let swap = s.dir.create_file()?;
            expect_caught(&engine, &swap, offset, len, at)?;
            let folder = scratch_parent()?;
            let named = SwapFile::open_named(
                folder.path().join("named.bin"),
                NamedOptions::read_write().create(true).direct_io(direct),
            )?;
            expect_caught(&engine, &named, offset, len, at)?;
            ctx.checked(2);
        }
        // Cut to 8192 and extended to 10,000 again: 1,808 zeros where the
        // written bytes were.
        let s = scratch(options)?;
        let file = s.dir.create_file()?;
        engine.write(&file, 0, pattern(5, 10_000))?.wait()?;
        let raw = raw_file(&file)?;
        raw.set_len(8192)
            .and_then(|()| raw.set_len(10_000))
            .map_err(|e| CaseError(format!("cut and extend: {e}")))?;
        for (from, n) in [(0u64, 10_000usize), (9_000, 100)] {
            expect_checksum(&engine, &file, from, n, 8192)?;
        }
        ctx.checked(1);
    }
    Ok(())
}

/// Writes `len` bytes at `offset`, reads them back, flips the byte at `at`
/// and expects reads covering it to fail.
fn expect_caught<E: IoEngine>(
    engine: &E,
    file: &SwapFile,
    offset: u64,
    len: usize,
    at: u64,
) -> Outcome {
    engine.write(file, offset, pattern(3, len))?.wait()?;
    let back = engine.read(file, offset, vec![0u8; len])?.wait()?;
    check!(
        back.buf == pattern(3, len),
        "{len} bytes at {offset} did not read back"
    );
    let raw = raw_file(file)?;
    let mut byte = [0u8];
    raw.read_exact_at(&mut byte, at)
        .and_then(|()| raw.write_all_at(&[byte[0] ^ 0x10], at))
        .map_err(|e| CaseError(format!("flip a byte: {e}")))?;
    let block = at / 4096 * 4096;
    let around = at.saturating_sub(3).max(offset);
    let end = (at + 4).min(offset + len as u64);
    for (from, n) in [(offset, len), (around, (end - around) as usize)] {
        expect_checksum(engine, file, from, n, block)?;
    }
    Ok(())
}

fn expect_checksum<E: IoEngine>(
    engine: &E,
    file: &SwapFile,
    from: u64,
    n: usize,
    block: u64,
) -> Outcome {
    let failed = match engine.read(file, from, vec![0u8; n]) {
        Ok(ticket) => ticket.wait().err(),
        Err(refused) => Some(refused),
    }
    .ok_or_else(|| {
        CaseError(format!(
            "{}: a corrupted range ({n} bytes at {from}) read back without error",
            file.path().display()
        ))
    })?;
    check!(
        matches!(&failed.error, Error::Checksum { offset: o, path, .. } if *o == block && path == file.path()),
        "{}: reading {n} bytes at {from}: expected Checksum for the block at {block}, got {}",
        file.path().display(),
        failed.error
    );
    Ok(())
}
