//! One stream-ordered cuFile read or write (`cuFileReadAsync` /
//! `cuFileWriteAsync`) and the check of its outcome.

use std::io;
use std::sync::Arc;

use cudarc::cufile::{result, sys};
use cudarc::driver::{sys as cu, CudaStream};
use tensorswap_core::{Error, IoOp, Result, SwapFile};

use super::registered::Registered;

/// What cuFile reads when the operation runs on the stream and writes its
/// outcome into: it must stay at one address until then, hence the box.
#[derive(Debug)]
struct Params {
    size: usize,
    file_offset: i64,
    buf_offset: i64,
    /// Bytes moved, or a negative error, once the operation has run.
    done: isize,
}

/// A submitted cuFile operation. Dropping it before [`FileOp::finish`]
/// synchronises its stream, so cuFile never writes into freed parameters.
#[derive(Debug)]
pub(crate) struct FileOp {
    params: Box<Params>,
    op: IoOp,
    stream: Arc<CudaStream>,
    /// Keeps the descriptor and its registration alive until the end.
    file: SwapFile,
    registered: Arc<Registered>,
    finished: bool,
}

impl FileOp {
    /// Queues `op` of `len` bytes between device memory at `memory` and
    /// `file` at `file_offset` on `stream`; the context must be current.
    ///
    /// # Safety
    /// `memory..memory + len` is device memory of the stream's context that
    /// stays allocated, and untouched by others, until the operation has run
    /// (its event has completed or the stream was synchronised).
    pub(crate) unsafe fn submit(
        op: IoOp,
        registered: Arc<Registered>,
        file: &SwapFile,
        memory: cu::CUdeviceptr,
        len: usize,
        file_offset: u64,
        stream: &Arc<CudaStream>,
    ) -> std::result::Result<Self, String> {
        let file_offset = i64::try_from(file_offset).map_err(|e| e.to_string())?;
        let mut this = Self {
            params: Box::new(Params {
                size: len,
                file_offset,
                buf_offset: 0,
                done: 0,
            }),
            op,
            stream: Arc::clone(stream),
            file: file.clone(),
            registered,
            finished: true,
        };
        let p = &mut *this.params;
        let (handle, base, cu_stream) = (
            this.registered.handle(),
            memory as *mut std::ffi::c_void,
            stream.cu_stream() as sys::CUstream,
        );
        let queue = match op {
            IoOp::Read => result::read_async,
            IoOp::Write => result::write_async,
        };
        // SAFETY: the handle is registered; the parameters live in a box
        // owned by the returned FileOp, which outlives the operation (its
        // drop synchronises the stream); the memory is the caller's promise.
        let queued = unsafe {
            queue(
                handle,
                base,
                &p.size,
                &p.file_offset,
                &p.buf_offset,
                &mut p.done,
                cu_stream,
            )
        };
        queued.map_err(|e| format!("cuFile {op} could not be queued: {e:?}"))?;
        this.finished = false;
        Ok(this)
    }

    /// The outcome, once the stream has passed the operation (its event
    /// completed): every byte moved, or a typed error.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.finished = true;
        // SAFETY: the operation has run, so cuFile is done writing `done`;
        // volatile because the write came from outside this thread's view.
        let done = unsafe { std::ptr::read_volatile(&self.params.done) };
        let (len, offset) = (self.params.size, self.params.file_offset as u64);
        let path = self.file.path().to_owned();
        match usize::try_from(done) {
            Ok(moved) if moved == len => Ok(()),
            Ok(moved) => Err(Error::ShortIo {
                op: self.op,
                path,
                offset,
                len,
                done: moved,
            }),
            Err(_) => Err(Error::Io {
                op: self.op,
                path,
                offset,
                len,
                cause: cause(done),
            }),
        }
    }
}

/// cuFile's negative outcome as an error: `-1` (see its log), `-errno`, or
/// `-CUfileOpError` (codes from 5000).
fn cause(done: isize) -> io::Error {
    let code = done.unsigned_abs();
    match i32::try_from(code) {
        Ok(1) => io::Error::other("cuFile failed (-1); its log (cufile.log) says why"),
        Ok(code) if code < 5000 => io::Error::from_raw_os_error(code),
        _ => io::Error::other(format!("cuFile error {code} (see CUfileOpError)")),
    }
}

impl Drop for FileOp {
    fn drop(&mut self) {
        if !self.finished {
            if let Err(err) = self.stream.synchronize() {
                tracing::error!(%err, "synchronising a stream under an abandoned cuFile operation");
            }
        }
    }
}
