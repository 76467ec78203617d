//! `aio_handle`: DeepSpeed's DeepNVMe engine API (0.19.8's
//! `deepspeed_py_io_handle`), on tensorswap's engine.
//!
//! The same calls, defaults and return values, with these differences,
//! each where DeepSpeed's engine aborts the process or loses bytes:
//! - a read past the end of the file, a missing file, a negative offset
//!   or a length not divisible by the parallelism returns `-1` (as
//!   DeepSpeed does for the cases it checks) with a `RuntimeWarning`
//!   saying why, and touches nothing;
//! - `wait()` with nothing pending returns 0;
//! - an I/O error raises `OSError` from the call that waits for it, after
//!   every pending operation has finished;
//! - dropping a handle with operations in flight finishes them first;
//! - `wait()` returns once every operation submitted before it, by any
//!   thread, has completed (a concurrent `wait()` may have reaped them:
//!   its count and errors are that call's);
//! - a handle belongs to the process that made it: in a child after
//!   `fork()` its engine's threads do not exist, so every call raises
//!   `RuntimeError` and dropping it waits for nothing;
//! - file names may be `str`, `bytes` (any bytes but NUL) or `os.PathLike`;
//!   `bool` is refused where a descriptor is taken;
//! - buffers may be torch tensors, NumPy arrays or other buffer-protocol
//!   objects (writable for reads);
//! - a write that fails leaves no empty file of its own making behind;
//! - unaligned buffers, offsets and lengths work under `O_DIRECT` (the
//!   engine moves unaligned parts through the page cache);
//! - writes never truncate, as DeepSpeed's do not.
//!
//! The GIL is released while waiting. Tensors on the CPU and contiguous
//! take I/O in place, pinned or not; others (non-contiguous, or on a GPU)
//! go through a locked bounce buffer.

use std::ffi::CString;
use std::mem::ManuallyDrop;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::{PyRuntimeError, PyRuntimeWarning, PyValueError};
use pyo3::prelude::*;
use tensorswap_core::{AioConfig, AnyEngine, EngineKind, IoEngine, IoOp, NamedOptions, SwapFile};

use crate::locked;
use crate::names::{descriptor, path_of};
use crate::op::{to_py, Op};
use crate::queue::Queue;
use crate::tensor::{as_tensor, device_type, tensors, torch_pinned, TensorRef};

/// DeepSpeed's `O_DIRECT` alignment unit (`get_alignment` is the
/// parallelism times this).
const O_DIRECT_ALIGNMENT: usize = 512;

/// DeepSpeed's `aio_handle`.
#[pyclass(name = "aio_handle", module = "tensorswap._native")]
pub struct AioHandle {
    config: AioConfig,
    /// The process that made the handle, the only one its engine's threads
    /// live in.
    pid: u32,
    /// Dropped only in that process: elsewhere, dropping would wait for
    /// threads that are not there.
    inner: ManuallyDrop<Inner>,
}

struct Inner {
    engine: AnyEngine,
    queue: Queue,
}

/// Where a file comes from.
enum Target {
    Path(PathBuf),
    Fd(i32),
}

/// One call's operation: which way, which file, where in it, and whether
/// to check the file against the tensor afterwards.
struct Call {
    op: IoOp,
    target: Target,
    validate: bool,
    file_offset: i64,
}

impl Call {
    fn read(filename: PathBuf, validate: bool, file_offset: i64) -> Self {
        Self {
            op: IoOp::Read,
            target: Target::Path(filename),
            validate,
            file_offset,
        }
    }

    fn write(target: Target, validate: bool, file_offset: i64) -> Self {
        Self {
            op: IoOp::Write,
            target,
            validate,
            file_offset,
        }
    }
}

/// Says why a call returns `-1` (a `RuntimeWarning`), and returns it.
fn refuse(py: Python<'_>, why: String) -> PyResult<i64> {
    warn(py, &format!("tensorswap aio_handle: {why}"))?;
    Ok(-1)
}

