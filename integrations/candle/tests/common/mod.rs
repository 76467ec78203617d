//! Helpers shared by the integration's tests: a tiny Llama with weights
//! from a fixed seed, and tensors compared bit for bit.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::llama::{Cache, Config, Llama, LlamaConfig};

/// candle's dtypes that have an element size.
pub(crate) const SIZED_DTYPES: [DType; 11] = [
    DType::U8,
    DType::U32,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::BF16,
    DType::F16,
    DType::F32,
    DType::F64,
    DType::F8E4M3,
    DType::F8E8M0,
];

/// A Llama small enough to run in a test: 2 blocks, 64 wide.
pub(crate) fn tiny_llama() -> Config {
    LlamaConfig {
        hidden_size: 64,
        intermediate_size: 160,
        vocab_size: 300,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        bos_token_id: None,
        eos_token_id: None,
        rope_scaling: None,
        max_position_embeddings: 64,
        tie_word_embeddings: Some(false),
    }
    .into_config(false)
}

/// Deterministic values in [-0.5, 0.5) from `seed` (xorshift).
pub(crate) fn seeded(seed: u64, n: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// Writes the tiny Llama's weights, in `dtype`, from seed 2026 to
/// `dir/model.safetensors`; candle makes the model, the seed the values.
pub(crate) fn write_llama(dir: &Path, dtype: DType) -> anyhow::Result<PathBuf> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu);
    Llama::load(vb, &tiny_llama())?;
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for (i, name) in names.into_iter().enumerate() {
        let var = &vars[name];
        let values = seeded(2026 + i as u64, var.elem_count());
        let value = Tensor::from_vec(values, var.shape(), &Device::Cpu)?.to_dtype(dtype)?;
        var.set(&value)?;
    }
    drop(vars);
    let path = dir.join("model.safetensors");
    varmap.save(&path)?;
    Ok(path)
}

/// The tiny Llama's logits for a fixed prompt, as f32 bits.
pub(crate) fn logits(vb: VarBuilder, dtype: DType) -> anyhow::Result<Vec<u32>> {
    let config = tiny_llama();
    let device = vb.device().clone();
    let model = Llama::load(vb, &config)?;
    let mut cache = Cache::new(false, dtype, &config, &device)?;
    let prompt = Tensor::new(&[[1u32, 17, 42, 99, 7, 250]], &device)?;
    let out = model.forward(&prompt, 0, &mut cache)?;
    let values = out.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(values.into_iter().map(f32::to_bits).collect())
}

/// The raw bytes of a CPU tensor: as candle saves them, or (for the
/// dtypes candle keeps as bytes, which it cannot save) its storage's.
pub(crate) fn raw_bytes(tensor: &Tensor) -> Vec<u8> {
    use candle_core::{CpuStorage, Storage};
    use safetensors::View;
    let (storage, _) = tensor.storage_and_layout();
    match &*storage {
        Storage::Cpu(
            CpuStorage::F8E8M0(v)
            | CpuStorage::F6E2M3(v)
            | CpuStorage::F6E3M2(v)
            | CpuStorage::F4(v),
        ) => v.clone(),
        _ => {
            drop(storage);
            tensor.data().into_owned()
        }
    }
}
