//! Construction knobs of [`CpuDevice`].

use std::sync::Once;
use std::time::Duration;

use tensorswap_core::sys::memlock::MemlockLimit;
use tensorswap_core::{sys, Error, Pinning, Result};

use crate::{CpuDevice, BACKEND};

/// Builds a [`CpuDevice`]; see [`CpuDevice::builder`].
#[derive(Debug, Clone, Default)]
pub struct CpuDeviceBuilder {
    capacity: Option<usize>,
    latency: Duration,
    pinning: Pinning,
}

impl CpuDeviceBuilder {
    /// Device memory the device may hand out in total (default: the
    /// machine's physical memory). Allocations beyond it fail with
    /// [`Error::OutOfMemory`].
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.capacity = Some(bytes);
        self
    }

    /// Time the copy thread waits before each transfer (default: none), to
    /// make asynchrony observable in tests.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Page-locking policy (default: [`Pinning::Auto`]).
    pub fn pinning(mut self, pinning: Pinning) -> Self {
        self.pinning = pinning;
        self
    }

    /// Opens the device and starts its copy thread.
    pub fn build(self) -> Result<CpuDevice> {
        let limit = MemlockLimit::current();
        let pinned = decide_pinning(self.pinning, &limit)?;
        let capacity = self
            .capacity
            .or_else(sys::physical_memory)
            .unwrap_or(isize::MAX as usize);
        CpuDevice::start(capacity, self.latency, pinned, self.pinning != Pinning::Off)
    }
}

/// Applies the pinning policy to the process's lock limits.
fn decide_pinning(policy: Pinning, limit: &MemlockLimit) -> Result<bool> {
    let unbounded = limit.lockable().is_none();
    match (policy, unbounded) {
        (Pinning::Off, _) => Ok(false),
        (_, true) => Ok(true),
        (Pinning::Required, false) => Err(Error::Unavailable {
            component: BACKEND,
            reason: format!(
                "pinning required but this process may not lock memory without a limit ({limit}); \
                 run with CAP_IPC_LOCK, raise `ulimit -l`, or use Pinning::Auto"
            ),
        }),
        (Pinning::Auto, false) => {
            static WARN: Once = Once::new();
            WARN.call_once(|| {
                tracing::warn!(
                    %limit,
                    "cpu device memory will not be page-locked; raise `ulimit -l` to unlimited \
                     or grant CAP_IPC_LOCK to pin it"
                );
            });
            Ok(false)
        }
    }
}

/// The constructors: each goes through a builder.
impl CpuDevice {
    /// Opens a device with the default knobs (capacity = physical memory,
    /// no added latency, [`crate::Pinning::Auto`]).
    pub fn new() -> Result<Self> {
        Self::builder().build()
    }

    /// Starts configuring a device.
    pub fn builder() -> CpuDeviceBuilder {
        CpuDeviceBuilder::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: MemlockLimit = MemlockLimit {
        soft: Some(8 << 20),
        hard: Some(8 << 20),
        cap_ipc_lock: false,
    };
    const ROOT: MemlockLimit = MemlockLimit {
        cap_ipc_lock: true,
        ..USER
    };

    #[test]
    fn pinning_policy_follows_the_lock_limit() {
        assert!(decide_pinning(Pinning::Auto, &ROOT).unwrap());
        assert!(!decide_pinning(Pinning::Auto, &USER).unwrap());
        assert!(!decide_pinning(Pinning::Off, &ROOT).unwrap());
        assert!(decide_pinning(Pinning::Required, &ROOT).unwrap());
        let err = decide_pinning(Pinning::Required, &USER).unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err}");
        assert!(err.to_string().contains("ulimit -l"), "{err}");
    }
}
