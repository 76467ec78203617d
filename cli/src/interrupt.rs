//! SIGINT, SIGTERM and SIGHUP end a run cleanly: the first one is recorded,
//! the running command stops at its next step with [`Interrupted`], and the
//! drops on the way out remove its swap folders. A second signal of any of
//! them ends the process at once (the kernel still reclaims the swap files,
//! which have no names; the next run removes the empty folder).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The signals that end a run cleanly.
const SIGNALS: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

struct Flags {
    /// Set by the first signal; arms the default action for the next one.
    seen: Arc<AtomicBool>,
    /// The number of the last signal seen.
    which: Arc<AtomicUsize>,
}

static FLAGS: OnceLock<Flags> = OnceLock::new();

/// The run stopped because the process was asked to end.
#[derive(Debug)]
pub(crate) struct Interrupted {
    signal: i32,
}

impl Interrupted {
    /// The exit status a shell expects after this signal: 128 + its number.
    pub(crate) fn exit_code(&self) -> u8 {
        u8::try_from(128 + self.signal).unwrap_or(u8::MAX)
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.signal {
            SIGINT => "SIGINT",
            SIGTERM => "SIGTERM",
            SIGHUP => "SIGHUP",
            _ => "a signal",
        };
        write!(
            f,
            "interrupted by {name}; the run stopped and removed its swap files"
        )
    }
}

impl std::error::Error for Interrupted {}

/// Installs the handlers (once; later calls do nothing).
pub(crate) fn install() -> std::io::Result<()> {
    if FLAGS.get().is_some() {
        return Ok(());
    }
    let flags = Flags {
        seen: Arc::default(),
        which: Arc::default(),
    };
    for signal in SIGNALS {
        // Order matters: the conditional default sees the flag as it was
        // before this signal set it.
        signal_hook::flag::register_conditional_default(signal, Arc::clone(&flags.seen))?;
        signal_hook::flag::register(signal, Arc::clone(&flags.seen))?;
        let number = usize::try_from(signal).unwrap_or_default();
        signal_hook::flag::register_usize(signal, Arc::clone(&flags.which), number)?;
    }
    let _ = FLAGS.set(flags);
    Ok(())
}

/// `Err(Interrupted)` once one of the signals has arrived.
pub(crate) fn check() -> Result<(), Interrupted> {
    let Some(flags) = FLAGS.get() else {
        return Ok(());
    };
    if !flags.seen.load(Ordering::SeqCst) {
        return Ok(());
    }
    let signal = i32::try_from(flags.which.load(Ordering::SeqCst)).unwrap_or(0);
    Err(Interrupted { signal })
}
