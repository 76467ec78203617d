//! The subcommands and their shared helpers.

pub(crate) mod bench;
mod budget;
mod cpu;
mod device_bench;
pub(crate) mod info;
pub(crate) mod interrupt;
mod io_bench;
pub(crate) mod size;
pub(crate) mod soak;
mod swap_bench;
pub(crate) mod tune;

/// True when `error` comes from writing to a pipe whose reader has gone.
pub(crate) fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
