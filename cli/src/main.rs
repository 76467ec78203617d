//! The `tensorswap` command: `info`, `bench` and `tune`.

mod bench;
mod budget;
mod cpu;
mod device_bench;
mod info;
mod interrupt;
mod io_bench;
mod size;
mod soak;
mod stdout;
mod store;
mod store_bench;
mod swap_bench;
mod tune;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Move tensors between GPU memory, pinned host memory and NVMe files.
#[derive(Debug, Parser)]
#[command(name = "tensorswap", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Backends compiled in, devices found and their capabilities, page-locking
    /// limits, io_uring and direct-I/O support of a folder.
    Info(info::InfoArgs),
    /// The main job: tensors swapped out of device memory to a file and
    /// back, verified, next to the engine alone making the same requests.
    /// `--only device`: host <-> device transfers next to memcpy; `--only
    /// files`: file I/O of an engine configuration (like DeepSpeed's ds_io).
    Bench(bench::BenchArgs),
    /// Sweep block size x queue depth x parallelism and write the best
    /// DeepSpeed "aio" config (like ds_nvme_tune).
    Tune(tune::TuneArgs),
    /// Threads doing random operations on one swapper and one I/O engine
    /// for a set time, every byte checked; the pool, files and folders
    /// checked whole at the end.
    Soak(soak::SoakArgs),
    /// A persistent store's keys (`ls`), sizes (`stats`), and a check of
    /// every value and the index (`verify`).
    Store(store::StoreArgs),
}

/// Warnings, except wgpu's GL probe, which logs an error on every machine
/// without a GL driver (the Vulkan adapter is unaffected); `RUST_LOG`
/// overrides.
const DEFAULT_LOG: &str = "warn,wgpu_hal::gles=off";

/// The variable that runs the command on tensorswap's emulated CUDA driver
/// (`backend-cuda/emulator`): the path of its `libcuda_emulator.so`.
#[cfg(feature = "cuda")]
const CUDA_EMULATOR_VAR: &str = "TENSORSWAP_CUDA_EMULATOR";

/// With `TENSORSWAP_CUDA_EMULATOR` set, runs the command again on the
/// emulated driver and gives its exit (once: not in that second run).
#[cfg(feature = "cuda")]
fn on_cuda_emulator() -> Option<ExitCode> {
    use tensorswap::cuda::emulated;
    let lib = std::env::var_os(CUDA_EMULATOR_VAR)?;
    if emulated::relaunched() {
        return None;
    }
    Some(
        emulated::relaunch_on(std::path::Path::new(&lib)).unwrap_or_else(|reason| {
            eprintln!("tensorswap: {CUDA_EMULATOR_VAR}: {reason}");
            ExitCode::FAILURE
        }),
    )
}

fn main() -> ExitCode {
    // Under `ulimit -v`, threads must not reserve the limit away.
    tensorswap_core::sys::memory::fit_allocator_to_address_limit();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .init();
    #[cfg(feature = "cuda")]
    if let Some(code) = on_cuda_emulator() {
        return code;
    }
    // The matches also tell the bench which options were typed.
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    if let Err(err) = interrupt::install() {
        tracing::warn!(%err, "no handlers for SIGINT/SIGTERM/SIGHUP: a signal ends the run without removing its swap folder (the next run removes it)");
    }
    let mut out = stdout::Stdout(std::io::stdout().lock());
    let outcome = match args.command {
        Command::Info(info) => info::run(&info, &mut out),
        Command::Bench(bench) => {
            let given = matches.subcommand_matches("bench").unwrap_or(&matches);
            bench::run(&bench, given, &mut out)
        }
        Command::Tune(tune) => tune::run(&tune, &mut out),
        Command::Soak(soak) => soak::run(&soak, &mut out),
        Command::Store(store) => store::run(&store, &mut out),
    };
    match outcome.and_then(|()| Ok(out.flush()?)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`tensorswap info | head`): nothing left to say.
        Err(error) if stdout::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            if let Some(interrupted) = error.downcast_ref::<interrupt::Interrupted>() {
                eprintln!("tensorswap: {interrupted}");
                return ExitCode::from(interrupted.exit_code());
            }
            eprintln!("tensorswap: {error:#}");
            ExitCode::FAILURE
        }
    }
}
