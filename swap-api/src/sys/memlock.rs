//! Page locking (`mlock`) and the limits that govern it.

use std::fmt;

use crate::{Error, Result};

/// Bit of `CAP_IPC_LOCK` in the capability sets of `/proc/self/status`.
const CAP_IPC_LOCK: u32 = 14;

/// What this process may page-lock: `RLIMIT_MEMLOCK` and `CAP_IPC_LOCK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemlockLimit {
    /// Soft limit in bytes; `None` means unlimited.
    pub soft: Option<u64>,
    /// Hard limit in bytes; `None` means unlimited.
    pub hard: Option<u64>,
    /// The process holds `CAP_IPC_LOCK`, which lifts the limit (root usually does).
    pub cap_ipc_lock: bool,
}

impl MemlockLimit {
    /// Reads the limits of the current process.
    pub fn current() -> Self {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit through a valid pointer.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) } == 0;
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
        let bound = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v as u64);
        let (soft, hard) = if ok {
            (bound(rl.rlim_cur), bound(rl.rlim_max))
        } else {
            (Some(0), Some(0))
        };
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        Self {
            soft,
            hard,
            cap_ipc_lock: effective_caps(&status).is_some_and(|c| c & (1 << CAP_IPC_LOCK) != 0),
        }
    }

    /// Bytes this process may lock in total: `None` when unbounded.
    pub fn lockable(&self) -> Option<u64> {
        if self.cap_ipc_lock {
            None
        } else {
            self.soft
        }
    }

    /// True when locking `bytes` more is within the limit (ignoring what is
    /// already locked).
    pub fn allows(&self, bytes: u64) -> bool {
        self.lockable().is_none_or(|limit| bytes <= limit)
    }
}

impl fmt::Display for MemlockLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: Option<u64>| v.map_or("unlimited".to_string(), |b| format!("{b} bytes"));
        write!(
            f,
            "RLIMIT_MEMLOCK soft {}, hard {}, CAP_IPC_LOCK {}",
            show(self.soft),
            show(self.hard),
            if self.cap_ipc_lock { "yes" } else { "no" }
        )
    }
}

/// Parses the `CapEff:` line of `/proc/<pid>/status`.
fn effective_caps(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

/// A page-locked address range, unlocked on drop.
///
/// The guard does not own the memory: whoever creates it must keep the range
/// allocated until the guard is dropped (see [`Locked::new`]).
#[derive(Debug)]
pub struct Locked {
    addr: usize,
    len: usize,
}

impl Locked {
    /// Locks `len` bytes at `ptr` into RAM (`mlock`), faulting them in.
    ///
    /// # Safety
    /// `ptr..ptr + len` must be a live allocation of this process, and stay
    /// allocated until the returned guard is dropped.
    pub unsafe fn new(ptr: *const u8, len: usize) -> Result<Self> {
        if len != 0 {
            // SAFETY: the caller guarantees the range is mapped memory of ours.
            if unsafe { libc::mlock(ptr.cast(), len) } != 0 {
                let cause = std::io::Error::last_os_error();
                return Err(diagnose(len, cause));
            }
        }
        Ok(Self {
            addr: ptr as usize,
            len,
        })
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: the range was locked by new() and, by its contract, is still
        // allocated. munlock cannot invalidate memory.
        if unsafe { libc::munlock(self.addr as *const libc::c_void, self.len) } != 0 {
            // Once: when it fails, it fails for every range (the map count).
            static WARNED: std::sync::Once = std::sync::Once::new();
            let error = std::io::Error::last_os_error();
            WARNED.call_once(|| {
                tracing::warn!(
                    len = self.len,
                    %error,
                    "munlock failed; the pages stay locked until freed (said once)"
                );
            });
        }
    }
}

/// The error for a failed `mlock`: [`Error::MapCount`] when the process
/// is at `vm.max_map_count` (mlock says ENOMEM for that too), else
/// [`Error::Pin`].
fn diagnose(len: usize, cause: std::io::Error) -> Error {
    if cause.raw_os_error() == Some(libc::ENOMEM) {
        let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        let mappings = mapping_count();
        if let (Some(limit), Some(mappings)) = (limit, mappings) {
            // Locking may split a mapping in three: two more than it had.
            if mappings.saturating_add(2) >= limit {
                return Error::MapCount {
                    len,
                    mappings,
                    limit,
                };
            }
        }
    }
    Error::Pin { len, cause }
}

/// Lines of `/proc/self/maps`, counted through a small buffer: at the map
/// limit a large allocation (which would need a mapping) fails.
pub fn mapping_count() -> Option<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open("/proc/self/maps").ok()?;
    let mut buf = [0u8; 4096];
    let mut lines = 0;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::aligned::AlignedAlloc;

    #[test]
    fn parses_effective_capabilities() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_caps(status), Some(0x1ff_ffff_ffff));
        assert_eq!(effective_caps("Name: x\n"), None);
        assert_eq!(effective_caps("CapEff:\tzz\n"), None);
    }

    #[test]
    fn limit_logic() {
        let user = MemlockLimit {
            soft: Some(8 << 20),
            hard: Some(8 << 20),
            cap_ipc_lock: false,
        };
        assert!(user.allows(8 << 20));
        assert!(!user.allows((8 << 20) + 1));
        let root = MemlockLimit {
            cap_ipc_lock: true,
            ..user
        };
        assert!(root.allows(u64::MAX));
        assert!(root.to_string().contains("CAP_IPC_LOCK yes"));
    }

    #[test]
    fn lock_and_unlock_a_page_when_allowed() {
        let buf = AlignedAlloc::zeroed(4096, 4096).unwrap();
        // SAFETY: buf outlives the guard.
        match unsafe { Locked::new(buf.as_ptr(), buf.len()) } {
            Ok(guard) => drop(guard),
            Err(Error::Pin { len, .. }) => {
                assert_eq!(len, 4096);
                assert!(!MemlockLimit::current().allows(4096));
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
}
