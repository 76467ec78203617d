//! Pinned pool slabs as request buffers: back-pressure, exhaustion, registration.

use std::time::Duration;

use tensorswap_core::{Error, IoEngine, IoEngineExt, PinnedPool};

use super::scratch::scratch;
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

/// `try_lease` on an exhausted pool is `PoolExhausted`; `lease` blocks until
/// another thread returns a slab; the pool is whole afterwards.
pub fn pool_back_pressure<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let _engine = ctx.engine()?;
    let pool = PinnedPool::builder().slab_size(64 << 10).slabs(2).build()?;
    let a = pool.lease();
    let b = pool.try_lease()?;
    check!(
        matches!(pool.try_lease(), Err(Error::PoolExhausted { slabs: 2, .. })),
        "a third lease from a two-slab pool did not fail with PoolExhausted"
    );
    let returner = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(b);
    });
    let c = pool.lease(); // blocks until the thread returns `b`
    check!(c.index() != a.index(), "two leases share a slab");
    returner
        .join()
        .map_err(|_| CaseError("returner thread panicked".into()))?;
    drop((a, c));
    let stats = pool.stats();
    check!(
        stats.leased == 0 && stats.free == 2 && stats.peak == 2,
        "pool not whole: {stats:?}"
    );
    Ok(())
}

/// Slabs (registered with the engine where it can) carry more requests than
/// there are slabs, each slab reused after its write completes; every byte
/// reads back.
pub fn pool_slabs_through_engine<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    let s = scratch(Default::default())?;
    let file = s.dir.create_file()?;
    let slab = 256 << 10;
    let pool = PinnedPool::builder()
        .slab_size(slab)
        .slabs(3)
        .alignment(s.dir.alignment())
        .build()?;
    pool.register_with(&engine);
    let mut in_flight = std::collections::VecDeque::new();
    for i in 0..12u64 {
        if in_flight.len() == 3 {
            let ticket: tensorswap_core::IoTicket<_, _> =
                in_flight.pop_front().expect("3 in flight");
            ticket.wait()?;
        }
        let mut lease = pool.lease();
        let len = slab - (i as usize % 3) * 1000; // some requests with unaligned tails
        lease.set_len(len)?;
        lease.copy_from_slice(&pattern(i, len));
        in_flight.push_back(engine.write(&file, i * slab as u64, lease)?);
    }
    for ticket in in_flight {
        ticket.wait()?;
    }
    for i in 0..12u64 {
        let mut lease = pool.lease();
        let len = slab - (i as usize % 3) * 1000;
        lease.set_len(len)?;
        let done = engine.read(&file, i * slab as u64, lease)?.wait()?;
        expect_bytes(&format!("slab request {i}"), &done.buf, &pattern(i, len))?;
        ctx.checked(1);
    }
    check!(
        pool.stats().leased == 0,
        "pool not whole: {:?}",
        pool.stats()
    );
    Ok(())
}
