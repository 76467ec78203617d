//! The offloader and the loader on a CUDA device: every dtype round trip,
//! no device copy, and the tiny Llama's logits through both loaders.
//!
//! Needs the `cuda` feature and a GPU; otherwise every test is reported
//! ignored with the reason, and `TENSORSWAP_REQUIRE=cuda` makes that a
//! failure.

use libtest_mimic::{Arguments, Failed, Trial};

#[cfg(feature = "cuda")]
mod common;

#[cfg(feature = "cuda")]
mod on_gpu {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarBuilder;
    use libtest_mimic::Failed;
    use tensorswap_candle::{LoadOptions, Offloader};

    use crate::common::{logits, raw_bytes, seeded, write_llama, SIZED_DTYPES};

    pub(crate) fn device() -> Result<Device, String> {
        Device::new_cuda(0).map_err(|e| {
            let first = e.to_string().lines().next().unwrap_or_default().to_owned();
            format!("no CUDA device: {first}")
        })
    }

    fn err(e: impl std::fmt::Display) -> Failed {
        e.to_string().into()
    }

    pub(crate) fn every_dtype_round_trips() -> Result<(), Failed> {
        let gpu = device()?;
        let dir = tempfile::tempdir().map_err(err)?;
        let off = Offloader::builder()
            .folder(dir.path())
            .build()
            .map_err(err)?;
        for (id, dtype) in SIZED_DTYPES.into_iter().enumerate() {
            let id = id as u64;
            let n = (3 << 20) / dtype.size_in_bytes() + 5;
            let host = Tensor::from_vec(seeded(id, n), n, &Device::Cpu)
                .and_then(|t| t.to_dtype(dtype))
                .map_err(err)?;
            let on_gpu = host.to_device(&gpu).map_err(err)?;
            off.swap_out(id, &on_gpu)
                .map_err(err)?
                .wait()
                .map_err(err)?;
            drop(on_gpu);
            let back = off.swap_in(id).map_err(err)?;
            if !back.device().same_device(&gpu)
                || back.dtype() != dtype
                || back.dims() != host.dims()
            {
                return Err(format!(
                    "{dtype:?}: came back as {:?} {:?} on {:?}",
                    back.dtype(),
                    back.dims(),
                    back.device()
                )
                .into());
            }
            let back = back.to_device(&Device::Cpu).map_err(err)?;
            if raw_bytes(&back) != raw_bytes(&host) {
                return Err(format!("{dtype:?}: bytes differ after the round trip").into());
            }
        }
        // A transposed view is made contiguous first.
        let m = Tensor::from_vec(seeded(7, 64 * 48), (64, 48), &gpu).map_err(err)?;
        off.swap_out(100, &m.t().map_err(err)?)
            .map_err(err)?
            .wait()
            .map_err(err)?;
        let back = off
            .swap_in(100)
            .map_err(err)?
            .to_device(&Device::Cpu)
            .map_err(err)?;
        let want = m
            .t()
            .and_then(|t| t.contiguous())
            .and_then(|t| t.to_device(&Device::Cpu))
            .map_err(err)?;
        if raw_bytes(&back) != raw_bytes(&want) {
            return Err("a transposed tensor came back different".into());
        }
        Ok(())
    }

    pub(crate) fn llama_logits_match() -> Result<(), Failed> {
        let gpu = device()?;
        let dir = tempfile::tempdir().map_err(err)?;
        let dtype = DType::F32;
        let path = write_llama(dir.path(), dtype).map_err(err)?;
        // SAFETY: the test wrote the file and does not change it.
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[&path], dtype, &gpu) }.map_err(err)?;
        let expected = logits(vb, dtype).map_err(err)?;
        let vb =
            tensorswap_candle::var_builder_with(&[&path], dtype, &gpu, &LoadOptions::default())
                .map_err(err)?;
        if logits(vb, dtype).map_err(err)? != expected {
            return Err(
                "logits through tensorswap differ from candle's mmap loader on the GPU".into(),
            );
        }
        Ok(())
    }
}

/// A test that runs only on a GPU.
type GpuTest = fn() -> Result<(), Failed>;

fn main() {
    let args = Arguments::from_args();
    let tests: Vec<(&str, GpuTest)> = vec![
        #[cfg(feature = "cuda")]
        (
            "cuda::every_dtype_round_trips",
            on_gpu::every_dtype_round_trips,
        ),
        #[cfg(feature = "cuda")]
        ("cuda::llama_logits_match", on_gpu::llama_logits_match),
    ];
    #[cfg(feature = "cuda")]
    let unavailable = on_gpu::device().err();
    #[cfg(not(feature = "cuda"))]
    let unavailable = Some(String::from("built without the cuda feature"));
    let required =
        std::env::var("TENSORSWAP_REQUIRE").is_ok_and(|v| v.split(',').any(|n| n.trim() == "cuda"));
    let trials: Vec<Trial> = match &unavailable {
        None => tests
            .into_iter()
            .map(|(name, run)| Trial::test(name, run))
            .collect(),
        Some(reason) if required => {
            let reason = format!("TENSORSWAP_REQUIRE names cuda, but {reason}");
            vec![Trial::test("cuda::required", move || Err(reason.into()))]
        }
        Some(reason) => {
            eprintln!("skipped: the candle CUDA tests: {reason}");
            tests
                .into_iter()
                .map(|(name, _)| Trial::test(name, || Ok(())).with_ignored_flag(true))
                .collect()
        }
    };
    libtest_mimic::run(&args, trials).exit();
}
