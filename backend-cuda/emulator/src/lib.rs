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
//! - [`cufile`]: cuFile in its compat mode (no `nvidia-fs`): registered
//!   file handles, reads and writes between files and device memory by
//!   `pread` / `pwrite`, with the real short-read and error outcomes;
//!   [`cufile_api`]: its entry points, stream-ordered on the driver's
//!   streams.
//! - [`unsupported`]: every other entry point cudarc declares, each a
//!   refusal that names it and fails (`CUDA_ERROR_NOT_SUPPORTED`,
//!   `CU_FILE_IO_NOT_SUPPORTED`).
//!
//! The library is named `libcuda_emulator.so` so that nothing loads it by
//! accident; the `backend-cuda` test targets link it as `libcuda.so.1` and
//! `libcufile.so` in a private folder (one library: the loader opens it
//! once, so cuFile sees the driver's memory and streams).
//!
//! # Layers
//!
//! `result` (the driver's status codes) is the foundation; `heap`, `event`
//! and `stream` use it (`stream` uses `event`: waits are stream items);
//! `faults` uses `result`; `driver` uses those; `cufile` uses `heap`,
//! `result` and the driver's context id; `unsupported` uses `result` and
//! `cufile`'s statuses. `api` uses `driver` and `faults`, `cufile_api`
//! those and `cufile`; the two hold the crate's unsafe code, but for the
//! system calls `cufile` makes (`pread`, `pwrite`, `fcntl`, `fstat`, `open`).

pub mod api;
pub mod cufile;
pub mod cufile_api;
pub mod driver;
pub mod event;
pub mod faults;
pub mod heap;
pub mod result;
pub mod stream;
pub mod unsupported;
