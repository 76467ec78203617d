//! A candle [`VarBuilder`] whose weights were read through tensorswap's
//! engine.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

use crate::load::{load_safetensors, LoadOptions};
use crate::Result;

/// The tensors of one or more safetensors files, read through tensorswap's
/// engine onto one device; served to candle as a [`SimpleBackend`], with the
/// same dtype conversion and shape checks as candle's mmap backend.
#[derive(Debug)]
pub struct EngineTensors {
    tensors: HashMap<String, Tensor>,
}

impl EngineTensors {
    /// Reads every tensor of `paths` onto `device`. A name in two files is
    /// taken from the later one, as candle's mmap loader does.
    pub fn load<P: AsRef<Path>>(
        paths: &[P],
        device: &Device,
        options: &LoadOptions,
    ) -> Result<Self> {
        let mut tensors = HashMap::new();
        for path in paths {
            tensors.extend(load_safetensors(path, device, options)?);
        }
        Ok(Self { tensors })
    }

    /// The tensor called `name`, as stored.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// How many tensors there are.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The tensors, by name.
    pub fn into_inner(self) -> HashMap<String, Tensor> {
        self.tensors
    }

    fn fetch(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let tensor =
            self.tensors
                .get(name)
                .ok_or_else(|| candle_core::Error::CannotFindTensor {
                    path: name.to_string(),
                })?;
        tensor.to_device(dev)?.to_dtype(dtype)
    }
}

impl SimpleBackend for EngineTensors {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.fetch(name, dtype, dev)?;
        if tensor.shape() != &s {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: s,
                got: tensor.shape().clone(),
            });
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.fetch(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

/// A [`VarBuilder`] over the safetensors files at `paths`, read through
/// tensorswap's engine onto `device`: the drop-in for candle's
/// `VarBuilder::from_mmaped_safetensors(paths, dtype, device)`.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use candle_core::{DType, Device, Tensor};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("w.safetensors");
/// let w = Tensor::arange(0f32, 6., &Device::Cpu)?.reshape((2, 3))?;
/// candle_core::safetensors::save(&std::collections::HashMap::from([("w", w.clone())]), &path)?;
///
/// let vb = tensorswap_candle::var_builder(&[&path], DType::F32, &Device::Cpu)?;
/// let got = vb.get((2, 3), "w")?;
/// assert_eq!(got.to_vec2::<f32>()?, w.to_vec2::<f32>()?);
/// # Ok(()) }
/// ```
pub fn var_builder<P: AsRef<Path>>(
    paths: &[P],
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    var_builder_with(paths, dtype, device, &LoadOptions::default())
}

/// [`var_builder`] with explicit read options.
pub fn var_builder_with<P: AsRef<Path>>(
    paths: &[P],
    dtype: DType,
    device: &Device,
    options: &LoadOptions,
) -> Result<VarBuilder<'static>> {
    let tensors = EngineTensors::load(paths, device, options)?;
    Ok(VarBuilder::from_backend(
        Box::new(tensors),
        dtype,
        device.clone(),
    ))
}
