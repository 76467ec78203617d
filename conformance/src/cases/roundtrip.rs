//! Bytes written to the device come back identical, at any size and offset.

use proptest::prelude::*;
use tensorswap_core::{Device, DeviceExt, HostBuffer, HostTensor};

use super::io::{filled, get, put};
use crate::{check, expect_bytes, pattern, Ctx, Outcome};

/// Uploads `len` bytes at `offset` into a buffer pre-filled with other bytes,
/// and checks the range and both untouched margins.
fn roundtrip_at<D: Device>(dev: &D, len: usize, offset: usize, slack: usize, seed: u64) -> Outcome {
    let total = offset + len + slack;
    let before = pattern(seed ^ 0xA5A5, total);
    let data = pattern(seed, len);
    let buf = filled(dev, &before)?;
    let buf = put(dev, &data, buf, offset)?;
    let (buf, range) = get(dev, buf, offset, len)?;
    expect_bytes("range read back", &range, &data)?;
    let (_, whole) = get(dev, buf, 0, total)?;
    expect_bytes(
        "bytes before the range",
        &whole[..offset],
        &before[..offset],
    )?;
    expect_bytes(
        "bytes after the range",
        &whole[offset + len..],
        &before[offset + len..],
    )
}

/// Sizes 0, 1, odd, page-aligned and multi-MiB at offsets 0, 1, odd and a page.
pub fn edge_sizes<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    let sizes = [0, 1, 3, 4095, 4096, 4097, 65_537, (1 << 20) + 7, 8 << 20];
    for (i, &len) in sizes.iter().enumerate() {
        for offset in [0, 1, 7, 4096] {
            roundtrip_at(&dev, len, offset, 5, (i * 31 + offset) as u64)
                .map_err(|e| crate::CaseError(format!("len {len} offset {offset}: {e}")))?;
            ctx.checked(1);
        }
    }
    Ok(())
}

/// Generated sizes (weighted towards small and odd) and offsets.
pub fn random_sizes<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    let len = prop_oneof![0usize..64, 64usize..70_000, 70_000usize..(3 << 20)];
    ctx.proptest(
        (len, 0usize..10_000, 0usize..64, any::<u64>()),
        |(len, offset, slack, seed)| roundtrip_at(&dev, len, offset, slack, seed),
    )
}

/// Any `HostBuf` works as a source or destination: `HostBuffer`, `Vec<T: Pod>`, `Box<[T]>`.
pub fn host_buffer_kinds<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    let words: Vec<u32> = (0..1001u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let bytes: &[u8] = bytemuck::cast_slice(&words);
    let mem = dev
        .upload_blocking(words.clone(), dev.alloc(bytes.len())?, 0)?
        .device;
    let back = dev.download_blocking(mem, 0, vec![0u32; 1001].into_boxed_slice())?;
    check!(
        *back.host == *words,
        "u32 words changed in a Vec -> Box<[u32]> round trip"
    );
    let plain = HostBuffer::new(bytes.len())?;
    let back = dev.download_blocking(back.device, 0, plain)?;
    expect_bytes("unregistered HostBuffer", &back.host, bytes)?;
    ctx.checked(2);
    Ok(())
}

/// Typed views keep the logical length apart from the padded one; the padding
/// is neither transferred nor overwritten.
pub fn typed_views<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    let align = dev.capabilities().host_alignment;
    for len in [0usize, 1, 7, 1000, 4097] {
        let padded = tensorswap_core::padded_len(HostTensor::<f32>::bytes_for(len)?, align)?;
        let mut src = HostTensor::<f32>::new(dev.alloc_host(padded)?, len)?;
        for (i, x) in src.as_mut_slice().iter_mut().enumerate() {
            *x = i as f32 * 0.5 - 3.0;
        }
        let want = src.as_slice().to_vec();
        check!(
            src.padded_bytes() == padded,
            "padded length {} != {padded}",
            src.padded_bytes()
        );
        let done = dev.upload_blocking(src, dev.alloc(len * 4)?, 0)?;
        check!(
            done.device.len() == len * 4,
            "device buffer holds the logical bytes only"
        );
        let mut dst_buf = dev.alloc_host(padded)?;
        dst_buf.fill(0xEE);
        let dst = HostTensor::<f32>::new(dst_buf, len)?;
        let back = dev.download_blocking(done.device, 0, dst)?.host;
        check!(
            back.as_slice() == want.as_slice(),
            "f32 tensor of {len} changed"
        );
        let pad = &back.buffer()[back.logical_bytes()..];
        check!(
            pad.iter().all(|&b| b == 0xEE),
            "padding of a {len}-element tensor was written"
        );
        ctx.checked(1);
    }
    let halves: Vec<u16> = (0..513).collect();
    let mem = dev
        .upload_blocking(halves.clone(), dev.alloc(1026)?, 0)?
        .device;
    let back = dev.download_blocking(mem, 0, vec![0u16; 513])?.host;
    check!(back == halves, "u16 (f16/bf16 bits) tensor changed");
    ctx.checked(1);
    Ok(())
}
