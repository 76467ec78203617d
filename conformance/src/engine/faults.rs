//! Injected OS errors (through `FaultyEngine`) are typed and lose nothing.

use tensorswap_core::{Error, FaultStage, FaultyEngine, IoEngine, IoEngineExt, IoOp};

use super::roundtrip::round_trip;
use super::scratch::scratch;
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

const ENOSPC: i32 = 28;
const EIO: i32 = 5;

fn expect_errno(error: &Error, op: IoOp, errno: i32) -> Outcome {
    check!(
        matches!(error, Error::Io { op: o, cause: source, .. } if *o == op && source.raw_os_error() == Some(errno)),
        "expected a {op} Io error with errno {errno}, got {error}"
    );
    Ok(())
}

/// A write failing with `ENOSPC` (refused, or after running) hands the source
/// buffer back intact; the previous contents of other ranges survive and a
/// retry lands.
pub fn enospc_on_write<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = FaultyEngine::new(ctx.engine()?);
    let s = scratch(Default::default())?;
    let file = s.dir.create_file()?;
    let len = 3 << 20;
    round_trip(&engine, &file, 0, pattern(1, len))?;
    for stage in [FaultStage::Submit, FaultStage::Complete] {
        engine.fail_next(IoOp::Write, ENOSPC, stage);
        let failed = match engine.write(&file, len as u64, pattern(2, len)) {
            Err(refused) => refused,
            Ok(ticket) => ticket
                .wait()
                .err()
                .ok_or_else(|| CaseError(format!("write with ENOSPC at {stage:?} succeeded")))?,
        };
        expect_errno(&failed.error, IoOp::Write, ENOSPC)?;
        expect_bytes(
            "source of the failed write",
            &failed.value,
            &pattern(2, len),
        )?;
        let before = engine.read(&file, 0, vec![0u8; len])?.wait()?;
        expect_bytes(
            "bytes written before the failure",
            &before.buf,
            &pattern(1, len),
        )?;
        round_trip(&engine, &file, len as u64, failed.value)?;
        ctx.checked(1);
    }
    check!(!engine.has_armed(), "an armed fault did not fire");
    Ok(())
}

/// A read failing with `EIO` is a typed error; the file is unchanged and a
/// retry reads the right bytes.
pub fn eio_on_read<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = FaultyEngine::new(ctx.engine()?);
    let s = scratch(Default::default())?;
    let file = s.dir.create_file()?;
    let len = 1 << 20;
    engine.write(&file, 0, pattern(5, len))?.wait()?;
    for stage in [FaultStage::Submit, FaultStage::Complete] {
        engine.fail_next(IoOp::Read, EIO, stage);
        let failed = match engine.read(&file, 0, vec![0u8; len]) {
            Err(refused) => refused,
            Ok(ticket) => ticket
                .wait()
                .err()
                .ok_or_else(|| CaseError(format!("read with EIO at {stage:?} succeeded")))?,
        };
        expect_errno(&failed.error, IoOp::Read, EIO)?;
        let retry = engine.read(&file, 0, failed.value)?.wait()?;
        expect_bytes("retried read", &retry.buf, &pattern(5, len))?;
        ctx.checked(1);
    }
    Ok(())
}