/// A `RuntimeWarning` with `text` (a NUL in it, from a file name, shown as
/// `\0`).
fn warn(py: Python<'_>, text: &str) -> PyResult<()> {
    let text = CString::new(text.replace('\0', "\\0")).unwrap_or_default();
    PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &text, 1)
}

/// Warns once per process where io_uring could not be had and the thread
/// engine serves instead.
fn warn_fallback(py: Python<'_>, engine: &AnyEngine) -> PyResult<()> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if engine.name() == "uring" || WARNED.swap(true, Ordering::Relaxed) {
        return Ok(());
    }
    let why = match tensorswap_core::UringEngine::available() {
        Ok(()) => "it could not be set up".to_owned(),
        Err(reason) => reason.to_string(),
    };
    warn(
        py,
        &format!("tensorswap: io_uring is not available ({why}); aio_handle uses tensorswap's thread-pool engine (get_engine() says which)"),
    )
}

impl AioHandle {
    /// Opens the file of an operation; the error is the reason DeepSpeed
    /// would return `-1` for.
    /// Opens the file of an operation, and says whether this call made it;
    /// the error is the reason DeepSpeed would return `-1` for.
    fn open(op: IoOp, target: &Target) -> Result<(SwapFile, bool), String> {
        let options = match op {
            IoOp::Read => NamedOptions::read_only(),
            IoOp::Write => NamedOptions::read_write(),
        }
        // The CRC log assumes the file is ours alone; DeepSpeed's files
        // are shared with other tools.
        .checksums(false);
        match target {
            Target::Path(path) if op == IoOp::Read => SwapFile::open_named(path, options)
                .map(|f| (f, false))
                .map_err(|e| e.to_string()),
            Target::Path(path) => {
                // Made here (and so removed again if the write fails with
                // nothing written), or there already.
                let made = SwapFile::open_named(path, options.create(true).exclusive(true));
                match made {
                    Ok(file) => Ok((file, true)),
                    Err(tensorswap_core::Error::File { cause, .. })
                        if cause.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        SwapFile::open_named(path, options)
                            .map(|f| (f, false))
                            .map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Target::Fd(fd) if *fd < 0 => Err(format!("descriptor {fd} is not open")),
            Target::Fd(fd) => {
                // SAFETY: only borrowed for the call, which duplicates it;
                // an fd that is not open fails the duplication, typed.
                let borrowed = unsafe { BorrowedFd::borrow_raw(*fd) };
                SwapFile::from_fd(borrowed, options)
                    .map(|f| (f, false))
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Raises unless this is the process that made the handle.
    fn check_process(&self) -> PyResult<&Inner> {
        let here = std::process::id();
        if here == self.pid {
            Ok(&self.inner)
        } else {
            Err(PyRuntimeError::new_err(format!(
                "this aio_handle was created in process {}, and this is process {here} (a fork): its engine's threads exist only there; make a new aio_handle in this process",
                self.pid
            )))
        }
    }

    /// Checks and submits one operation; `Ok(None)` with the warning said
    /// where DeepSpeed would return `-1`.
    fn submit(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        call: Call,
        parallel: bool,
    ) -> PyResult<Option<Op>> {
        let inner = self.check_process()?;
        let Call {
            op,
            target,
            validate,
            file_offset,
        } = call;
        let tensor = as_tensor(buffer, op)?;
        let nbytes = TensorRef::of(&tensor)?.nbytes;
        let name = match &target {
            Target::Path(p) => p.display().to_string(),
            Target::Fd(fd) => format!("descriptor {fd}"),
        };
        let Ok(offset) = u64::try_from(file_offset) else {
            refuse(
                py,
                format!("{op} of {name}: file offset {file_offset} is negative"),
            )?;
            return Ok(None);
        };
        let parallelism = self.config.intra_op_parallelism;
        if parallel && nbytes % parallelism != 0 {
            refuse(
                py,
                format!("parallel {op} of {nbytes} bytes is not divisible by intra_op_parallelism {parallelism}"),
            )?;
            return Ok(None);
        }
        let (file, made) = match Self::open(op, &target) {
            Ok(opened) => opened,
            Err(why) => {
                refuse(py, format!("{op} of {name}: {why}"))?;
                return Ok(None);
            }
        };
        if op == IoOp::Read {
            let size = file.len().map_err(to_py)?;
            if offset.saturating_add(nbytes as u64) > size {
                refuse(
                    py,
                    format!(
                        "read of {nbytes} bytes at offset {offset} runs past the end of {name} ({size} bytes); nothing was read"
                    ),
                )?;
                return Ok(None);
            }
        }
        Op::submit(py, &inner.engine, op, file, made, offset, &tensor, validate).map(Some)
    }

    /// Submits and, unless `asynchronous`, waits for every pending
    /// operation: DeepSpeed's return values (0 when queued, the count
    /// completed when waited, -1 when refused).
    fn run(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        call: Call,
        asynchronous: bool,
    ) -> PyResult<i64> {
        let Some(submitted) = self.submit(py, buffer, call, true)? else {
            return Ok(-1);
        };
        self.inner.queue.push(submitted);
        if asynchronous {
            Ok(0)
        } else {
            self.wait(py)
        }
    }

    /// `read` / `write`: one synchronous operation of the whole buffer,
    /// returning 0 (DeepSpeed's non-parallel calls; earlier asynchronous
    /// operations stay pending).
    fn whole(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>, call: Call) -> PyResult<i64> {
        let Some(mut submitted) = self.submit(py, buffer, call, false)? else {
            return Ok(-1);
        };
        let waited = py.detach(|| submitted.wait());
        submitted.finish(py, waited)?;
        Ok(0)
    }
}

#[pymethods]
impl AioHandle {
    /// DeepSpeed's constructor and defaults.
    #[new]
    #[pyo3(signature = (block_size=1048576, queue_depth=128, single_submit=false, overlap_events=false, intra_op_parallelism=1))]
    fn new(
        py: Python<'_>,
        block_size: i64,
        queue_depth: i64,
        single_submit: bool,
        overlap_events: bool,
        intra_op_parallelism: i64,
    ) -> PyResult<Self> {
        let count = |name: &str, v: i64| {
            usize::try_from(v)
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| PyValueError::new_err(format!("{name} must be positive, not {v}")))
        };
        let config = AioConfig::default()
            .with_block_size(count("block_size", block_size)?)
            .with_queue_depth(count("queue_depth", queue_depth)?)
            .with_parallelism(count("intra_op_parallelism", intra_op_parallelism)?)
            .with_single_submit(single_submit)
            .with_overlap_events(overlap_events);
        config
            .validate()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let engine = AnyEngine::new(EngineKind::Auto, &config).map_err(to_py)?;
        warn_fallback(py, &engine)?;
        Ok(Self {
            config,
            pid: std::process::id(),
            inner: ManuallyDrop::new(Inner {
                engine,
                queue: Queue::default(),
            }),
        })
    }

    /// The engine in use: `"uring"` (io_uring), or `"threads"` where
    /// io_uring is not available (said once, with the reason, by a
    /// `RuntimeWarning`).
    fn get_engine(&self) -> &'static str {
        self.inner.engine.name()
    }

    /// Bytes per I/O piece.
    fn get_block_size(&self) -> usize {
        self.config.block_size
    }

    /// Pieces in flight per worker.
    fn get_queue_depth(&self) -> usize {
        self.config.queue_depth
    }

    /// Whether pieces are submitted one at a time.
    fn get_single_submit(&self) -> bool {
        self.config.single_submit
    }

    /// Whether submission overlaps completion.
    fn get_overlap_events(&self) -> bool {
        self.config.overlap_events
    }

    /// Workers one operation is spread over.
    fn get_intra_op_parallelism(&self) -> usize {
        self.config.intra_op_parallelism
    }

    /// DeepSpeed's alignment: the parallelism times 512.
    fn get_alignment(&self) -> usize {
        self.config.intra_op_parallelism * O_DIRECT_ALIGNMENT
    }

    /// Synchronous read of the whole buffer; 0, or -1 when refused.
    #[pyo3(signature = (buffer, filename, validate, file_offset=0))]
    fn read(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        filename: &Bound<'_, PyAny>,
        validate: bool,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.whole(
            py,
            buffer,
            Call::read(path_of(filename)?, validate, file_offset),
        )
    }

    /// Synchronous write of the whole buffer; 0, or -1 when refused.
    #[pyo3(signature = (buffer, filename, validate, file_offset=0))]
    fn write(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        filename: &Bound<'_, PyAny>,
        validate: bool,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.whole(
            py,
            buffer,
            Call::write(Target::Path(path_of(filename)?), validate, file_offset),
        )
    }

    /// Parallel read: 0 when `async`, else the count of operations waited.
    #[pyo3(signature = (buffer, filename, validate, r#async, file_offset=0))]
    fn pread(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        filename: &Bound<'_, PyAny>,
        validate: bool,
        r#async: bool,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.run(
            py,
            buffer,
            Call::read(path_of(filename)?, validate, file_offset),
            r#async,
        )
    }

    /// Parallel write: 0 when `async`, else the count of operations waited.
    #[pyo3(signature = (buffer, filename, validate, r#async, file_offset=0))]
    fn pwrite(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        filename: &Bound<'_, PyAny>,
        validate: bool,
        r#async: bool,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.run(
            py,
            buffer,
            Call::write(Target::Path(path_of(filename)?), validate, file_offset),
            r#async,
        )
    }

    /// `pread(buffer, filename, False, False, file_offset)`.
    #[pyo3(signature = (buffer, filename, file_offset=0))]
    fn sync_pread(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        filename: &Bound<'_, PyAny>,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.run(
            py,
            buffer,
            Call::read(path_of(filename)?, false, file_offset),
            false,
        )
    }

