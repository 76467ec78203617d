//! The driver's status codes the emulator returns (the values of CUDA's
//! `CUresult`).

/// A driver status; 0 is success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Status(pub u32);

impl Status {
    /// `CUDA_SUCCESS`.
    pub const SUCCESS: Status = Status(0);
    /// `CUDA_ERROR_INVALID_VALUE`: a pointer, length or flag that is wrong.
    pub const INVALID_VALUE: Status = Status(1);
    /// `CUDA_ERROR_OUT_OF_MEMORY`.
    pub const OUT_OF_MEMORY: Status = Status(2);
    /// `CUDA_ERROR_NOT_INITIALIZED`: a call before `cuInit`.
    pub const NOT_INITIALIZED: Status = Status(3);
    /// `CUDA_ERROR_INVALID_DEVICE`.
    pub const INVALID_DEVICE: Status = Status(101);
    /// `CUDA_ERROR_INVALID_CONTEXT`.
    pub const INVALID_CONTEXT: Status = Status(201);
    /// `CUDA_ERROR_INVALID_HANDLE`: an unknown stream or event.
    pub const INVALID_HANDLE: Status = Status(400);
    /// `CUDA_ERROR_NOT_READY`: work still pending (a query).
    pub const NOT_READY: Status = Status(600);
    /// `CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED`.
    pub const HOST_MEMORY_ALREADY_REGISTERED: Status = Status(712);
    /// `CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED`.
    pub const HOST_MEMORY_NOT_REGISTERED: Status = Status(713);
    /// `CUDA_ERROR_NOT_SUPPORTED`: an entry point the emulator lacks.
    pub const NOT_SUPPORTED: Status = Status(801);

    /// The status of an outcome.
    pub fn of(outcome: Result<(), Status>) -> Status {
        outcome.err().unwrap_or(Status::SUCCESS)
    }
}

/// Refusals so far in this process (what [`refused`] reports).
static REFUSALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many calls the emulator refused so far: a test that expects none
/// checks that this did not move (a refusal the code under test only
/// logged is still a bug).
pub fn refused() -> u64 {
    REFUSALS.load(std::sync::atomic::Ordering::SeqCst)
}

/// Says loudly what the emulator refused, and why: a refused pointer is a
/// bug in the code under test, and must not pass unnoticed in a test log.
pub(crate) fn refuse(status: Status, what: std::fmt::Arguments<'_>) -> Status {
    count_refusal(status.0, what);
    status
}

/// Counts a refusal with status `code` (the driver's or cuFile's) and says
/// it on stderr.
pub(crate) fn count_refusal(code: u32, what: std::fmt::Arguments<'_>) {
    REFUSALS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    // The emulator is a test fixture loaded into processes that may have no
    // tracing subscriber of their own: stderr is where a test log shows it.
    eprintln!("cuda-emulator: refused ({code}): {what}");
}
