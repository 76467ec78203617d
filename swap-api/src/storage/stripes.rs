//! Striping: one address space laid over files in several folders (one per
//! drive), a stripe unit at a time, each folder served by its own engine.
//!
//! Offset `o` of the striped space is in stripe `k = o / unit`, which lives
//! in file `k % n` at offset `(k / n) * unit + o % unit`: consecutive
//! stripes go round the folders, so a request longer than a unit keeps
//! every folder busy. With one file the space is that file.

use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::engine::{IoEngine, IoPending, IoRequest};
use super::file::SwapFile;
use super::ticket::{IoDone, IoFailed, IoResult};
use crate::{Error, HostBuf, HostBufMut, IoOp, Rejected, Result};

/// The smallest stripe unit: 1 MiB.
pub const MIN_STRIPE_UNIT: u64 = 1 << 20;

/// The default stripe unit: 1 MiB, like common RAID-0 chunk sizes, small
/// enough that a 16 MiB slab spreads over up to 16 folders.
pub const DEFAULT_STRIPE_UNIT: u64 = 1 << 20;

/// Files in several folders seen as one: offsets are striped over them a
/// [`unit`](StripedFile::unit) at a time.
///
/// Cheap to clone; clones share the files and the byte counters.
///
/// ```
/// use tensorswap_core::storage::StripedFile;
/// use tensorswap_core::{AioConfig, SwapDir, ThreadEngine};
/// let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
/// let files = vec![SwapDir::create(a.path())?.create_file()?, SwapDir::create(b.path())?.create_file()?];
/// let striped = StripedFile::new(files, 1 << 20)?;
/// // The second MiB of the striped space is the first MiB of the second file.
/// assert_eq!(striped.locate((1 << 20) + 5), (1, 5));
/// assert_eq!(striped.locate((2 << 20) + 5), (0, (1 << 20) + 5));
///
/// let engines = [ThreadEngine::new(&AioConfig::default())?, ThreadEngine::new(&AioConfig::default())?];
/// let data: Vec<u8> = (0..3 << 20).map(|i: u32| i as u8).collect();
/// let written = striped.write(&engines, 0, data)?.wait()?;
/// let back = striped.read(&engines, 0, vec![0u8; 3 << 20])?.wait()?;
/// assert_eq!(back.buf, written.buf);
/// assert_eq!(striped.bytes_moved(), vec![4 << 20, 2 << 20]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct StripedFile {
    files: Arc<[SwapFile]>,
    unit: u64,
    moved: Arc<[AtomicU64]>,
}

impl fmt::Debug for StripedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripedFile")
            .field(
                "files",
                &self.files.iter().map(SwapFile::path).collect::<Vec<_>>(),
            )
            .field("unit", &self.unit)
            .finish()
    }
}

/// One part of a striped request: the bytes of the request that lie in one
/// stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Which file.
    pub(crate) lane: usize,
    /// Offset in that file.
    pub(crate) offset: u64,
    /// Offset of the segment in the request's buffer.
    pub(crate) pos: usize,
    /// Bytes.
    pub(crate) len: usize,
}

impl StripedFile {
    /// Checks a stripe unit: a power of two of at least [`MIN_STRIPE_UNIT`]
    /// ([`new`](Self::new) refuses others with this error).
    pub fn check_unit(unit: u64) -> Result<()> {
        if unit.is_power_of_two() && unit >= MIN_STRIPE_UNIT {
            return Ok(());
        }
        Err(Error::Config {
            reason: format!(
                "a stripe unit of {unit} bytes: it must be a power of two of at least {MIN_STRIPE_UNIT} bytes (1 MiB)"
            ),
        })
    }

    /// `files` striped `unit` bytes at a time. The unit must be a power of
    /// two of at least [`MIN_STRIPE_UNIT`] (so it is a multiple of every
    /// direct-I/O alignment); with one file it has no effect.
    pub fn new(files: Vec<SwapFile>, unit: u64) -> Result<Self> {
        Self::check_unit(unit)?;
        if files.is_empty() {
            return Err(Error::Config {
                reason: "a striped file needs at least one file".into(),
            });
        }
        let moved = files.iter().map(|_| AtomicU64::new(0)).collect();
        Ok(Self {
            files: files.into(),
            unit,
            moved,
        })
    }

