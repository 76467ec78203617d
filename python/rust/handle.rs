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
//! - unaligned buffers, offsets and lengths work under `O_DIRECT` (the
//!   engine moves unaligned parts through the page cache);
//! - writes never truncate, as DeepSpeed's do not.
//!
//! The GIL is released while waiting. Tensors on the CPU and contiguous
//! take I/O in place, pinned or not; others (non-contiguous, or on a GPU)
//! go through a locked bounce buffer.

use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::sync::{Mutex, MutexGuard};

use pyo3::exceptions::{PyRuntimeWarning, PyValueError};
use pyo3::prelude::*;
use swap_api::{AioConfig, AnyEngine, EngineKind, IoOp, NamedOptions, SwapFile};

use crate::locked;
use crate::op::{tensors, to_py, Op};
use crate::tensor::{device_type, torch_pinned, TensorRef};

/// DeepSpeed's `O_DIRECT` alignment unit (`get_alignment` is the
/// parallelism times this).
const O_DIRECT_ALIGNMENT: usize = 512;

/// DeepSpeed's `aio_handle`.
#[pyclass(name = "aio_handle", module = "tensorswap._native")]
pub struct AioHandle {
    config: AioConfig,
    engine: AnyEngine,
    pending: Mutex<Vec<Op>>,
}

/// Where a file comes from.
enum Target<'a> {
    Path(&'a str),
    Fd(i32),
}

/// One call's operation: which way, which file, where in it, and whether
/// to check the file against the tensor afterwards.
struct Call<'a> {
    op: IoOp,
    target: Target<'a>,
    validate: bool,
    file_offset: i64,
}

impl<'a> Call<'a> {
    fn read(filename: &'a str, validate: bool, file_offset: i64) -> Self {
        Self {
            op: IoOp::Read,
            target: Target::Path(filename),
            validate,
            file_offset,
        }
    }

