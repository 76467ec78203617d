//! Swap files: private, not redirectable, truncated on replace, removed on drop.

use std::os::unix::fs::PermissionsExt;

use tensorswap_core::{DirOptions, Error, IoEngine, IoEngineExt};

use super::scratch::scratch;
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

fn mode(path: &std::path::Path) -> Result<u32, CaseError> {
    std::fs::symlink_metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .map_err(|e| CaseError(format!("stat {}: {e}", path.display())))
}

/// The folder is 0700 and files 0600; a symlink planted where the next file
/// will be created makes creation fail (`O_EXCL | O_NOFOLLOW`) and the
/// symlink's target is untouched; reopening through a symlink fails too.
pub fn symlink_not_followed<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    let s = scratch(Default::default())?;
    let first = s.dir.create_file()?;
    check!(mode(s.dir.path())? == 0o700, "swap folder mode is not 0700");
    let kept = scratch(DirOptions::default().keep(true))?;
    let named = kept.dir.create_file()?;
    check!(mode(named.path())? == 0o600, "swap file mode is not 0600");

    let victim = s.parent.path().join("victim");
    std::fs::write(&victim, b"precious").map_err(|e| CaseError(e.to_string()))?;
    let next = s.dir.file_path(first.id() + 1);
    std::os::unix::fs::symlink(&victim, &next).map_err(|e| CaseError(e.to_string()))?;
    match s.dir.create_file() {
        Err(Error::File { .. }) => {}
        Err(other) => return Err(CaseError(format!("expected a File error, got {other}"))),
        Ok(file) => {
            engine.write(&file, 0, vec![0u8; 4096])?.wait()?;
            return Err(CaseError(
                "a file was created through a planted symlink".into(),
            ));
        }
    }
    check!(
        s.dir.open_file(first.id() + 1).is_err(),
        "open_file followed a planted symlink"
    );
    let still = std::fs::read(&victim).map_err(|e| CaseError(e.to_string()))?;
    check!(still == b"precious", "the symlink's target was modified");
    // The next id is free again and works.
    let file = s.dir.create_file()?;
    engine.write(&file, 0, pattern(1, 8192))?.wait()?;
    ctx.checked(1);
    Ok(())
}

/// `replace` writes a shorter content and cuts the stale tail of the longer
/// one it replaces.
pub fn replace_truncates_stale_tail<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    let s = scratch(Default::default())?;
    let file = s.dir.create_file()?;
    engine.replace(&file, pattern(1, 1 << 20))?.wait()?;
    engine.replace(&file, pattern(2, 5000))?.wait()?;
    let len = file.len()?;
    check!(
        len == 5000,
        "file is {len} bytes after replacing 1 MiB with 5000 bytes"
    );
    let back = engine.read(&file, 0, vec![0u8; 5000])?.wait()?;
    expect_bytes("replaced contents", &back.buf, &pattern(2, 5000))?;
    Ok(())
}

/// Files have no names while open and the folder disappears when the
/// handles drop; a kept folder and its named files stay.
pub fn files_removed_unless_kept<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    let engine = ctx.engine()?;
    for keep in [false, true] {
        let s = scratch(DirOptions::default().keep(keep))?;
        let file = s.dir.create_file()?;
        engine.write(&file, 0, pattern(1, 4096))?.wait()?;
        let (dir_path, file_path) = (s.dir.path().to_path_buf(), file.path().to_path_buf());
        check!(
            file_path.exists() == keep,
            "an open file has a name = {} with keep = {keep}",
            file_path.exists()
        );
        drop(file);
        check!(
            file_path.exists() == keep,
            "file exists = {} after drop with keep = {keep}",
            file_path.exists()
        );
        let swap_api_dir = s.dir;
        drop(swap_api_dir);
        check!(
            dir_path.exists() == keep,
            "folder exists = {} after drop with keep = {keep}",
            dir_path.exists()
        );
    }
    Ok(())
}

