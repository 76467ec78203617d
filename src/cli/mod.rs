//! The subcommands and their shared helpers.

pub(crate) mod bench;
pub(crate) mod info;
pub(crate) mod size;
