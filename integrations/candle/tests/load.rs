//! Loading safetensors files through the engine: what it reads, and every
//! way a file can be wrong.

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use common::{raw_bytes, seeded};
use tensorswap_candle::{load_safetensors, var_builder, Error, LoadOptions};

fn save(path: &std::path::Path, tensors: &[(&str, Tensor)]) -> anyhow::Result<()> {
    let map: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    candle_core::safetensors::save(&map, path)?;
    Ok(())
}

#[test]
fn every_tensor_of_a_file_is_read_as_candle_reads_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("mixed.safetensors");
    let cpu = &Device::Cpu;
    let f = Tensor::from_vec(seeded(1, 70_001), 70_001, cpu)?;
    save(
        &path,
        &[
            ("big", f.clone()),
            ("half", f.narrow(0, 0, 3001)?.to_dtype(DType::F16)?),
            (
                "brain",
                f.narrow(0, 0, 999)?
                    .to_dtype(DType::BF16)?
                    .reshape((3, 333))?,
            ),
            ("f8", f.narrow(0, 0, 77)?.to_dtype(DType::F8E4M3)?),
            ("ints", Tensor::arange(0i64, 513, cpu)?),
            ("bytes", Tensor::arange(0u8, 200, cpu)?),
            ("empty", Tensor::zeros((0, 4), DType::F32, cpu)?),
        ],
    )?;
    let expected = candle_core::safetensors::load(&path, cpu)?;
    for options in [
        LoadOptions::default(),
        LoadOptions::default().slab_size(4096).slabs(2),
    ] {
        let ours = load_safetensors(&path, cpu, &options)?;
        assert_eq!(ours.len(), expected.len());
        for (name, want) in &expected {
            let got = &ours[name];
            assert_eq!(
                (got.dtype(), got.dims()),
                (want.dtype(), want.dims()),
                "{name}"
            );
            assert_eq!(raw_bytes(got), raw_bytes(want), "{name} with {options:?}");
        }
    }
    Ok(())
}

#[test]
fn the_var_builder_converts_and_checks_as_candles_does() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("w.safetensors");
    let w = Tensor::from_vec(seeded(3, 12), (3, 4), &Device::Cpu)?;
    save(&path, &[("layer.w", w.clone())])?;
    let vb = var_builder(&[&path], DType::F16, &Device::Cpu)?;
    let got = vb.pp("layer").get((3, 4), "w")?;
    assert_eq!(raw_bytes(&got), raw_bytes(&w.to_dtype(DType::F16)?));
    assert!(vb.contains_tensor("layer.w") && !vb.contains_tensor("layer.b"));
    let shape = vb.get((4, 3), "layer.w").unwrap_err().to_string();
    assert!(shape.contains("shape mismatch for layer.w"), "{shape}");
    let missing = vb.get(3, "layer.b").unwrap_err().to_string();
    assert!(missing.contains("layer.b"), "{missing}");
    Ok(())
}

#[test]
fn a_file_without_tensors_gives_none() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("none.safetensors");
    let mut bytes = 2u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&path, bytes)?;
    assert!(load_safetensors(&path, &Device::Cpu, &LoadOptions::default())?.is_empty());
    Ok(())
}

#[test]
fn a_damaged_file_is_a_format_error_not_a_short_tensor() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let good = dir.path().join("good.safetensors");
    save(
        &good,
        &[("w", Tensor::from_vec(seeded(4, 5000), 5000, &Device::Cpu)?)],
    )?;
    let bytes = std::fs::read(&good)?;
    let header_len = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "truncated",
            bytes[..bytes.len() - 100].to_vec(),
            "of a data section",
        ),
        ("tiny", bytes[..5].to_vec(), "too short for a header length"),
        (
            "header past the end",
            [&(1u64 << 40).to_le_bytes()[..], &bytes[8..]].concat(),
            "the header claims",
        ),
        (
            "header cut",
            bytes[..8 + header_len / 2].to_vec(),
            "the header claims",
        ),
        (
            "not json",
            [
                &bytes[..8],
                &vec![b'x'; header_len][..],
                &bytes[8 + header_len..],
            ]
            .concat(),
            "not JSON",
        ),
    ];
    for (what, content, expected) in cases {
        let path = dir.path().join(what);
        std::fs::write(&path, content)?;
        let err = load_safetensors(&path, &Device::Cpu, &LoadOptions::default()).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{what}: {err}");
        let message = err.to_string();
        assert!(
            message.contains(expected) && message.contains(what),
            "{what}: {message}"
        );
    }
    Ok(())
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let err = load_safetensors(
        "/no/such/model.safetensors",
        &Device::Cpu,
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Core(_)), "{err}");
    assert!(
        err.to_string().contains("/no/such/model.safetensors"),
        "{err}"
    );
}