    /// The files, in stripe order.
    pub fn files(&self) -> &[SwapFile] {
        &self.files
    }

    /// Bytes per stripe.
    pub fn unit(&self) -> u64 {
        self.unit
    }

    /// Which file holds offset `offset` of the striped space, and where in it.
    pub fn locate(&self, offset: u64) -> (usize, u64) {
        let n = self.files.len() as u64;
        let stripe = offset / self.unit;
        let lane = (stripe % n) as usize;
        (lane, (stripe / n) * self.unit + offset % self.unit)
    }

    /// Bytes submitted to each file so far (reads and writes), in stripe order.
    pub fn bytes_moved(&self) -> Vec<u64> {
        self.moved
            .iter()
            .map(|m| m.load(Ordering::Relaxed))
            .collect()
    }

    /// The segments of `len` bytes at `offset`, in order.
    pub(crate) fn segments(&self, offset: u64, len: usize) -> Vec<Segment> {
        if self.files.len() == 1 {
            return vec![Segment {
                lane: 0,
                offset,
                pos: 0,
                len,
            }];
        }
        let mut out = Vec::with_capacity((len as u64 / self.unit) as usize + 2);
        let mut pos = 0;
        while pos < len {
            let at = offset + pos as u64;
            let in_stripe = (self.unit - at % self.unit).min((len - pos) as u64) as usize;
            let (lane, lane_offset) = self.locate(at);
            out.push(Segment {
                lane,
                offset: lane_offset,
                pos,
                len: in_stripe,
            });
            pos += in_stripe;
        }
        out
    }

    /// Starts writing all of `buf` at `offset` of the striped space, each
    /// file's segments on `engines[file]`.
    pub fn write<E: IoEngine, B: HostBuf>(
        &self,
        engines: &[E],
        offset: u64,
        buf: B,
    ) -> StripedSubmitted<E, B> {
        let ptr = buf.stable_ptr().cast_mut();
        self.submit(engines, IoOp::Write, offset, buf, ptr)
    }

    /// Starts filling all of `buf` from `offset` of the striped space.
    pub fn read<E: IoEngine, B: HostBufMut>(
        &self,
        engines: &[E],
        offset: u64,
        mut buf: B,
    ) -> StripedSubmitted<E, B> {
        // The pointer must come from the mutable accessor: the kernel writes there.
        let ptr = buf.stable_mut_ptr();
        self.submit(engines, IoOp::Read, offset, buf, ptr)
    }

