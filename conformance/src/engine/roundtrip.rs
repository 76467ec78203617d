//! Bytes written come back identical: edge sizes, random requests, sub-ranges,
//! offsets above 4 GiB.

use proptest::prelude::*;
use tensorswap_core::{IoEngine, IoEngineExt, SwapFile};

use super::scratch::{both_policies, scratch};
use crate::{check, expect_bytes, pattern, Ctx, Outcome};

/// Writes `data` at `offset`, reads it back into a fresh buffer, compares.
pub(crate) fn round_trip<E: IoEngine>(
    engine: &E,
    file: &SwapFile,
    offset: u64,
    data: Vec<u8>,
) -> Outcome {
    let len = data.len();
    let written = engine.write(file, offset, data)?.wait()?;
    let back = engine.read(file, offset, vec![0u8; len])?.wait()?;
    expect_bytes(
        &format!("{len} bytes at offset {offset}"),
        &back.buf,
        &written.buf,
    )
}

/// Sizes around every boundary (0, 1, sector, page, block, several blocks)
/// at aligned and unaligned offsets, under direct and buffered I/O.
pub fn edge_sizes<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    let block = engine.config().block_size;
    let sizes = [
        0,
        1,
        511,
        512,
        4095,
        4096,
        4097,
        block - 1,
        block,
        block + 1,
        3 * block + 17,
    ];
    for options in both_policies() {
        let s = scratch(options)?;
        let file = s.dir.create_file()?;
        for (i, &len) in sizes.iter().enumerate() {
            for offset in [0u64, 1, 4096, 3 * 4096 + 513] {
                round_trip(
                    &engine,
                    &file,
                    offset,
                    pattern((i as u64) << 8 | offset, len),
                )?;
                ctx.checked(1);
            }
        }
    }
    Ok(())
}

/// Random sizes and offsets (proptest), several requests per file.
pub fn random_requests<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    let block = engine.config().block_size;
    let s = scratch(Default::default())?;
    let file = s.dir.create_file()?;
    let strategy = (0..4 * block, 0u64..(1 << 24), any::<u64>(), any::<bool>());
    ctx.proptest(strategy, |(len, offset, seed, page_aligned)| {
        let offset = if page_aligned { offset & !4095 } else { offset };
        round_trip(&engine, &file, offset, pattern(seed, len))
    })
}

/// Several tensors at different offsets of one file, then sub-ranges of them.
pub fn sub_ranges<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    let s = scratch(Default::default())?;
    let file = s.dir.create_file()?;
    let parts: Vec<(u64, Vec<u8>)> = [(0u64, 70_000usize), (70_000, 4096), (1 << 20, 300_001)]
        .iter()
        .enumerate()
        .map(|(i, &(off, len))| (off, pattern(100 + i as u64, len)))
        .collect();
    let tickets = parts
        .iter()
        .map(|(off, data)| engine.write(&file, *off, data.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    for ticket in tickets {
        ticket.wait()?;
    }
    for (off, data) in &parts {
        for (start, len) in [(0, data.len()), (1, data.len() / 2), (data.len() / 3, 17)] {
            let len = len.min(data.len() - start);
            let got = engine
                .read(&file, off + start as u64, vec![0u8; len])?
                .wait()?;
            expect_bytes(
                &format!("sub-range {start}+{len} of the part at {off}"),
                &got.buf,
                &data[start..start + len],
            )?;
            ctx.checked(1);
        }
    }
    Ok(())
}

/// A sparse file larger than 4 GiB, written and read at offsets above 2^32
/// (no 32-bit size or offset truncation anywhere).
pub fn sparse_beyond_4gib<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    for options in both_policies() {
        let s = scratch(options)?;
        let file = s.dir.create_file()?;
        let offsets = [(1u64 << 31) - 4096, 1 << 32, (5 << 30) + 12345];
        for (i, &offset) in offsets.iter().enumerate() {
            round_trip(&engine, &file, offset, pattern(i as u64, (1 << 20) + 3))?;
            ctx.checked(1);
        }
        let len = file.len()?;
        check!(
            len == (5 << 30) + 12345 + (1 << 20) + 3,
            "file length {len} after writing at 5 GiB"
        );
        let low = engine.read(&file, 4096, vec![1u8; 4096])?.wait()?;
        check!(
            low.buf.iter().all(|&b| b == 0),
            "a hole of the sparse file did not read as zeros"
        );
    }
    Ok(())
}
