//! One submitted read or write: the engine's ticket, the tensor (kept
//! alive until the operation completes), and its bounce buffer where the
//! tensor cannot take I/O in place (not on the CPU, or not contiguous).

use std::ptr::NonNull;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use tensorswap_core::storage::IoRequest;
use tensorswap_core::sync::LatchPending;
use tensorswap_core::{AnyEngine, IoEngine, IoOp, PendingOp, SwapFile};

use crate::locked::{self, LockedBlock};
use crate::tensor::{tensors, TensorRef};

/// Where a tensor's bytes travel through when it cannot take I/O in place.
struct Bounce {
    /// Owns the memory (also held by `view`).
    _block: Py<LockedBlock>,
    /// A CPU tensor over the block, of the tensor's dtype and shape.
    view: Py<PyAny>,
}

/// A submitted operation.
pub struct Op {
    op: IoOp,
    file: SwapFile,
    /// The file was made for this write (removed again if it fails with
    /// nothing written).
    made: bool,
    offset: u64,
    target: TensorRef,
    bounce: Option<Bounce>,
    /// The engine's ticket; none for zero bytes.
    pending: Option<LatchPending>,
    validate: bool,
}

impl Op {
    /// Submits `op` of `tensor`'s bytes at `offset` of `file` (writes copy
    /// a tensor that cannot take I/O in place into a bounce buffer first).
    #[allow(clippy::too_many_arguments)]
    pub fn submit(
        py: Python<'_>,
        engine: &AnyEngine,
        op: IoOp,
        file: SwapFile,
        made: bool,
        offset: u64,
        tensor: &Bound<'_, PyAny>,
        validate: bool,
    ) -> PyResult<Self> {
        let target = TensorRef::of(tensor)?;
        let (address, bounce) = if target.in_place {
            (target.address, None)
        } else {
            let block = locked::scratch(target.nbytes).map_err(to_py)?;
            let address = block.address();
            let block = Py::new(py, block)?;
            let view = tensors(py)?.call_method1("bounce_view", (tensor, &block))?;
            if op == IoOp::Write {
                view.call_method1("copy_", (tensor,))?;
            }
            (
                address,
                Some(Bounce {
                    _block: block,
                    view: view.unbind(),
                }),
            )
        };
        let pending = match NonNull::new(address as *mut u8) {
            Some(buf) if target.nbytes > 0 => {
                let request = IoRequest {
                    op,
                    file: file.clone(),
                    offset,
                    buf,
                    len: target.nbytes,
                    truncate: false,
                };
                // SAFETY: `buf` holds `len` bytes (the tensor's, or its
                // bounce block's), kept alive by `target` / `bounce` until
                // the ticket is waited (`Op::wait`, or the handle's drop).
                // The caller does not touch a tensor while DeepSpeed's API
                // has it in flight (its contract, as with DeepNVMe).
                match unsafe { engine.submit(request) } {
                    Ok(pending) => Some(pending),
                    Err(e) => {
                        remove_if_made_and_empty(&file, made);
                        return Err(to_py(e));
                    }
                }
            }
            _ => None,
        };
        Ok(Self {
            op,
            file,
            made,
            offset,
            target,
            bounce,
            pending,
            validate,
        })
    }

    /// Waits for the engine (without the GIL: call inside `py.detach`).
    pub fn wait(&mut self) -> tensorswap_core::Result<()> {
        self.pending.take().map_or(Ok(()), PendingOp::wait)
    }

    /// After [`Op::wait`], with its outcome: a failure raised (a file this
    /// write made, still empty, removed first); else a read's bytes copied
    /// from the bounce buffer into the tensor, then the validation asked
    /// for.
    pub fn finish(self, py: Python<'_>, waited: tensorswap_core::Result<()>) -> PyResult<()> {
        if let Err(e) = waited {
            remove_if_made_and_empty(&self.file, self.made);
            return Err(to_py(e));
        }
        if let (IoOp::Read, Some(bounce)) = (self.op, &self.bounce) {
            self.target.check_unmoved(py)?;
            self.target
                .tensor
                .call_method1(py, "copy_", (bounce.view.bind(py),))?;
        }
        if self.validate {
            self.check_file(py)?;
        }
        Ok(())
    }

    /// Compares the file's bytes with the memory the operation used.
    fn check_file(&self, py: Python<'_>) -> PyResult<()> {
        let address = match &self.bounce {
            Some(b) => b.view.bind(py).call_method0("data_ptr")?.extract()?,
            None => self.target.address,
        };
        let len = self.target.nbytes;
        let mut on_disk = vec![0u8; len];
        let path = self.file.path().display();
        let file = self
            .file
            .descriptor(false)
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .and_then(|f| std::os::unix::fs::FileExt::read_exact_at(&f, &mut on_disk, self.offset))
            .map_err(|e| PyOSError::new_err(format!("validating {path}: {e}")));
        file?;
        // SAFETY: the memory holds `len` bytes and is alive (held by
        // `target` or `bounce`); the operation is complete, so no one
        // writes it now.
        let memory = unsafe { std::slice::from_raw_parts(address as *const u8, len) };
        if memory != on_disk.as_slice() {
            let first = memory
                .iter()
                .zip(&on_disk)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Err(PyOSError::new_err(format!(
                "validation failed: {} of {} differs from the tensor at byte {first} of {len} (file offset {})",
                self.op,
                self.file.path().display(),
                self.offset
            )));
        }
        Ok(())
    }
}

/// Removes a file a failed write made, if it is still empty and still has
/// its name: nothing was written, and nothing of the caller's is lost.
fn remove_if_made_and_empty(file: &SwapFile, made: bool) {
    if !made || !file.is_empty().unwrap_or(false) {
        return;
    }
    let path = file.path();
    let same = std::fs::symlink_metadata(path)
        .ok()
        .zip(file.descriptor(false).try_clone_to_owned().ok())
        .and_then(|(named, fd)| Some((named, std::fs::File::from(fd).metadata().ok()?)))
        .is_some_and(|(named, open)| {
            use std::os::unix::fs::MetadataExt;
            (named.dev(), named.ino()) == (open.dev(), open.ino())
        });
    if same {
        let _ = std::fs::remove_file(path);
    }
}

/// An engine or file error as a Python `OSError` (with its errno where the
/// system gave one).
pub fn to_py(e: tensorswap_core::Error) -> PyErr {
    let errno = match &e {
        tensorswap_core::Error::Io { cause, .. } | tensorswap_core::Error::File { cause, .. } => {
            cause.raw_os_error()
        }
        _ => None,
    };
    match errno {
        Some(code) => PyOSError::new_err((code, e.to_string())),
        None => PyOSError::new_err(e.to_string()),
    }
}