    fn submit<E: IoEngine, B: HostBuf>(
        &self,
        engines: &[E],
        op: IoOp,
        offset: u64,
        buf: B,
        ptr: *mut u8,
    ) -> StripedSubmitted<E, B> {
        let len = buf.bytes_len();
        let refuse = |path: &SwapFile, reason: &str| Error::Io {
            op,
            path: path.path().to_path_buf(),
            offset,
            len,
            cause: io::Error::new(io::ErrorKind::InvalidInput, reason.to_string()),
        };
        if engines.len() != self.files.len() {
            let error = Error::Config {
                reason: format!(
                    "{} engines for a file striped over {} folders: one engine per folder",
                    engines.len(),
                    self.files.len()
                ),
            };
            return Err(Rejected { error, value: buf });
        }
        let fits = offset
            .checked_add(len as u64)
            .is_some_and(|end| end <= i64::MAX as u64);
        if !fits {
            let error = refuse(
                &self.files[0],
                "offset + length is beyond the largest file offset",
            );
            return Err(Rejected { error, value: buf });
        }
        let submitted = Instant::now();
        let mut ticket = StripedTicket {
            parts: Vec::new(),
            buf: None,
            submitted,
        };
        for segment in self.segments(offset, len) {
            let file = &self.files[segment.lane];
            let request = IoRequest {
                op,
                file: file.clone(),
                offset: segment.offset,
                buf: NonNull::new(ptr.wrapping_add(segment.pos)).unwrap_or(NonNull::dangling()),
                len: segment.len,
                truncate: false,
            };
            // SAFETY: `buf` moves into the ticket, which keeps it alive and
            // untouched until every segment's pending operation has completed
            // (wait or drop; a refusal below waits for the segments already
            // submitted before giving the buffer back). The segments are
            // disjoint parts of the buffer, which HostBuf(Mut) guarantees valid
            // for `len` bytes and stable across moves.
            match unsafe { engines[segment.lane].submit(request) } {
                Ok(pending) => {
                    self.moved[segment.lane].fetch_add(segment.len as u64, Ordering::Relaxed);
                    ticket.parts.push(Part {
                        pending,
                        op,
                        file: file.clone(),
                        offset: segment.offset,
                        len: segment.len,
                    });
                }
                Err(error) => {
                    if op == IoOp::Write && file.checksummed() {
                        file.checksums().forget(segment.offset, segment.len as u64);
                    }
                    // The segments already in flight finish before the buffer
                    // goes back; their outcome is superseded by the refusal.
                    drop(ticket);
                    return Err(Rejected { error, value: buf });
                }
            }
        }
        ticket.buf = Some(buf);
        Ok(ticket)
    }
}

/// What starting a striped request gives: its ticket, or the buffer back
/// with the error.
pub type StripedSubmitted<E, B> =
    std::result::Result<StripedTicket<<E as IoEngine>::Pending, B>, IoFailed<B>>;

/// One file's part of a striped request.
struct Part<P> {
    pending: P,
    op: IoOp,
    file: SwapFile,
    offset: u64,
    len: usize,
}

/// The completion ticket of one striped read or write: every segment's
/// pending operation, and the host buffer they move.
///
/// Like [`IoTicket`](crate::IoTicket): the ticket owns the buffer until all
/// segments have finished, dropping it waits for them, leaking it leaks the
/// buffer.
#[must_use = "a file request must be waited to get its buffer and its outcome back"]
pub struct StripedTicket<P: IoPending, B: HostBuf> {
    parts: Vec<Part<P>>,
    buf: Option<B>,
    submitted: Instant,
}

impl<P: IoPending, B: HostBuf> StripedTicket<P, B> {
    /// True once every segment has finished (waiting will not block).
    pub fn is_complete(&self) -> bool {
        self.parts.iter().all(|p| p.pending.is_complete())
    }

    /// Blocks until every segment has finished and returns the buffer, or the
    /// first failure (by segment order) with it.
    pub fn wait(mut self) -> IoResult<B> {
        let (result, finished) = self.finish();
        let buf = self
            .buf
            .take()
            .expect("a striped ticket holds its buffer until waited");
        let latency = finished.saturating_duration_since(self.submitted);
        match result {
            Ok(()) => Ok(IoDone { buf, latency }),
            Err(error) => Err(Rejected { error, value: buf }),
        }
    }

    /// Waits for every segment: the first error, and when the last finished.
    fn finish(&mut self) -> (Result<()>, Instant) {
        let mut outcome = Ok(());
        let mut last = self.submitted;
        for part in std::mem::take(&mut self.parts) {
            let finished = part.pending.finished_at();
            let result = part.pending.wait();
            last = last.max(finished.unwrap_or_else(Instant::now));
            if let Err(error) = result {
                if part.op == IoOp::Write && part.file.checksummed() {
                    part.file.checksums().forget(part.offset, part.len as u64);
                }
                if outcome.is_ok() {
                    outcome = Err(error);
                }
            }
        }
        (outcome, last)
    }
}

impl<P: IoPending, B: HostBuf> Drop for StripedTicket<P, B> {
    fn drop(&mut self) {
        if let (Err(err), _) = self.finish() {
            tracing::debug!(%err, "a dropped striped file request failed");
        }
    }
}

