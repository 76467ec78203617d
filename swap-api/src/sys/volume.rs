//! The file system a folder lives on and its free space (`statfs`), for
//! reports such as `tensorswap info`.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What `statfs` says of the file system holding a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The file system's name (`ext4`, `xfs`, `tmpfs`, ...), or its magic
    /// number in hex when it is not one this crate knows.
    pub file_system: String,
    /// Bytes an unprivileged process may still write.
    pub available: u64,
    /// Size of the file system in bytes.
    pub total: u64,
}

/// File-system magic numbers (`statfs.f_type`, see statfs(2)) and names.
const KNOWN: &[(i64, &str)] = &[
    (0xEF53, "ext4"),
    (0x5846_5342, "xfs"),
    (0x9123_683E, "btrfs"),
    (0xF2F5_2010, "f2fs"),
    (0x2FC1_2FC1, "zfs"),
    (0x0102_1994, "tmpfs"),
    (0x8584_58F6, "ramfs"),
    (0x794C_7630, "overlayfs"),
    (0x6969, "nfs"),
    (0xFF53_4D42, "cifs"),
    (0x6573_5546, "fuse"),
    (0x0000_4D44, "vfat"),
];

impl Volume {
    /// The file system holding `path`.
    ///
    /// ```
    /// let volume = tensorswap_core::sys::volume::Volume::of(&std::env::temp_dir())?;
    /// assert!(volume.total >= volume.available && !volume.file_system.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn of(path: &Path) -> io::Result<Self> {
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        // SAFETY: an all-zero statfs is a valid value (plain integers).
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: c_path is NUL-terminated and st is a valid out-pointer for one statfs.
        if unsafe { libc::statfs(c_path.as_ptr(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
        let magic = st.f_type as i64;
        let file_system = KNOWN
            .iter()
            .find(|(m, _)| *m == magic)
            .map_or_else(|| format!("{magic:#x}"), |(_, name)| name.to_string());
        #[allow(clippy::unnecessary_cast)] // the field types differ between targets
        let block = st.f_bsize as u64;
        #[allow(clippy::unnecessary_cast)]
        let (available, total) = (st.f_bavail as u64 * block, st.f_blocks as u64 * block);
        Ok(Self {
            file_system,
            available,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_folder_is_an_os_error() {
        let err = Volume::of(Path::new("/nonexistent/tensorswap/volume")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn dev_shm_is_tmpfs_where_it_exists() {
        if let Ok(volume) = Volume::of(Path::new("/dev/shm")) {
            assert_eq!(volume.file_system, "tmpfs");
        }
    }
}