/// Files the caller names, by path or by a lent descriptor, under both
/// direct-I/O policies: aligned and unaligned writes and reads move byte for
/// byte; the file keeps its name and bytes after the handle drops and is not
/// truncated on reopening (only when asked); a read-only file refuses writes
/// with a typed error; a missing file or a folder is `Error::File`; the
/// caller's descriptor stays open and usable.
pub fn named_files<E: IoEngine>(ctx: &Ctx<E>) -> Outcome {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileExt;
    use tensorswap_core::{DirectIo, NamedOptions, SwapFile};

    let engine = ctx.engine()?;
    let parent = super::scratch::scratch_parent()?;
    let io = |e: std::io::Error| CaseError(e.to_string());
    for policy in [DirectIo::Auto, DirectIo::Off] {
        let path = parent.path().join(format!("model-{policy:?}.bin"));
        let write = NamedOptions::read_write().create(true).direct_io(policy);
        let file = SwapFile::open_named(&path, write)?;
        let (a, b) = (pattern(1, 1 << 20), pattern(2, 10_001));
        engine.write(&file, 0, a.clone())?.wait()?;
        engine.write(&file, 4097, b.clone())?.wait()?;
        let mut want = a;
        want[4097..4097 + b.len()].copy_from_slice(&b);
        let back = engine.read(&file, 0, vec![0u8; want.len()])?.wait()?;
        expect_bytes("a named file read back", &back.buf, &want)?;
        drop(file);
        let on_disk = std::fs::read(&path).map_err(io)?;
        expect_bytes("the named file on disk after the drop", &on_disk, &want)?;

        // Reopened for writing: not truncated.
        let again = SwapFile::open_named(&path, NamedOptions::read_write().direct_io(policy))?;
        check!(
            again.len()? == want.len() as u64,
            "reopening truncated the file"
        );
        drop(again);

        // Read only: reads work, writes are refused with a typed error.
        let read = SwapFile::open_named(&path, NamedOptions::read_only().direct_io(policy))?;
        let part = engine.read(&read, 300, vec![0u8; 70_000])?.wait()?;
        expect_bytes("a read-only sub-range", &part.buf, &want[300..70_300])?;
        let refused = match engine.write(&read, 0, vec![1u8; 4096]) {
            Ok(ticket) => ticket.wait().err().map(|f| f.error),
            Err(rejected) => Some(rejected.error),
        };
        check!(
            matches!(refused, Some(Error::Io { .. })),
            "writing a read-only file: expected an Io error, got {refused:?}"
        );
        drop(read);

        // A lent descriptor: read through it; the caller's stays open.
        let own = std::fs::File::open(&path).map_err(io)?;
        let lent = SwapFile::from_fd(own.as_fd(), NamedOptions::read_only().direct_io(policy))?;
        let part = engine.read(&lent, 4096, vec![0u8; 8192])?.wait()?;
        expect_bytes(
            "a read through a lent descriptor",
            &part.buf,
            &want[4096..12_288],
        )?;
        drop(lent);
        let mut first = [0u8; 16];
        own.read_exact_at(&mut first, 0).map_err(io)?;
        check!(
            first[..] == want[..16],
            "the caller's descriptor no longer reads its file"
        );

        // An O_APPEND descriptor would turn every write into an append.
        let append = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io)?;
        check!(
            matches!(
                SwapFile::from_fd(append.as_fd(), NamedOptions::read_write()),
                Err(Error::Config { .. })
            ),
            "an O_APPEND descriptor was accepted for writing"
        );

        // A read-only descriptor is refused for writing.
        check!(
            matches!(
                SwapFile::from_fd(own.as_fd(), NamedOptions::read_write()),
                Err(Error::Config { .. })
            ),
            "a read-only descriptor was accepted for writing"
        );

        // A write-only O_DIRECT descriptor (DeepSpeed's own) takes an
        // unaligned write: that part goes through the page cache. Without
        // checksums: they read the blocks a request covers in part, and
        // such a descriptor cannot read (refused, with the reason).
        let direct = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(&path)
        };
        // (Where the file system has no O_DIRECT, there is nothing to lend.)
        if let Ok(direct) = direct {
            check!(
                matches!(
                    SwapFile::from_fd(direct.as_fd(), NamedOptions::read_write()),
                    Err(Error::Config { .. })
                ),
                "a write-only descriptor was accepted with checksums on"
            );
            let options = NamedOptions::read_write()
                .direct_io(policy)
                .checksums(false);
            let lent = SwapFile::from_fd(direct.as_fd(), options)?;
            let odd = pattern(7, 1001);
            engine.write(&lent, 333, odd.clone())?.wait()?;
            drop(lent);
            let mut back = vec![0u8; 1001];
            own.read_exact_at(&mut back, 333).map_err(io)?;
            expect_bytes(
                "an unaligned write through an O_DIRECT descriptor",
                &back,
                &odd,
            )?;
            std::fs::write(&path, &want).map_err(io)?;
        }

        // Truncation only when asked.
        let cut = SwapFile::open_named(&path, NamedOptions::read_write().truncate(true))?;
        check!(cut.is_empty()?, "truncate(true) left {} bytes", cut.len()?);
        ctx.checked(1);
    }
    for (what, path) in [
        ("a missing file", parent.path().join("missing.bin")),
        ("a folder", parent.path().to_path_buf()),
    ] {
        match SwapFile::open_named(&path, NamedOptions::read_only()) {
            Err(Error::File { .. }) => {}
            other => {
                return Err(CaseError(format!(
                    "opening {what}: expected Error::File, got {other:?}"
                )))
            }
        }
    }
    Ok(())
}
