//! Running under a non-root user's page-locking limit, for `harness = false`
//! tests that check what happens at the limit.

/// `nobody`, whom root becomes to lose `CAP_IPC_LOCK`.
const NOBODY: libc::uid_t = 65534;

/// Puts this process under a soft `RLIMIT_MEMLOCK` of at most `limit` bytes;
/// as root, first becomes `nobody`, which drops `CAP_IPC_LOCK` (otherwise
/// root locks past any limit). Call it first thing in `main`, before any
/// thread exists: the ids change for this thread only otherwise.
pub fn limit_memlock(limit: u64) -> Result<(), String> {
    // SAFETY: plain syscalls on this process; the caller runs them before
    // any other thread exists.
    unsafe {
        if libc::geteuid() == 0 && (libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0) {
            return Err(format!(
                "setuid(nobody): {}",
                std::io::Error::last_os_error()
            ));
        }
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) != 0 {
            return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
        }
        rl.rlim_cur = rl.rlim_cur.min(limit as libc::rlim_t);
        if libc::setrlimit(libc::RLIMIT_MEMLOCK, &rl) != 0 {
            return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}