    /// `pwrite(buffer, filename, False, False, file_offset)`.
    #[pyo3(signature = (buffer, filename, file_offset=0))]
    fn sync_pwrite(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        filename: &Bound<'_, PyAny>,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.run(
            py,
            buffer,
            Call::write(Target::Path(path_of(filename)?), false, file_offset),
            false,
        )
    }

    /// `pread(buffer, filename, False, True, file_offset)`: 0, then
    /// `wait()` counts it.
    #[pyo3(signature = (buffer, filename, file_offset=0))]
    fn async_pread(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        filename: &Bound<'_, PyAny>,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.run(
            py,
            buffer,
            Call::read(path_of(filename)?, false, file_offset),
            true,
        )
    }

    /// Asynchronous write to a file by name, or by descriptor (`fd=`, or an
    /// int in place of the name; the descriptor is duplicated, so the
    /// caller may close it before `wait()`).
    #[pyo3(signature = (buffer, filename=None, file_offset=0, fd=None))]
    fn async_pwrite(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        filename: Option<&Bound<'_, PyAny>>,
        file_offset: i64,
        fd: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<i64> {
        let target = match (filename, fd) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "async_pwrite takes a filename or an fd, not both",
                ))
            }
            (None, Some(fd)) => Target::Fd(descriptor(fd)?),
            (Some(f), None) if f.is_instance_of::<pyo3::types::PyInt>() => {
                Target::Fd(descriptor(f)?)
            }
            (Some(f), None) => Target::Path(path_of(f)?),
            (None, None) => {
                return Err(PyValueError::new_err(
                    "async_pwrite needs a filename or an fd",
                ))
            }
        };
        self.run(py, buffer, Call::write(target, false, file_offset), true)
    }

    /// A tensor of `num_elem` elements of `example_tensor`'s dtype in
    /// page-locked memory (unlocked, with a warning, where the memlock limit
    /// refuses), managed process-wide.
    #[pyo3(signature = (num_elem, example_tensor))]
    fn new_cpu_locked_tensor<'py>(
        &self,
        py: Python<'py>,
        num_elem: i64,
        example_tensor: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        new_locked_tensor(py, num_elem, example_tensor)
    }

    /// Takes a tensor from [`new_cpu_locked_tensor`] out of the manager;
    /// false for any other tensor.
    fn free_cpu_locked_tensor(&self, tensor: &Bound<'_, PyAny>) -> PyResult<bool> {
        free_locked_tensor(tensor)
    }

    /// Whether the buffer takes I/O with no bounce copy in DeepSpeed's
    /// terms: torch-pinned, or inside a managed locked block.
    fn is_pinned(&self, buffer: &Bound<'_, PyAny>) -> PyResult<bool> {
        is_pinned(buffer)
    }

    /// Waits for every operation submitted before the call, by any thread:
    /// those no other `wait()` has taken are finished here (the count
    /// returned; 0 with none), the rest by the `wait()` that took them,
    /// which this one waits for. The first failure among this call's own
    /// operations is raised once all are done.
    fn wait(&self, py: Python<'_>) -> PyResult<i64> {
        self.check_process()?.queue.wait(py)
    }
}