impl<P: IoPending, B: HostBuf> fmt::Debug for StripedTicket<P, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripedTicket")
            .field("segments", &self.parts.len())
            .field("complete", &self.is_complete())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AioConfig, FaultStage, FaultyEngine, SwapDir, ThreadEngine};
    use proptest::prelude::*;

    fn striped(n: usize, unit: u64) -> (Vec<tempfile::TempDir>, StripedFile) {
        let parents: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let files = parents
            .iter()
            .map(|p| SwapDir::create(p.path()).unwrap().create_file().unwrap())
            .collect();
        (parents, StripedFile::new(files, unit).unwrap())
    }

    #[test]
    fn units_that_are_not_powers_of_two_of_a_mib_or_more_are_refused() {
        for unit in [0, 4096, (1 << 20) - 4096, 3 << 20] {
            assert!(StripedFile::check_unit(unit).is_err(), "{unit}");
        }
        assert!(
            StripedFile::check_unit(1 << 20).is_ok() && StripedFile::check_unit(8 << 20).is_ok()
        );
        let none = StripedFile::new(Vec::new(), 1 << 20).unwrap_err();
        assert!(none.to_string().contains("at least one file"));
    }

    #[test]
    fn a_wrong_number_of_engines_is_refused_with_the_buffer() {
        let (_parents, file) = striped(2, 1 << 20);
        let engine = [ThreadEngine::new(&AioConfig::default()).unwrap()];
        let refused = file.write(&engine, 0, vec![1u8; 10]).unwrap_err();
        assert!(refused.error.to_string().contains("one engine per folder"));
        assert_eq!(refused.value, vec![1u8; 10]);
    }

    /// A failing folder fails the request with an error naming its file;
    /// the other folders' segments finish, the buffer comes back intact.
    #[test]
    fn a_failing_folder_is_named_and_the_buffer_comes_back() {
        let (_parents, file) = striped(3, 1 << 20);
        let config = AioConfig::default();
        let engines: Vec<_> = (0..3)
            .map(|_| FaultyEngine::new(ThreadEngine::new(&config).unwrap()))
            .collect();
        for stage in [FaultStage::Submit, FaultStage::Complete] {
            engines[1].fail_next(IoOp::Write, libc::ENOSPC, stage);
            let data = vec![9u8; 5 << 20];
            let failed = file
                .write(&engines, 0, data)
                .and_then(StripedTicket::wait)
                .unwrap_err();
            match &failed.error {
                Error::Io { path, cause, .. } => {
                    assert_eq!(path, file.files()[1].path());
                    assert_eq!(cause.raw_os_error(), Some(libc::ENOSPC));
                }
                other => panic!("{stage:?}: {other}"),
            }
            assert!(failed.value.iter().all(|&b| b == 9));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Segments cover the request once, in order, never cross a stripe,
        /// and land where `locate` says; distinct offsets of the striped
        /// space never share a file offset.
        #[test]
        fn segments_tile_the_request(n in 1usize..5, offset in 0u64..(40 << 20), len in 0usize..(9 << 20)) {
            let (_parents, file) = striped(n, 1 << 20);
            let segments = file.segments(offset, len);
            let mut pos = 0;
            for s in segments.iter().filter(|s| s.len > 0) {
                prop_assert_eq!(s.pos, pos);
                prop_assert_eq!((s.lane, s.offset), file.locate(offset + pos as u64));
                let (_, end) = file.locate(offset + (pos + s.len) as u64 - 1);
                prop_assert_eq!(end, s.offset + s.len as u64 - 1, "a segment crosses a stripe");
                pos += s.len;
            }
            prop_assert_eq!(pos, len);
            prop_assert!(segments.len() <= len.div_ceil(1 << 20) + 1);
            let a = file.locate(offset);
            let b = file.locate(offset + (1 << 20) * n as u64);
            prop_assert_eq!(a.0, b.0);
            prop_assert_eq!(b.1 - a.1, 1 << 20);
        }
    }
}
