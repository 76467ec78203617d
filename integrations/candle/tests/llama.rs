//! A `candle_transformers` Llama loaded through tensorswap gives the very
//! logits it gives when loaded by candle's own mmap loader; and again after
//! every weight went to disk through the offloader and back.

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use common::{logits, raw_bytes, write_llama};
use tensorswap_candle::{EngineTensors, LoadOptions, Offloader};

fn candle_logits(path: &std::path::Path, dtype: DType) -> anyhow::Result<Vec<u32>> {
    // SAFETY: the file is not modified while mapped (the test wrote it).
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[path], dtype, &Device::Cpu)? };
    logits(vb, dtype)
}

#[test]
fn logits_match_candles_mmap_loader_bit_for_bit() -> anyhow::Result<()> {
    for dtype in [DType::F32, DType::BF16] {
        let dir = tempfile::tempdir()?;
        let path = write_llama(dir.path(), dtype)?;
        let expected = candle_logits(&path, dtype)?;
        let weights = candle_core::safetensors::load(&path, &Device::Cpu)?;
        // Default reads, then small slabs: tensors cut across many reads.
        for options in [
            LoadOptions::default(),
            LoadOptions::default().slab_size(8192).slabs(3),
        ] {
            // Every weight byte for byte (a flipped low bit can round away
            // in the logits), then the logits.
            let ours = EngineTensors::load(&[&path], &Device::Cpu, &options)?;
            assert_eq!(ours.len(), weights.len());
            for (name, want) in &weights {
                let got = ours
                    .get(name)
                    .ok_or_else(|| anyhow::anyhow!("{name} is missing"))?;
                assert!(
                    raw_bytes(got) == raw_bytes(want),
                    "{name} differs ({dtype:?}, {options:?})"
                );
            }
            let vb = tensorswap_candle::var_builder_with(&[&path], dtype, &Device::Cpu, &options)?;
            assert_eq!(logits(vb, dtype)?, expected, "{dtype:?} {options:?}");
        }
    }
    Ok(())
}

#[test]
fn logits_survive_every_weight_swapped_out_and_in() -> anyhow::Result<()> {
    let dtype = DType::F32;
    let dir = tempfile::tempdir()?;
    let path = write_llama(dir.path(), dtype)?;
    let expected = candle_logits(&path, dtype)?;

    let weights =
        EngineTensors::load(&[&path], &Device::Cpu, &LoadOptions::default())?.into_inner();
    let offloader = Offloader::builder().folder(dir.path()).build()?;
    let mut names: Vec<String> = weights.keys().cloned().collect();
    names.sort();
    let mut tickets = Vec::new();
    for (id, name) in names.iter().enumerate() {
        tickets.push(offloader.swap_out(id as u64, &weights[name])?);
    }
    let expected_bytes: HashMap<String, Vec<u8>> = weights
        .iter()
        .map(|(n, t)| (n.clone(), raw_bytes(t)))
        .collect();
    drop(weights);
    for ticket in tickets {
        ticket.wait()?;
    }
    let ids = offloader.ids();
    assert_eq!(ids.len(), names.len());
    offloader.prefetch(&ids)?;
    let back: HashMap<String, Tensor> = names
        .iter()
        .enumerate()
        .map(|(id, name)| Ok((name.clone(), offloader.swap_in(id as u64)?)))
        .collect::<anyhow::Result<_>>()?;
    for (name, tensor) in &back {
        assert!(
            raw_bytes(tensor) == expected_bytes[name],
            "{name} came back different"
        );
    }
    let vb = VarBuilder::from_tensors(back, dtype, &Device::Cpu);
    assert_eq!(logits(vb, dtype)?, expected);
    Ok(())
}
