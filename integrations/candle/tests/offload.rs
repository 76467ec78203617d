//! The offloader's round trips (every dtype, odd layouts, empty tensors)
//! and its refusals.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{raw_bytes, seeded, SIZED_DTYPES};
use tensorswap_candle::{Error, Offloader};
use tensorswap_swapper::TensorState;

fn offloader(dir: &std::path::Path) -> Offloader {
    Offloader::builder()
        .folder(dir)
        .slab_size(64 << 10)
        .slabs(4)
        .build()
        .expect("an offloader in a temporary folder")
}

/// A tensor of `dtype` with varied bytes (NaNs and all for the floats).
fn varied(dtype: DType, n: usize) -> anyhow::Result<Tensor> {
    let bytes: Vec<u8> = seeded(dtype as u64 + 11, n * 8)
        .into_iter()
        .map(|v| (v.to_bits() >> 7) as u8)
        .collect();
    let size = dtype.size_in_bytes().max(1);
    Ok(Tensor::from_raw_buffer(
        &bytes[..n * size],
        dtype,
        &[n],
        &Device::Cpu,
    )?)
}

#[test]
fn every_dtype_comes_back_bit_identical() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let off = offloader(dir.path());
    // Odd lengths, and one larger than a slab.
    for (i, &dtype) in SIZED_DTYPES.iter().enumerate() {
        for (j, n) in [1usize, 1000, 3 * 64 * 1024 / dtype.size_in_bytes() + 17]
            .into_iter()
            .enumerate()
        {
            let id = (i * 10 + j) as u64;
            let t = varied(dtype, n)?.reshape(if n % 2 == 0 { vec![2, n / 2] } else { vec![n] })?;
            off.swap_out(id, &t)?.wait()?;
            assert_eq!(off.status(id)?.state, TensorState::Stored);
            let back = off.swap_in(id)?;
            assert_eq!(
                (back.dtype(), back.dims(), back.device().location()),
                (dtype, t.dims(), t.device().location())
            );
            assert_eq!(raw_bytes(&back), raw_bytes(&t), "{dtype:?} x {n}");
            // The stored copy stays: a second swap-in reads it again.
            assert_eq!(raw_bytes(&off.swap_in(id)?), raw_bytes(&t));
        }
    }
    Ok(())
}

#[test]
fn packed_dtypes_go_as_whole_storages() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let off = offloader(dir.path());
    for (id, dtype) in [DType::F6E2M3, DType::F6E3M2, DType::F4]
        .into_iter()
        .enumerate()
    {
        let bytes: Vec<u8> = (0..96u8).map(|b| b.wrapping_mul(37)).collect();
        let t = Tensor::from_raw_buffer(&bytes, dtype, &[128], &Device::Cpu)?;
        off.swap_out(id as u64, &t)?.wait()?;
        let back = off.swap_in(id as u64)?;
        assert_eq!((back.dtype(), back.dims()), (dtype, &[128][..]));
        assert_eq!(raw_bytes(&back), bytes);
    }
    Ok(())
}

#[test]
fn views_and_empty_tensors_round_trip() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let off = offloader(dir.path());
    let base = Tensor::from_vec(seeded(5, 48 * 32), (48, 32), &Device::Cpu)?;
    let transposed = base.t()?;
    let narrowed = base.narrow(0, 5, 10)?;
    let empty = Tensor::zeros((0, 7), DType::BF16, &Device::Cpu)?;
    for (id, t) in [(1, &transposed), (2, &narrowed), (3, &empty)] {
        off.swap_out(id, t)?.wait()?;
        let back = off.swap_in(id)?;
        assert_eq!(back.dims(), t.dims());
        assert_eq!(raw_bytes(&back), raw_bytes(&t.contiguous()?), "tensor {id}");
    }
    Ok(())
}

#[test]
fn swap_in_right_after_swap_out_waits_for_the_write() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let off = offloader(dir.path());
    let t = Tensor::from_vec(seeded(9, 1 << 18), 1 << 18, &Device::Cpu)?;
    let ticket = off.swap_out(4, &t)?;
    let back = off.swap_in(4)?;
    assert_eq!(raw_bytes(&back), raw_bytes(&t));
    ticket.wait()?;
    Ok(())
}

#[test]
fn misuse_is_a_typed_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let off = offloader(dir.path());
    let t = Tensor::ones(16, DType::F32, &Device::Cpu)?;
    off.swap_out(1, &t)?.wait()?;
    assert!(matches!(
        off.swap_out(1, &t),
        Err(Error::DuplicateId { id: 1 })
    ));
    for result in [
        off.swap_in(2).map(drop),
        off.prefetch(&[1, 2]),
        off.remove(2),
        off.status(2).map(drop),
    ] {
        assert!(
            matches!(result, Err(Error::UnknownTensor { id: 2 })),
            "{result:?}"
        );
    }
    off.remove(1)?;
    assert!(matches!(
        off.swap_in(1),
        Err(Error::UnknownTensor { id: 1 })
    ));
    assert!(off.ids().is_empty());
    // The id is free again.
    off.swap_out(1, &t)?.wait()?;
    assert_eq!(off.ids(), [1]);
    Ok(())
}

#[test]
fn a_folder_that_cannot_hold_swap_files_is_an_error_with_its_path() {
    let result = Offloader::builder().folder("/proc/no-such-folder").build();
    let err = result.err().expect("no swap folder can be made in /proc");
    assert!(matches!(err, Error::Core(_)), "{err}");
    assert!(err.to_string().contains("/proc/no-such-folder"), "{err}");
}
