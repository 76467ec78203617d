//! The `tensorswap` command: `info` and `bench`.

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Move tensors between GPU memory, pinned host memory and NVMe files.
#[derive(Debug, Parser)]
#[command(name = "tensorswap", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Backends compiled in, devices found and their capabilities, page-locking limits.
    Info,
    /// Host <-> device transfer throughput, side by side with a plain memcpy.
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    let mut out = std::io::stdout().lock();
    let outcome = match args.command {
        Command::Info => cli::info::run(&mut out),
        Command::Bench(bench) => cli::bench::run(&bench, &mut out),
    };
    match outcome.and_then(|()| Ok(out.flush()?)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`tensorswap info | head`): nothing left to say.
        Err(error) if cli::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tensorswap: {error:#}");
            ExitCode::FAILURE
        }
    }
}
