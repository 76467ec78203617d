//! A request cut into block-sized pieces, and what one piece's result means.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;

use super::checksum::{partial_blocks, Failure, BLOCK};
use super::engine::IoRequest;
use super::file::SwapFile;
use crate::sync::Latch;
use crate::sys::fs::drop_cache;
use crate::{Error, IoOp, Result};

/// One contiguous part of a request, moved by one syscall or SQE at a time.
#[derive(Debug)]
pub(crate) struct Piece {
    pub(crate) op: IoOp,
    file: SwapFile,
    /// File offset and length of the whole request, for error messages.
    request: (u64, usize),
    offset: u64,
    buf: usize,
    len: usize,
    done: usize,
    direct: bool,
    completion: Arc<Latch>,
}

/// What to do after a piece's syscall returned.
#[derive(Debug)]
pub(crate) enum Step {
    /// Submit the (rest of the) piece again.
    Again,
    /// The piece is finished with this result; pass it to [`Piece::finish`].
    Finished(Result<()>),
}

/// Cuts `req` into pieces of at most `block_size` bytes.
///
/// Where the file uses direct I/O, a piece with an aligned start but an
/// unaligned length is cut once more so only the unaligned tail goes through
/// the page cache. Where the file is checksummed, pieces are cut at file
/// offsets that are multiples of the checksum block, so that every block
/// lies in one piece, which records or verifies its CRC as it finishes.
pub(crate) fn split(req: IoRequest, block_size: usize) -> (Vec<Piece>, Arc<Latch>) {
    let IoRequest {
        op,
        file,
        offset,
        buf,
        len,
        truncate,
    } = req;
    let align = file.dio_align();
    let base = buf.as_ptr() as usize;
    let unit = if file.checksummed() {
        BLOCK as usize
    } else {
        1
    };
    let step = (block_size.max(1) / unit).max(1) * unit;
    let mut bounds = Vec::with_capacity(len.div_ceil(step) + 2);
    let mut pos = 0;
    while pos < len {
        let misaligned = ((offset + pos as u64) % unit as u64) as usize;
        let piece = match misaligned {
            0 => step,
            m => unit - m,
        }
        .min(len - pos);
        let at = (offset + pos as u64, base + pos);
        match align {
            Some((mem, off)) if aligned(at, off, mem) => {
                let body = piece - piece % off;
                if body > 0 {
                    bounds.push((pos, body, true));
                }
                if body < piece {
                    bounds.push((pos + body, piece - body, false));
                }
            }
            _ => bounds.push((pos, piece, false)),
        }
        pos += piece;
    }
    let completion = if truncate {
        let (file, end) = (file.clone(), offset + len as u64);
        Latch::with_final_step(bounds.len(), move || file.set_len(end))
    } else {
        Latch::new(bounds.len())
    };
    if op == IoOp::Write && file.checksummed() {
        // Made unknown now: a read of another part of the block meanwhile
        // must not check it against bytes this write is changing.
        for &(pos, piece_len, _) in &bounds {
            for (block, _) in partial_blocks(offset + pos as u64, piece_len) {
                file.checksums().partial_write_started(block);
            }
        }
    }
    let pieces = bounds
        .into_iter()
        .map(|(pos, piece_len, direct)| Piece {
            op,
            file: file.clone(),
            request: (offset, len),
            offset: offset + pos as u64,
            buf: base + pos,
            len: piece_len,
            done: 0,
            direct,
            completion: Arc::clone(&completion),
        })
        .collect();
    (pieces, completion)
}

fn aligned((offset, addr): (u64, usize), off: usize, mem: usize) -> bool {
    offset % off as u64 == 0 && addr % mem == 0
}

impl Piece {
    /// The descriptor the next transfer uses.
    pub(crate) fn fd(&self) -> RawFd {
        self.file.fd(self.direct)
    }

    /// File offset of the next byte to move.
    pub(crate) fn position(&self) -> u64 {
        self.offset + self.done as u64
    }

    /// Address of the next byte to move.
    pub(crate) fn cursor(&self) -> *mut u8 {
        (self.buf + self.done) as *mut u8
    }

    /// Bytes still to move.
    pub(crate) fn remaining(&self) -> usize {
        self.len - self.done
    }

    /// Address of the whole piece, for registered-buffer lookups.
    pub(crate) fn span(&self) -> (usize, usize) {
        (self.buf, self.len)
    }