    fn write(target: Target<'a>, validate: bool, file_offset: i64) -> Self {
        Self {
            op: IoOp::Write,
            target,
            validate,
            file_offset,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Says why a call returns `-1` (a `RuntimeWarning`), and returns it.
fn refuse(py: Python<'_>, why: String) -> PyResult<i64> {
    let text = CString::new(format!("tensorswap aio_handle: {why}"))
        .unwrap_or_else(|_| c"tensorswap aio_handle: refused".to_owned());
    PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &text, 1)?;
    Ok(-1)
}

impl AioHandle {
    /// Opens the file of an operation; the error is the reason DeepSpeed
    /// would return `-1` for.
    fn open(op: IoOp, target: &Target<'_>) -> Result<SwapFile, String> {
        let options = match op {
            IoOp::Read => NamedOptions::read_only(),
            IoOp::Write => NamedOptions::read_write().create(true),
        }
        // The CRC log assumes the file is ours alone; DeepSpeed's files
        // are shared with other tools.
        .checksums(false);
        match target {
            Target::Path(path) => SwapFile::open_named(path, options).map_err(|e| e.to_string()),
            Target::Fd(fd) if *fd < 0 => Err(format!("descriptor {fd} is not open")),
            Target::Fd(fd) => {
                // SAFETY: only borrowed for the call, which duplicates it;
                // an fd that is not open fails the duplication, typed.
                let borrowed = unsafe { BorrowedFd::borrow_raw(*fd) };
                SwapFile::from_fd(borrowed, options).map_err(|e| e.to_string())
            }
        }
    }

    /// Checks and submits one operation; `Ok(None)` with the warning said
    /// where DeepSpeed would return `-1`.
    fn submit(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        call: Call<'_>,
        parallel: bool,
    ) -> PyResult<Option<Op>> {
        let Call {
            op,
            target,
            validate,
            file_offset,
        } = call;
        let nbytes = TensorRef::of(buffer)?.nbytes;
        let name = match &target {
            Target::Path(p) => (*p).to_owned(),
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
        let file = match Self::open(op, &target) {
            Ok(f) => f,
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
        Op::submit(py, &self.engine, op, file, offset, buffer, validate).map(Some)
    }

    /// Submits and, unless `asynchronous`, waits for every pending
    /// operation: DeepSpeed's return values (0 when queued, the count
    /// completed when waited, -1 when refused).
    fn run(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        call: Call<'_>,
        asynchronous: bool,
    ) -> PyResult<i64> {
        let Some(submitted) = self.submit(py, buffer, call, true)? else {
            return Ok(-1);
        };
        lock(&self.pending).push(submitted);
        if asynchronous {
            Ok(0)
        } else {
            self.wait(py)
        }
    }

    /// `read` / `write`: one synchronous operation of the whole buffer,
    /// returning 0 (DeepSpeed's non-parallel calls; earlier asynchronous
    /// operations stay pending).
    fn whole(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>, call: Call<'_>) -> PyResult<i64> {
        let Some(mut submitted) = self.submit(py, buffer, call, false)? else {
            return Ok(-1);
        };
        py.detach(|| submitted.wait()).map_err(to_py)?;
        submitted.finish(py)?;
        Ok(0)
    }
}

#[pymethods]
impl AioHandle {
    /// DeepSpeed's constructor and defaults.
    #[new]
    #[pyo3(signature = (block_size=1048576, queue_depth=128, single_submit=false, overlap_events=false, intra_op_parallelism=1))]
    fn new(
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
        Ok(Self {
            config,
            engine,
            pending: Mutex::new(Vec::new()),
        })
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
        filename: &str,
        validate: bool,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.whole(py, buffer, Call::read(filename, validate, file_offset))
    }

    /// Synchronous write of the whole buffer; 0, or -1 when refused.
    #[pyo3(signature = (buffer, filename, validate, file_offset=0))]
    fn write(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        filename: &str,
        validate: bool,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.whole(
            py,
            buffer,
            Call::write(Target::Path(filename), validate, file_offset),
        )
    }

    /// Parallel read: 0 when `async`, else the count of operations waited.
    #[pyo3(signature = (buffer, filename, validate, r#async, file_offset=0))]
    fn pread(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        filename: &str,
        validate: bool,
        r#async: bool,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.run(
            py,
            buffer,
            Call::read(filename, validate, file_offset),
            r#async,
        )
    }

    /// Parallel write: 0 when `async`, else the count of operations waited.
    #[pyo3(signature = (buffer, filename, validate, r#async, file_offset=0))]
    fn pwrite(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        filename: &str,
        validate: bool,
        r#async: bool,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.run(
            py,
            buffer,
            Call::write(Target::Path(filename), validate, file_offset),
            r#async,
        )
    }

    /// `pread(buffer, filename, False, False, file_offset)`.
    #[pyo3(signature = (buffer, filename, file_offset=0))]
    fn sync_pread(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        filename: &str,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.run(py, buffer, Call::read(filename, false, file_offset), false)
    }

    /// `pwrite(buffer, filename, False, False, file_offset)`.
    #[pyo3(signature = (buffer, filename, file_offset=0))]
    fn sync_pwrite(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        filename: &str,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.run(
            py,
            buffer,
            Call::write(Target::Path(filename), false, file_offset),
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
        filename: &str,
        file_offset: i64,
    ) -> PyResult<i64> {
        self.run(py, buffer, Call::read(filename, false, file_offset), true)
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
        fd: Option<i32>,
    ) -> PyResult<i64> {
        let path: String;
        let target = match (filename, fd) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "async_pwrite takes a filename or an fd, not both",
                ))
            }
            (None, Some(fd)) => Target::Fd(fd),
            (Some(f), None) => match f.extract::<i32>() {
                Ok(fd) => Target::Fd(fd),
                Err(_) => {
                    path = f.extract()?;
                    Target::Path(&path)
                }
            },
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

    /// Waits for every pending operation; the count completed since the
    /// last wait (0 with none). The first failure is raised once all are
    /// done.
    fn wait(&self, py: Python<'_>) -> PyResult<i64> {
        let mut ops = std::mem::take(&mut *lock(&self.pending));
        let outcomes: Vec<swap_api::Result<()>> =
            py.detach(|| ops.iter_mut().map(Op::wait).collect());
        let count = ops.len() as i64;
        let mut first: Option<PyErr> = None;
        for (op, outcome) in ops.into_iter().zip(outcomes) {
            let finished = outcome.map_err(to_py).and_then(|()| op.finish(py));
            if let Err(e) = finished {
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(count),
        }
    }
}

impl Drop for AioHandle {
    /// Finishes what is in flight: the engine is done with every tensor,
    /// and reads land, before the handle goes.
    fn drop(&mut self) {
        let ops = lock(&self.pending).len();
        if ops == 0 {
            return;
        }
        Python::attach(|py| {
            if let Err(e) = self.wait(py) {
                e.print(py);
            }
        });
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
