//! A strict CPU emulation of the CUDA driver, for running `backend-cuda`
//! where there is no GPU (issue 16). This is its core, in safe Rust:
//!
//! - [`heap`]: device memory as host memory behind opaque device addresses;
//!   every access is checked against the live allocations (out of bounds,
//!   freed, another context's: refused, and said loudly).
//! - [`stream`]: streams that run their work asynchronously, in order, on
//!   their own threads, each item after a random delay drawn from a seeded
//!   generator ([`stream::seed`]: `TENSORSWAP_CUDA_EMULATOR_SEED`, printed),
//!   so that work on two streams really overlaps.
//! - [`event`]: events recorded on a stream and waited for by the host or
//!   by another stream.
//!
//! - [`driver`]: one device, its primary context, and the live streams,
//!   events and host registrations by handle; work that fails on a stream
//!   leaves a sticky error.
//! - [`api`]: the driver entry points cudarc and `backend-cuda` call.
//! - [`faults`]: the Nth call of an entry point fails on demand
//!   (`TENSORSWAP_CUDA_EMULATOR_FAULTS`, or `tensorswap_emulator_arm_fault`).
//!
//! - [`unsupported`]: every other entry point cudarc declares, each a
//!   refusal that names it and returns `CUDA_ERROR_NOT_SUPPORTED`.
//!
//! Still to come (issue 16): cuFile. The library is named
//! `libcuda_emulator.so` so that nothing loads it by accident; the
//! `backend-cuda` test targets link it as `libcuda.so.1` in a private
//! folder.
//!
//! # Layers
//!
//! `result` (the driver's status codes) is the foundation; `heap`, `event`
//! and `stream` use it (`stream` uses `event`: waits are stream items);
//! `faults` and `unsupported` use `result`; `driver` uses those; `api`
//! uses `driver` and `faults`, and holds the crate's unsafe code.

pub mod api;
pub mod driver;
pub mod event;
pub mod faults;
pub mod heap;
pub mod result;
pub mod stream;
pub mod unsupported;