    /// Interprets a syscall's or completion's result.
    pub(crate) fn advance(&mut self, result: io::Result<usize>) -> Step {
        match result {
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                Step::Again
            }
            Err(source) => Step::Finished(Err(Error::Io {
                op: self.op,
                path: self.file.path().to_path_buf(),
                offset: self.position(),
                len: self.remaining(),
                cause: source,
            })),
            Ok(0) if self.remaining() > 0 => Step::Finished(Err(match self.op {
                IoOp::Read => Error::ShortIo {
                    op: self.op,
                    path: self.file.path().to_path_buf(),
                    offset: self.request.0,
                    len: self.request.1,
                    done: (self.position() - self.request.0) as usize,
                },
                IoOp::Write => Error::Io {
                    op: self.op,
                    path: self.file.path().to_path_buf(),
                    offset: self.position(),
                    len: self.remaining(),
                    cause: io::ErrorKind::WriteZero.into(),
                },
            })),
            Ok(n) => {
                self.done += n.min(self.remaining());
                if self.remaining() == 0 {
                    return Step::Finished(Ok(()));
                }
                if let (true, Some((mem, off))) = (self.direct, self.file.dio_align()) {
                    let rest_aligned = aligned((self.position(), self.cursor() as usize), off, mem)
                        && self.remaining() % off == 0;
                    self.direct = rest_aligned;
                }
                Step::Again
            }
        }
    }

    /// Hands the piece's result to its request. On a checksummed file, a
    /// written piece records the CRCs of its blocks (a failed one forgets
    /// them), and a read piece verifies them: the CRC work runs here, on
    /// the engine's worker, while the request's other pieces are in flight.
    ///
    /// The piece's file handle is released before the request is signalled,
    /// so a waiter that drops the last handle really removes the file.
    pub(crate) fn finish(self, result: Result<()>) {
        if self.op == IoOp::Write && !self.direct && !self.file.is_direct() && result.is_ok() {
            drop_cache(self.fd(), self.offset, self.len);
        }
        let result = if self.file.checksummed() {
            self.checksums(result)
        } else {
            result
        };
        let at = self.position();
        let Piece {
            file, completion, ..
        } = self;
        drop(file);
        completion.close_at(result, at);
    }

    /// Records (writes) or verifies (reads) the CRCs of the piece's blocks;
    /// a piece inside one block that it covers in part does so through the
    /// file (storage/checksum.rs).
    fn checksums(&self, result: Result<()>) -> Result<()> {
        let log = self.file.checksums();
        let read = |at: u64, buf: &mut [u8]| self.file.read_block(at, buf);
        if self.op == IoOp::Write {
            if result.is_err() {
                log.forget(self.offset, self.len as u64);
            }
            let mut done = Ok(());
            for (block, _) in partial_blocks(self.offset, self.len) {
                done = done.and(log.partial_write_done(block, result.is_ok(), &read));
            }
            result?;
            done.map_err(|cause| self.io_error(cause))?;
        } else {
            result?;
        }
        // SAFETY: the request's memory stays valid, and untouched by its
        // owner, until its completion latch closes (IoEngine::submit's
        // contract), which is after this; the piece's bytes are done moving.
        let bytes = unsafe { std::slice::from_raw_parts(self.buf as *const u8, self.len) };
        if self.op == IoOp::Write {
            log.record(self.offset, bytes);
            return Ok(());
        }
        let checked = log.verify(self.offset, bytes).map_err(Failure::Mismatch);
        let checked = partial_blocks(self.offset, self.len).fold(checked, |checked, (_, range)| {
            let at = self.offset + range.start as u64;
            checked.and_then(|()| log.verify_partial(at, &bytes[range], &read))
        });
        checked.map_err(|failure| match failure {
            Failure::Mismatch(m) => Error::Checksum {
                path: self.file.path().to_path_buf(),
                offset: m.offset,
                len: m.len,
                expected: m.expected,
                actual: m.actual,
            },
            Failure::Io(cause) => self.io_error(cause),
        })
    }

    /// An error of the piece's own I/O, or of reading the rest of its block.
    fn io_error(&self, cause: io::Error) -> Error {
        Error::Io {
            op: self.op,
            path: self.file.path().to_path_buf(),
            offset: self.offset,
            len: self.len,
            cause,
        }
    }
}
