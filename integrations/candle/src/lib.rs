//! tensorswap for [candle](https://github.com/huggingface/candle): swap
//! candle tensors to NVMe and back, load safetensors models through
//! tensorswap's engine, stream layers under a memory budget.
//!
//! - [`Offloader`]: candle `Tensor`s swapped out by id (CPU storage, and
//!   CUDA storage with the `cuda` feature; every dtype), prefetched, and
//!   swapped back in bit-identical.
//! - [`var_builder`]: a candle `VarBuilder` whose weights were read from
//!   safetensors files by tensorswap's engine (pinned slabs, direct I/O,
//!   several reads in flight, each tensor built while the next reads run),
//!   so `candle_transformers` models load through it unchanged.
//! - [`load_safetensors`]: the same reads, as a map of tensors.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use candle_core::{DType, Device, Tensor};
//! let folder = tempfile::tempdir()?;
//! let offloader = tensorswap_candle::Offloader::builder().folder(folder.path()).build()?;
//! let w = Tensor::ones((256, 256), DType::F16, &Device::Cpu)?;
//! offloader.swap_out(7, &w)?.wait()?;
//! drop(w); // its memory is free now; the bytes are on disk
//! let w = offloader.swap_in(7)?;
//! assert_eq!(w.dims(), [256, 256]);
//! # Ok(()) }
//! ```
//!
//! # Layers: what each module may use
//!
//! 1. `raw` (the crate's unsafe code: plain element types as bytes) and
//!    `error` ([`Error`]): candle, `half`, `float8` and tensorswap-core's errors.
//! 2. `host` (CPU tensors as bytes, tensors assembled from bytes) and
//!    `header` (safetensors headers): layer 1.
//! 3. `load` ([`load_safetensors`], [`LoadOptions`]) and `var_builder`
//!    ([`var_builder`], [`EngineTensors`]): layers 1-2 and tensorswap-core's
//!    storage and pools.
//! 4. `swapping` (a store from the settings, a swap-out started and
//!    settled: what every device kind shares): layers 1-2 and the
//!    swappers (`tensorswap-swapper`).
//! 5. `cuda` (with the `cuda` feature: the CUDA side of the offloader, on
//!    `tensorswap-cuda`), then `offload` ([`Offloader`]): the layers
//!    below; `offload` uses `cuda`, never the other way round.

#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "cuda")]
mod cuda;
mod error;
mod header;
mod host;
mod load;
mod offload;
mod raw;
mod swapping;
mod var_builder;

pub use error::{Error, Result};
pub use load::{load_safetensors, LoadOptions};
pub use offload::{OffloadStatus, Offloader, OffloaderBuilder};
pub use var_builder::{var_builder, var_builder_with, EngineTensors};

/// The Rust blocks of this crate's README, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
