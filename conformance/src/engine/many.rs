//! Many requests in flight, each with its own ticket.

use tensorswap_core::{wait_all_io, IoEngine, IoEngineExt};

use super::scratch::scratch;
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

const REQUESTS: usize = 64;

fn len_of(i: usize) -> usize {
    [4096, 65_536, 100_003, 1 << 20][i % 4]
}

/// 64 writes over 4 files in flight at once, waited in a scrambled order;
/// then 64 reads in flight, waited in reverse.
pub fn many_in_flight_any_order<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    let s = scratch(Default::default())?;
    let files = (0..4)
        .map(|_| s.dir.create_file())
        .collect::<Result<Vec<_>, _>>()?;
    let place = |i: usize| (&files[i % 4], (i / 4) as u64 * (2 << 20));
    let mut writes = Vec::new();
    for i in 0..REQUESTS {
        let (file, offset) = place(i);
        writes.push(Some(engine.write(
            file,
            offset,
            pattern(i as u64, len_of(i)),
        )?));
    }
    for k in 0..REQUESTS {
        let i = (k * 37) % REQUESTS; // 37 is coprime with 64: a permutation
        let ticket = writes[i]
            .take()
            .ok_or_else(|| CaseError(format!("ticket {i} waited twice")))?;
        ticket.wait()?;
    }
    let mut reads = Vec::new();
    for i in 0..REQUESTS {
        let (file, offset) = place(i);
        reads.push(engine.read(file, offset, vec![0u8; len_of(i)])?);
    }
    for (i, ticket) in reads.into_iter().enumerate().rev() {
        let done = ticket.wait()?;
        expect_bytes(
            &format!("request {i}"),
            &done.buf,
            &pattern(i as u64, len_of(i)),
        )?;
        ctx.checked(1);
    }
    Ok(())
}

/// `is_complete`/`try_wait` polling reaches completion without blocking
/// calls; `wait_all_io` returns every result in order.
pub fn poll_and_wait_all<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    let s = scratch(Default::default())?;
    let file = s.dir.create_file()?;
    let mut ticket = engine.write(&file, 0, pattern(1, 3 << 20))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let done = loop {
        match ticket.try_wait() {
            Ok(result) => break result?,
            Err(pending) => ticket = pending,
        }
        check!(
            std::time::Instant::now() < deadline,
            "a 3 MiB write did not complete in 60 s"
        );
        std::thread::yield_now();
    };
    check!(
        done.latency > std::time::Duration::ZERO,
        "latency not measured"
    );
    let tickets = (0..8u64)
        .map(|i| engine.read(&file, i * 4096, vec![0u8; 4096]))
        .collect::<Result<Vec<_>, _>>()?;
    let want = pattern(1, 3 << 20);
    for (i, result) in wait_all_io(tickets).into_iter().enumerate() {
        let done = result?;
        expect_bytes(
            &format!("read {i}"),
            &done.buf,
            &want[i * 4096..(i + 1) * 4096],
        )?;
    }
    Ok(())
}

/// Dropping the engine with requests in flight finishes them: every ticket
/// still completes with the right bytes.
pub fn drop_engine_in_flight<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let s = scratch(Default::default())?;
    let file = s.dir.create_file()?;
    let engine = ctx.engine()?;
    let writes = (0..16u64)
        .map(|i| engine.write(&file, i << 20, pattern(i, 1 << 20)))
        .collect::<Result<Vec<_>, _>>()?;
    drop(engine);
    for result in wait_all_io(writes) {
        result?;
    }
    let engine = ctx.engine()?;
    let reads = (0..16u64)
        .map(|i| engine.read(&file, i << 20, vec![0u8; 1 << 20]))
        .collect::<Result<Vec<_>, _>>()?;
    // Dropped tickets wait for their reads; leaked ones keep their buffers.
    let mut reads = reads.into_iter();
    drop(reads.next());
    if let Some(leaked) = reads.next() {
        std::mem::forget(leaked);
    }
    drop(engine);
    for (i, result) in wait_all_io(reads).into_iter().enumerate() {
        let i = i as u64 + 2;
        expect_bytes(&format!("read {i}"), &result?.buf, &pattern(i, 1 << 20))?;
    }
    Ok(())
}
