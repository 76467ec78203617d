//! The storage layer: swap folders and files, and the asynchronous I/O
//! engines that move host buffers to and from them.
//!
//! - [`SwapDir`] / [`SwapFile`]: private folder, files opened once and
//!   unlinked at once (nothing left behind by a crash; [`StaleSweep`] removes
//!   the folders of dead processes), direct I/O decided per file system
//!   ([`DirectIo`], [`DioSupport`]); files the caller names, by path or
//!   descriptor ([`SwapFile::open_named`], [`NamedOptions`]), for the same
//!   engines, never unlinked.
//! - [`IoEngine`]: the engine contract; [`UringEngine`] (Linux io_uring),
//!   [`ThreadEngine`] (`pread`/`pwrite` threads), [`AnyEngine`] (chosen at run
//!   time), [`FaultyEngine`] (injects OS errors), [`ThrottledEngine`] (caps
//!   an engine at a set rate, like a slower drive).
//! - [`StripedFile`]: files in several folders (one per drive) seen as one
//!   address space, striped a unit at a time, each folder on its own engine.
//! - [`IoEngineExt`]: the safe layer; requests own their buffers until their
//!   [`IoTicket`] is waited.

mod any;
mod checksum;
mod dio;
mod dir;
mod engine;
mod ext;
mod faulty;
mod file;
mod folder;
mod named;
mod piece;
mod stale;
mod stripes;
mod threads;
mod throttled;
mod ticket;
mod uring;

pub use any::{AnyEngine, EngineKind};
pub use dio::{DioSupport, DirectIo};
pub use dir::{DirOptions, SwapDir};
pub use engine::{IoEngine, IoPending, IoRequest, Region};
pub use ext::{IoEngineExt, Submitted};
pub use faulty::{FaultyEngine, FaultyEnginePending};
pub use file::SwapFile;
pub use named::NamedOptions;
pub use stale::StaleSweep;
pub use stripes::{
    StripedFile, StripedSubmitted, StripedTicket, DEFAULT_STRIPE_UNIT, MIN_STRIPE_UNIT,
};
pub use threads::ThreadEngine;
pub use throttled::{ThrottledEngine, ThrottledPending};
pub use ticket::{wait_all_io, IoDone, IoFailed, IoResult, IoTicket};
pub use uring::UringEngine;
