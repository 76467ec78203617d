//! Many transfers in flight, completion order, polling, and sharing across threads.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use tensorswap_core::{wait_all, Device, DeviceExt, Transfer};

use super::io::{filled, get};
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

/// Up to 32 uploads in flight at once, waited in a generated order, then read back.
pub fn many_in_flight_any_order<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    let sizes = prop::collection::vec(1usize..300_000, 1..32);
    ctx.proptest(
        (
            sizes,
            prop::collection::vec(any::<Index>(), 32),
            any::<u64>(),
        ),
        |(sizes, picks, seed)| {
            let mut in_flight: Vec<Option<(usize, Transfer<D, _>)>> = Vec::new();
            for (i, &len) in sizes.iter().enumerate() {
                let mut host = dev.alloc_host(len)?;
                host.copy_from_slice(&pattern(seed + i as u64, len));
                in_flight.push(Some((i, dev.upload(host, dev.alloc(len)?, 0)?)));
            }
            // Wait in the generated order: take the picks-th still pending ticket each time.
            let mut landed = Vec::new();
            for pick in picks.iter().cycle().take(sizes.len()) {
                let pending: Vec<usize> = (0..in_flight.len())
                    .filter(|&k| in_flight[k].is_some())
                    .collect();
                let k = pending[pick.index(pending.len())];
                if let Some((i, ticket)) = in_flight[k].take() {
                    landed.push((i, ticket.wait()?.device));
                }
            }
            for (i, buf) in landed {
                let (_, back) = get(&dev, buf, 0, sizes[i])?;
                expect_bytes(
                    &format!("transfer {i}"),
                    &back,
                    &pattern(seed + i as u64, sizes[i]),
                )?;
            }
            Ok(())
        },
    )
}

/// Where the backend claims ordered transfers, no ticket completes before one
/// submitted earlier (uploads and downloads mixed).
pub fn ordered_when_claimed<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    if !dev.capabilities().ordered_transfers {
        return Ok(());
    }
    let len = 1 << 20;
    for round in 0..8u64 {
        let mut tickets = Vec::new();
        for k in 0..6u64 {
            let mut host = dev.alloc_host(len)?;
            host.copy_from_slice(&pattern(round * 8 + k, len));
            tickets.push(if k % 2 == 0 {
                dev.upload(host, dev.alloc(len)?, 0)?
            } else {
                dev.download(filled(&dev, &pattern(k, len))?, 0, host)?
            });
        }
        let started = Instant::now();
        loop {
            // Scan newest first: once a ticket is seen complete, every older
            // one must already be complete when looked at afterwards.
            let mut newer_complete = None;
            for (i, ticket) in tickets.iter().enumerate().rev() {
                let complete = ticket.is_complete();
                if let Some(newer) = newer_complete {
                    check!(
                        complete,
                        "transfer {newer} completed before transfer {i}, submitted earlier"
                    );
                } else if complete {
                    newer_complete = Some(i);
                }
            }
            if newer_complete == Some(tickets.len() - 1) {
                break;
            }
            check!(
                started.elapsed() < Duration::from_secs(30),
                "transfers never completed"
            );
            std::thread::yield_now();
        }
        for outcome in wait_all(tickets) {
            outcome?;
        }
        ctx.checked(1);
    }
    Ok(())
}

/// `try_wait` hands the ticket back until the copy is done, then the buffers.
pub fn poll_until_complete<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    let len = 4 << 20;
    let data = pattern(9, len);
    let mut host = dev.alloc_host(len)?;
    host.copy_from_slice(&data);
    let mut ticket = dev.upload(host, dev.alloc(len)?, 0)?;
    let started = Instant::now();
    let done = loop {
        match ticket.try_wait() {
            Ok(outcome) => break outcome?,
            Err(pending) => {
                check!(
                    started.elapsed() < Duration::from_secs(30),
                    "transfer never completed"
                );
                ticket = pending;
                std::thread::yield_now();
            }
        }
    };
    let (_, back) = get(&dev, done.device, 0, len)?;
    expect_bytes("polled upload", &back, &data)?;
    let mut tickets = Vec::new();
    for i in 0..4u64 {
        tickets.push(dev.download(filled(&dev, &pattern(i, 4096))?, 0, vec![0u8; 4096])?);
    }
    let outcomes = wait_all(tickets);
    for (i, outcome) in outcomes.into_iter().enumerate() {
        expect_bytes(
            "wait_all download",
            &outcome?.host,
            &pattern(i as u64, 4096),
        )?;
    }
    ctx.checked(5);
    Ok(())
}

/// Four threads share one device, each with its own buffers.
pub fn four_threads<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4u64)
            .map(|t| {
                let dev = &dev;
                scope.spawn(move || -> Outcome {
                    for i in 0..16u64 {
                        let len = 1 + ((t * 7919 + i * 104_729) % 300_000) as usize;
                        let data = pattern(t << 32 | i, len);
                        let buf = filled(dev, &data)?;
                        let (_, back) = get(dev, buf, 0, len)?;
                        expect_bytes(&format!("thread {t} round {i}"), &back, &data)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| CaseError("a worker thread panicked".into()))??;
        }
        Ok::<(), CaseError>(())
    })?;
    ctx.checked(64);
    Ok(())
}
