//! Direct storage on the CPU backend: device memory is host memory, so a
//! file is read into it (or written from it) with `pread`/`pwrite`, no
//! staging buffer in between.

use std::io;
use std::os::fd::AsRawFd;

use swap_api::sys::fs::{pread, pwrite};
use swap_api::{Error, IoOp, Result, SwapFile};

/// Moves all `len` bytes between `mem` and `file` at `offset`, resuming
/// after short transfers and interruptions.
///
/// Uses the file's buffered descriptor: device memory and tensor offsets
/// carry no direct-I/O alignment.
///
/// # Safety
/// `mem..mem + len` must be valid (writable for reads) and accessed by
/// nobody else for the duration of the call.
pub(crate) unsafe fn transfer(
    op: IoOp,
    file: &SwapFile,
    offset: u64,
    mem: *mut u8,
    len: usize,
) -> Result<()> {
    let fd = file.descriptor(false).as_raw_fd();
    let mut done = 0;
    while done < len {
        let at = offset + done as u64;
        // SAFETY: `done < len`, so the cursor and the rest stay inside the
        // caller's range, which is ours alone for the call.
        let moved = unsafe {
            let cursor = mem.add(done);
            match op {
                IoOp::Read => pread(fd, cursor, len - done, at),
                IoOp::Write => pwrite(fd, cursor, len - done, at),
            }
        };
        match moved {
            Ok(0) => {
                return Err(Error::ShortIo {
                    op,
                    path: file.path().to_owned(),
                    offset,
                    len,
                    done,
                })
            }
            Ok(n) => done += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Io {
                    op,
                    path: file.path().to_owned(),
                    offset: at,
                    len: len - done,
                    source,
                })
            }
        }
    }
    Ok(())
}
