//! Direct storage (GPUDirect Storage): files read into and written from
//! device memory with no host copy, where the backend claims it; a typed
//! refusal that hands the memory back where it does not.

use std::os::unix::fs::FileExt;

use proptest::prelude::*;
use tempfile::TempDir;
use tensorswap_core::{Device, DeviceExt, Error, SwapDir, SwapFile};

use super::io::{filled, get};
use crate::engine::scratch_parent;
use crate::{check, expect_bytes, pattern, raw_file, CaseError, Ctx, Outcome};

/// A scratch swap file and what keeps it alive.
struct Scratch {
    file: SwapFile,
    _dir: SwapDir,
    _parent: TempDir,
}

fn scratch() -> Result<Scratch, CaseError> {
    let parent = scratch_parent()?;
    let dir = SwapDir::create(parent.path())?;
    Ok(Scratch {
        file: dir.create_file()?,
        _dir: dir,
        _parent: parent,
    })
}

/// The scratch file opened for direct storage, or `None` after checking the
/// refusal of a device that does not claim it (or cannot open it here).
fn open_direct<D: Device>(dev: &D) -> Result<Option<Scratch>, CaseError> {
    let scratch = scratch()?;
    let refusal = match dev.open_direct(&scratch.file) {
        Ok(()) => {
            check!(
                dev.capabilities().direct_storage,
                "open_direct succeeded on a device that does not claim direct storage"
            );
            return Ok(Some(scratch));
        }
        Err(err) => err,
    };
    check!(
        refusal.is_unavailable(),
        "open_direct failed with {refusal}, expected Unsupported or Unavailable"
    );
    if dev.capabilities().direct_storage {
        eprintln!("note: direct storage is claimed but unavailable here: {refusal}");
    }
    // Submissions are refused too, with the memory handed back intact.
    let bytes = pattern(3, 4096);
    let buf = filled(dev, &bytes)?;
    let refused = match dev.read_direct(&scratch.file, 0, buf, 0, 4096) {
        Ok(ticket) => match ticket.wait() {
            Ok(_) => {
                return Err(CaseError(
                    "a direct read ran after open_direct refused".into(),
                ))
            }
            Err(failed) => failed,
        },
        Err(refused) => refused,
    };
    check!(
        refused.error.is_unavailable(),
        "direct read without direct storage failed with {}, expected Unsupported or Unavailable",
        refused.error
    );
    let (_, back) = get(dev, refused.value.device, 0, 4096)?;
    expect_bytes("memory handed back by a refused direct read", &back, &bytes)?;
    Ok(None)
}

/// Unaligned ranges move byte for byte: memory to file (checked on disk),
/// then file to another buffer at another offset, whose bytes outside the
/// range stay as they were.
pub fn direct_roundtrip<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    let Some(scratch) = open_direct(&dev)? else {
        ctx.checked(1);
        return Ok(());
    };
    let file = &scratch.file;
    let disk = raw_file(file)?;
    let strategy = (1usize..300_000, 0usize..5_000, 0u64..70_000, any::<u64>());
    ctx.proptest(strategy, |(len, mem_offset, file_offset, seed)| {
        let size = mem_offset + len + 1_000;
        let src_bytes = pattern(seed, size);
        let range = &src_bytes[mem_offset..mem_offset + len];
        let src = filled(&dev, &src_bytes)?;
        dev.write_direct(src, mem_offset, len, file, file_offset)?
            .wait()?;
        let mut on_disk = vec![0u8; len];
        disk.read_exact_at(&mut on_disk, file_offset)
            .map_err(|e| CaseError(format!("reading back the file: {e}")))?;
        expect_bytes("file after a direct write", &on_disk, range)?;

        let mut want = pattern(seed ^ 1, size);
        let dst = filled(&dev, &want)?;
        let dst_offset = size - len;
        let done = dev
            .read_direct(file, file_offset, dst, dst_offset, len)?
            .wait()?;
        want[dst_offset..].copy_from_slice(range);
        let (_, got) = get(&dev, done.device, 0, size)?;
        expect_bytes("device memory after a direct read", &got, &want)
    })
}

/// A read past the end of the file is `ShortIo`; ranges outside the memory
/// or past the largest file offset are refused up front; the memory always
/// comes back and the device stays usable.
pub fn direct_errors<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let dev = ctx.device()?;
    let Some(scratch) = open_direct(&dev)? else {
        ctx.checked(1);
        return Ok(());
    };
    let file = &scratch.file;
    let bytes = pattern(5, 10_000);
    let buf = filled(&dev, &bytes)?;
    let buf = dev.write_direct(buf, 0, 1_000, file, 0)?.wait()?.device;
    file.set_len(1_000)?;

    let short = match dev.read_direct(file, 500, buf, 0, 2_000) {
        Ok(ticket) => ticket.wait().err(),
        Err(refused) => Some(refused),
    };
    let Some(short) = short else {
        return Err(CaseError(
            "a read past the end of the file succeeded".into(),
        ));
    };
    check!(
        matches!(short.error, Error::ShortIo { .. }),
        "a read past the end of the file failed with {}, expected ShortIo",
        short.error
    );
    let mut buf = short.value.device;

    // (what, refused as Layout rather than OutOfRange, file offset, memory offset, len)
    let refusals = [
        ("memory range past the end", false, 0, 9_000, 1_001),
        ("memory offset past the end", false, 0, 10_001, 0),
        ("file offset past the largest", true, u64::MAX - 10, 0, 100),
    ];
    for (what, layout, file_offset, mem_offset, len) in refusals {
        buf = match dev.write_direct(buf, mem_offset, len, file, file_offset) {
            Ok(ticket) => {
                drop(ticket);
                return Err(CaseError(format!("{what}: the direct write was accepted")));
            }
            Err(refused) => {
                let expected = match refused.error {
                    Error::Layout { .. } => layout,
                    Error::OutOfRange { .. } => !layout,
                    _ => false,
                };
                check!(expected, "{what}: refused with {}", refused.error);
                refused.value.device
            }
        };
    }
    // Still usable: a valid read brings the file's bytes.
    let done = dev.read_direct(file, 0, buf, 0, 1_000)?.wait()?;
    let (_, got) = get(&dev, done.device, 0, 1_000)?;
    expect_bytes("direct read after the errors", &got, &bytes[..1_000])?;
    ctx.checked(5);
    Ok(())
}
