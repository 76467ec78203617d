//! The safe, ownership-taking API over any [`IoEngine`]: [`IoEngineExt`].

use std::io;
use std::ptr::NonNull;
use std::time::Instant;

use super::engine::{IoEngine, IoRequest};
use super::file::SwapFile;
use super::ticket::{IoFailed, IoTicket};
use crate::Rejected;
use crate::{Error, HostBuf, HostBufMut, IoOp};

/// What submitting a request gives: its ticket, or the buffer back with the error.
pub type Submitted<E, B> = Result<IoTicket<<E as IoEngine>::Pending, B>, IoFailed<B>>;

/// Reads and writes of owned host buffers, for every [`IoEngine`].
///
/// Each call moves the buffer into an [`IoTicket`] until the request
/// finishes. A write moves all of `buf.bytes_len()` bytes; a read fills all
/// of the buffer or fails with [`Error::ShortIo`].
///
/// ```
/// use tensorswap_core::{AioConfig, AnyEngine, EngineKind, IoEngineExt, SwapDir};
/// let parent = tempfile::tempdir()?;
/// let dir = SwapDir::create(parent.path())?;
/// let file = dir.create_file()?;
/// let engine = AnyEngine::new(EngineKind::Auto, &AioConfig::default())?;
///
/// let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
/// let written = engine.write(&file, 4096, data)?.wait()?;
/// let back = engine.read(&file, 4096, vec![0u8; 10_000])?.wait()?;
/// assert_eq!(back.buf, written.buf);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait IoEngineExt: IoEngine + Sized {
    /// Starts writing all of `buf` to `file` at `offset`.
    fn write<B: HostBuf>(&self, file: &SwapFile, offset: u64, buf: B) -> Submitted<Self, B> {
        submit(self, IoOp::Write, file, offset, buf, false)
    }

    /// Starts replacing the whole contents of `file` with `buf`: written at
    /// offset 0, then the file is cut to `buf`'s length, so no stale tail of
    /// an earlier, longer write survives.
    fn replace<B: HostBuf>(&self, file: &SwapFile, buf: B) -> Submitted<Self, B> {
        submit(self, IoOp::Write, file, 0, buf, true)
    }

    /// Starts filling all of `buf` from `file` at `offset`.
    fn read<B: HostBufMut>(&self, file: &SwapFile, offset: u64, mut buf: B) -> Submitted<Self, B> {
        // The pointer must come from the mutable accessor: the kernel writes there.
        let ptr = buf.stable_mut_ptr();
        submit_at(self, IoOp::Read, file, offset, buf, ptr, false)
    }
}

impl<E: IoEngine> IoEngineExt for E {}

fn submit<E: IoEngine, B: HostBuf>(
    engine: &E,
    op: IoOp,
    file: &SwapFile,
    offset: u64,
    buf: B,
    truncate: bool,
) -> Submitted<E, B> {
    let ptr = buf.stable_ptr().cast_mut();
    submit_at(engine, op, file, offset, buf, ptr, truncate)
}

fn submit_at<E: IoEngine, B: HostBuf>(
    engine: &E,
    op: IoOp,
    file: &SwapFile,
    offset: u64,
    buf: B,
    ptr: *mut u8,
    truncate: bool,
) -> Submitted<E, B> {
    let len = buf.bytes_len();
    let fits = offset
        .checked_add(len as u64)
        .is_some_and(|end| end <= i64::MAX as u64);
    if !fits {
        let error = Error::Io {
            op,
            path: file.path().to_path_buf(),
            offset,
            len,
            cause: io::Error::new(
                io::ErrorKind::InvalidInput,
                "offset + length is beyond the largest file offset",
            ),
        };
        return Err(Rejected { error, value: buf });
    }
    // The engine's pieces record (writes) and verify (reads) the file's
    // CRCs as they finish (storage/piece.rs).
    let request = IoRequest {
        op,
        file: file.clone(),
        offset,
        buf: NonNull::new(ptr).unwrap_or(NonNull::dangling()),
        len,
        truncate,
    };
    // Taken before submitting: a request can finish before submit returns.
    let submitted = Instant::now();
    // SAFETY: `buf` moves into the ticket, which keeps it alive and untouched
    // until the pending operation has completed (wait or drop), and leaks it
    // if the ticket is leaked. HostBuf(Mut) guarantees the pointer is valid
    // for len bytes and stable across moves.
    match unsafe { engine.submit(request) } {
        Ok(pending) => Ok(IoTicket::new(pending, buf, op, file, offset, submitted)),
        Err(error) => {
            // Pieces submitted before the refusal may have written.
            if file.checksummed() && op == IoOp::Write {
                file.checksums().forget(offset, len as u64);
            }
            Err(Rejected { error, value: buf })
        }
    }
}
