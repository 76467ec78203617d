//! A throw-away swap folder for one case.

use std::path::PathBuf;

use tensorswap_core::{DirOptions, SwapDir};

use crate::CaseError;

/// Environment variable naming the folder engine cases create their swap
/// folders in (default: the system temporary folder). Point it at an NVMe
/// mount or a tmpfs to test those file systems.
pub const SCRATCH_VAR: &str = "TENSORSWAP_TEST_DIR";

/// A swap folder inside a fresh temporary folder, both removed on drop.
pub struct Scratch {
    /// The swap folder.
    pub dir: SwapDir,
    /// The temporary parent (dropped after `dir`).
    pub parent: tempfile::TempDir,
}

/// Creates a scratch swap folder with `options`.
pub fn scratch(options: DirOptions) -> Result<Scratch, CaseError> {
    let parent = scratch_parent()?;
    let dir = SwapDir::create_with(parent.path(), options)?;
    Ok(Scratch { dir, parent })
}

/// A fresh temporary folder under [`SCRATCH_VAR`] (or the system temporary
/// folder), removed on drop.
pub fn scratch_parent() -> Result<tempfile::TempDir, CaseError> {
    let base = std::env::var_os(SCRATCH_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new()
        .prefix("tensorswap-conformance-")
        .tempdir_in(&base)
        .map_err(|e| CaseError(format!("cannot create a folder in {}: {e}", base.display())))
}

/// The two policies every data case runs under: direct I/O where the file
/// system has it, and buffered.
pub(crate) fn both_policies() -> [DirOptions; 2] {
    [
        DirOptions::default(),
        DirOptions::default().direct_io(tensorswap_core::DirectIo::Off),
    ]
}
