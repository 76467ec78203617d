//! CPU time of this process, for the CPU cost of I/O.

use std::time::Duration;

/// User + system CPU time consumed since [`CpuClock::start`].
pub(crate) struct CpuClock(Duration);

impl CpuClock {
    pub(crate) fn start() -> Self {
        Self(used())
    }

    /// CPU seconds used by every thread of the process since `start`.
    pub(crate) fn seconds(&self) -> f64 {
        used().saturating_sub(self.0).as_secs_f64()
    }
}

fn used() -> Duration {
    // SAFETY: an all-zero rusage is valid; getrusage fills it through a valid pointer.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