impl Drop for AioHandle {
    /// Finishes what is in flight: the engine is done with every tensor,
    /// and reads land, before the handle goes. In another process than the
    /// one that made it (a fork), nothing: its engine's threads are not
    /// there to finish or to join, so the handle's memory is left as it is.
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            return;
        }
        if !self.inner.queue.is_empty() {
            Python::attach(|py| {
                if let Err(e) = self.wait(py) {
                    e.print(py);
                }
            });
        }
        // SAFETY: dropped once, here, in the process that made it.
        unsafe { ManuallyDrop::drop(&mut self.inner) };
    }
}

/// `new_cpu_locked_tensor`, shared with `pin_handle`.
pub fn new_locked_tensor<'py>(
    py: Python<'py>,
    num_elem: i64,
    example_tensor: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let elements = usize::try_from(num_elem).map_err(|_| {
        PyValueError::new_err(format!("num_elem must not be negative, not {num_elem}"))
    })?;
    let element: usize = example_tensor.call_method0("element_size")?.extract()?;
    let nbytes = elements
        .checked_mul(element)
        .ok_or_else(|| PyValueError::new_err(format!("{elements} elements of {element} bytes")))?;
    // An empty tensor has no memory to manage (its data_ptr is 0).
    let (block, refused) = locked::allocate(nbytes, nbytes > 0).map_err(to_py)?;
    if let Some(why) = refused {
        let text = CString::new(format!(
            "tensorswap: {nbytes} bytes could not be page-locked ({why}); the tensor is usable for I/O, unlocked"
        ))
        .unwrap_or_else(|_| c"tensorswap: page-locking refused".to_owned());
        PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &text, 1)?;
    }
    let dtype = example_tensor.getattr("dtype")?;
    tensors(py)?.call_method1("locked_tensor", (Py::new(py, block)?, elements, dtype))
}

/// `free_cpu_locked_tensor`, shared with `pin_handle`.
pub fn free_locked_tensor(tensor: &Bound<'_, PyAny>) -> PyResult<bool> {
    let address: usize = tensor.call_method0("data_ptr")?.extract()?;
    Ok(locked::free(address))
}

/// `is_pinned`, shared with `pin_handle`.
pub fn is_pinned(buffer: &Bound<'_, PyAny>) -> PyResult<bool> {
    if device_type(buffer)? != "cpu" {
        return Ok(false);
    }
    if torch_pinned(buffer) {
        return Ok(true);
    }
    let t = TensorRef::of(buffer)?;
    Ok(locked::is_managed(t.address, t.nbytes))
}
