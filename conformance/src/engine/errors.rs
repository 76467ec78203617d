//! Reads that cannot return the right bytes are typed errors.

use std::os::unix::fs::FileExt;

use swap_api::{DirOptions, Error, IoEngine, IoEngineExt, IoOp};

use super::scratch::{both_policies, scratch};
use crate::{check, pattern, raw_file, CaseError, Ctx, Outcome};

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

fn expect_missing(dir: &swap_api::SwapDir, id: u64) -> Outcome {
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

/// With checksums on, a byte flipped in the file after the write makes the
/// read fail with `Checksum`, naming the file and range.
pub fn checksum_mismatch<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    for options in both_policies() {
        let s = scratch(options.checksums(true))?;
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
        let failed = engine
            .read(&file, offset, vec![0u8; len])?
            .wait()
            .err()
            .ok_or_else(|| CaseError("a corrupted range read back without error".into()))?;
        check!(
            matches!(&failed.error, Error::Checksum { offset: o, len: l, path, .. } if *o == offset && *l == len && path == file.path()),
            "expected Checksum for {len} bytes at {offset}, got {}",
            failed.error
        );
        // Rewriting the range records a new checksum.
        engine.write(&file, offset, pattern(10, len))?.wait()?;
        engine.read(&file, offset, vec![0u8; len])?.wait()?;
        ctx.checked(1);
    }
    // Without checksums the same flip goes unnoticed by design: the option is opt-in.
    let s = scratch(DirOptions::default())?;
    check!(
        !s.dir.create_file()?.checksummed(),
        "checksums are on by default"
    );
    Ok(())
}
