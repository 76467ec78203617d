//! Reads that cannot return the right bytes are typed errors.

use std::os::unix::fs::FileExt;

use tensorswap_core::{DirOptions, Error, IoEngine, IoEngineExt, IoOp};

use super::scratch::{both_policies, scratch};
use crate::{check, expect_bytes, pattern, raw_file, CaseError, Ctx, Outcome};

/// Reading past the end of a file is `ShortIo` with the count that was read.
pub fn read_past_end<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    for options in both_policies() {
        let s = scratch(options)?;
        let file = s.dir.create_file()?;
        engine.write(&file, 0, pattern(3, 10_000))?.wait()?;
        for (offset, len, done) in [
            (0u64, 20_000usize, 10_000usize),
            (8192, 4096, 1808),
            (10_000, 1, 0),
            (1 << 30, 4096, 0),
        ] {
            let failed = match engine.read(&file, offset, vec![0u8; len]) {
                Ok(ticket) => ticket.wait().err(),
                Err(refused) => Some(refused),
            }
            .ok_or_else(|| {
                CaseError(format!(
                    "a read of {len} at {offset} past the end succeeded"
                ))
            })?;
            check!(
                matches!(failed.error, Error::ShortIo { op: IoOp::Read, done: d, len: l, .. } if d == done && l == len),
                "reading {len} at {offset} of a 10000-byte file: expected ShortIo with {done} done, got {}",
                failed.error
            );
            ctx.checked(1);
        }
    }
    Ok(())
}

/// Opening a file that is gone is `Error::File` with `ENOENT`: one removed
/// from a kept folder, or any file of a folder that is not kept (they have
/// no names once open).
pub fn missing_file<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let _engine = ctx.engine()?;
    for keep in [true, false] {
        let s = scratch(DirOptions::default().keep(keep))?;
        let file = s.dir.create_file()?;
        if keep {
            std::fs::remove_file(file.path()).map_err(|e| CaseError(format!("remove: {e}")))?;
        }
        expect_missing(&s.dir, file.id())?;
    }
    Ok(())
}

fn expect_missing(dir: &tensorswap_core::SwapDir, id: u64) -> Outcome {
    match dir.open_file(id) {
        Err(Error::File { cause: source, .. }) if source.raw_os_error() == Some(libc_enoent()) => {
            Ok(())
        }
        Err(other) => Err(CaseError(format!("expected File/ENOENT, got {other}"))),
        Ok(_) => Err(CaseError("opened a removed file".into())),
    }
}

fn libc_enoent() -> i32 {
    std::io::Error::from(std::io::ErrorKind::NotFound)
        .raw_os_error()
        .unwrap_or(2)
}

/// With checksums on (the default), a byte flipped in the file after the
/// write makes every read covering its 4 KiB block whole fail with
/// `Checksum`, naming the file and the block: the whole range, and a
/// sub-range of it; reads that do not cover the block still succeed. With
/// checksums turned off the same flip comes back as data, as asked.
pub fn checksum_mismatch<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    for options in both_policies() {
        let s = scratch(options)?;
        check!(
            s.dir.create_file()?.checksummed(),
            "checksums are not on by default"
        );
        let file = s.dir.create_file()?;
        let (offset, len) = (4096u64, 200_000usize);
        engine.write(&file, offset, pattern(9, len))?.wait()?;
        // Intact: verifies.
        engine.read(&file, offset, vec![0u8; len])?.wait()?;
        // Flip one byte behind the engine's back.
        let raw = raw_file(&file)?;
        let at = offset + 77_777;
        let mut byte = [0u8];
        raw.read_exact_at(&mut byte, at)
            .and_then(|()| raw.write_all_at(&[byte[0] ^ 0x10], at))
            .and_then(|()| raw.sync_all())
            .map_err(|e| CaseError(format!("flip a byte: {e}")))?;
        drop(raw);
        let block = at / 4096 * 4096;
        for (from, n) in [(offset, len), (block - 5000, 20_000), (block, 4096)] {
            let failed = engine
                .read(&file, from, vec![0u8; n])?
                .wait()
                .err()
                .ok_or_else(|| {
                    CaseError(format!(
                        "a corrupted range ({n} bytes at {from}) read back without error"
                    ))
                })?;
            check!(
                matches!(&failed.error, Error::Checksum { offset: o, len: 4096, path, .. } if *o == block && path == file.path()),
                "reading {n} bytes at {from}: expected Checksum for the block at {block}, got {}",
                failed.error
            );
        }
        // Reads beside the block still verify and succeed.
        let before = engine.read(&file, offset, vec![0u8; 8192])?.wait()?;
        expect_bytes(
            "the bytes before the flip",
            &before.buf,
            &pattern(9, len)[..8192],
        )?;
        // Rewriting the range records a new checksum.
        engine.write(&file, offset, pattern(10, len))?.wait()?;
        engine.read(&file, offset, vec![0u8; len])?.wait()?;
        ctx.checked(1);
    }
    // Turned off, the same flip comes back as data: the opt-out does what it says.
    let s = scratch(DirOptions::default().checksums(false))?;
    let file = s.dir.create_file()?;
    engine.write(&file, 0, pattern(9, 8192))?.wait()?;
    raw_file(&file)?
        .write_all_at(&[0xff], 100)
        .map_err(|e| CaseError(format!("flip a byte: {e}")))?;
    let back = engine.read(&file, 0, vec![0u8; 8192])?.wait()?;
    check!(back.buf[100] == 0xff, "the flipped byte did not come back");
    Ok(())
}
