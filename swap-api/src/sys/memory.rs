//! How much memory this process may still take: the least of what the
//! kernel says is available, what the memory cgroup leaves (a container's
//! limit, cgroup v2 or v1), and what `RLIMIT_AS` leaves of the address
//! space. A program checks what it is about to allocate against
//! [`tightest`] and refuses with the figures, instead of being killed by the
//! kernel or aborted by the allocator.
//!
//! ```
//! use tensorswap_core::sys::memory;
//! if let Some(limit) = memory::tightest() {
//!     // e.g. "2147483648 bytes may be allocated (MemAvailable of /proc/meminfo)"
//!     println!("{} bytes may be allocated ({limit})", limit.room());
//! }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

/// One limit on the memory this process may still take.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoryLimit {
    /// `MemAvailable` of `/proc/meminfo`: what the machine can give without
    /// swapping.
    Available {
        /// Bytes available.
        bytes: u64,
    },
    /// A memory cgroup's limit (`memory.max`, or v1's
    /// `memory.limit_in_bytes`) and its use (`memory.current`, or
    /// `memory.usage_in_bytes`).
    Cgroup {
        /// The file the limit was read from.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
        /// Bytes the cgroup uses now.
        usage: u64,
    },
    /// `RLIMIT_AS` and the address space this process maps now (`VmSize`).
    AddressSpace {
        /// The limit in bytes.
        limit: u64,
        /// Bytes mapped now.
        used: u64,
    },
}

impl MemoryLimit {
    /// Bytes that may still be taken under this limit.
    pub fn room(&self) -> u64 {
        match *self {
            Self::Available { bytes } => bytes,
            Self::Cgroup { limit, usage, .. } => limit.saturating_sub(usage),
            Self::AddressSpace { limit, used } => limit.saturating_sub(used),
        }
    }
}

/// What sets the limit, with its figures (the room it leaves is
/// [`MemoryLimit::room`]).
impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
        match self {
            Self::Available { .. } => write!(f, "MemAvailable of /proc/meminfo"),
            Self::Cgroup { path, limit, usage } => write!(
                f,
                "the memory cgroup's limit of {:.2} GiB ({}) less {:.2} GiB in use",
                gib(*limit),
                path.display(),
                gib(*usage)
            ),
            Self::AddressSpace { limit, used } => write!(
                f,
                "RLIMIT_AS (ulimit -v) of {:.2} GiB less {:.2} GiB of address space mapped",
                gib(*limit),
                gib(*used)
            ),
        }
    }
}

/// Every limit that applies now, in no order.
pub fn limits() -> Vec<MemoryLimit> {
    let mut found = Vec::new();
    if let Some(bytes) = meminfo_available() {
        found.push(MemoryLimit::Available { bytes });
    }
    if let Some(cgroup) = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| cgroup_limit(&text, Path::new("/sys/fs/cgroup")))
    {
        found.push(cgroup);
    }
    if let Some(limit) = address_space_limit() {
        found.push(limit);
    }
    found
}

/// The limit that leaves the least room, if any is known.
pub fn tightest() -> Option<MemoryLimit> {
    limits().into_iter().min_by_key(MemoryLimit::room)
}

/// Where `RLIMIT_AS` is finite, caps glibc's malloc arenas at two. Each
/// thread that allocates otherwise gets an arena of its own, reserving 64
/// MiB of address space up front: a dozen threads exhaust a few hundred
/// MiB of limit by reservation alone, and the next small allocation anywhere
/// aborts the process. Call it at the start of a program, before threads
/// start; true when the cap was set.
pub fn fit_allocator_to_address_limit() -> bool {
    if address_space_limit().is_none() {
        return false;
    }
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt only sets a tunable of the allocator; called
        // before other threads allocate.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) == 1 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        false
    }
}

fn meminfo_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    kib_field(&info, "MemAvailable:")
}

/// A `Name:  N kB` line's value in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn address_space_limit() -> Option<MemoryLimit> {
    let mut rlim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct, which `rlim` is.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rlim) } != 0
        || rlim.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(MemoryLimit::AddressSpace {
        limit: rlim.rlim_cur,
        used: kib_field(&status, "VmSize:")?,
    })
}

/// The tightest memory cgroup limit on the process's cgroup and its
/// ancestors, from `/proc/self/cgroup`'s text and the cgroup file system's
/// mount point.
fn cgroup_limit(proc_cgroup: &str, root: &Path) -> Option<MemoryLimit> {
    let mut best: Option<MemoryLimit> = None;
    for line in proc_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        let candidates = if id == "0" && controllers.is_empty() {
            // v2: the unified hierarchy.
            ancestors(&root.join(relative), root, "memory.max", "memory.current")
        } else if controllers.split(',').any(|c| c == "memory") {
            let base = root.join("memory");
            ancestors(
                &base.join(relative),
                &base,
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            continue;
        };
        for found in candidates {
            if best.as_ref().is_none_or(|b| found.room() < b.room()) {
                best = Some(found);
            }
        }
    }
    best
}

/// The limits set on `dir` and each of its parents up to `top`.
fn ancestors(dir: &Path, top: &Path, limit: &str, usage: &str) -> Vec<MemoryLimit> {
    let read = |p: PathBuf| std::fs::read_to_string(p).ok();
    dir.ancestors()
        .take_while(|d| d.starts_with(top))
        .filter_map(|d| {
            let path = d.join(limit);
            // "max" (v2), or a v1 "unlimited" of about 2^63: no limit.
            let limit: u64 = read(path.clone())?.trim().parse().ok()?;
            if limit >= 1 << 62 {
                return None;
            }
            let usage = read(d.join(usage))?.trim().parse().ok()?;
            Some(MemoryLimit::Cgroup { path, limit, usage })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_v2_cgroup_limit_on_an_ancestor_is_found() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(&r.join("a/memory.max"), "1073741824\n");
        write(&r.join("a/memory.current"), "268435456\n");
        write(&r.join("a/b/memory.max"), "max\n");
        write(&r.join("a/b/memory.current"), "1\n");
        let found = cgroup_limit("0::/a/b\n", r).expect("a limit");
        assert_eq!(found.room(), 3 << 28);
        assert!(found.to_string().contains("a/memory.max"), "{found}");
        assert_eq!(cgroup_limit("0::/\n", r), None);
    }

    #[test]
    fn a_v1_memory_controller_limit_is_found_and_unlimited_is_none() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(&r.join("memory/job/memory.limit_in_bytes"), "536870912\n");
        write(&r.join("memory/job/memory.usage_in_bytes"), "1000\n");
        write(
            &r.join("memory/memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        write(&r.join("memory/memory.usage_in_bytes"), "5\n");
        let text = "12:cpu,cpuacct:/job\n7:memory:/job\n";
        assert_eq!(
            cgroup_limit(text, r).map(|l| l.room()),
            Some(536870912 - 1000)
        );
        assert_eq!(cgroup_limit("7:memory:/\n", r), None);
    }

    #[test]
    fn the_tightest_limit_is_the_one_with_least_room() {
        let all = limits();
        assert!(
            all.iter()
                .any(|l| matches!(l, MemoryLimit::Available { .. })),
            "/proc/meminfo has MemAvailable on Linux: {all:?}"
        );
        let tightest = tightest().expect("a limit");
        assert!(all.iter().all(|l| l.room() >= tightest.room()));
    }
}
