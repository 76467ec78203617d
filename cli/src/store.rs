//! `tensorswap store`: look into a persistent store's folder (`ls`,
//! `stats`) and check it whole (`verify`).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use tensorswap::store::{printable_key, PersistentStore, StoreOptions};

use super::size::show;

/// Options of `tensorswap store`.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Keys in key order, with their sizes, metadata and pinning.
    Ls {
        /// The store's folder.
        folder: PathBuf,
        /// Only keys that start with this text.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Keys, bytes held, capacity and free space.
    Stats {
        /// The store's folder.
        folder: PathBuf,
    },
    /// Reads every value back against its CRCs and checks the index; lists
    /// what is bad and exits with status 1 if anything is.
    Verify {
        /// The store's folder.
        folder: PathBuf,
    },
}

/// Opens an existing store at its own capacity (never creating one).
fn open(folder: &PathBuf) -> anyhow::Result<PersistentStore> {
    Ok(PersistentStore::open(folder, StoreOptions::existing())?)
}

pub(crate) fn run(args: &StoreArgs, out: &mut impl Write) -> anyhow::Result<()> {
    match &args.command {
        StoreCommand::Ls { folder, prefix } => {
            let store = open(folder)?;
            for entry in store.list(prefix.as_bytes())? {
                let meta = if entry.meta.is_empty() {
                    String::new()
                } else {
                    printable_key(&entry.meta)
                };
                let pinned = if entry.pinned { "pinned" } else { "" };
                writeln!(
                    out,
                    "{}\t{}\t{meta}\t{pinned}",
                    printable_key(&entry.key),
                    entry.len
                )?;
            }
        }
        StoreCommand::Stats { folder } => {
            let stats = open(folder)?.stats();
            writeln!(out, "keys: {} ({} pinned)", stats.keys, stats.pinned_keys)?;
            writeln!(out, "value bytes: {}", show(stats.value_bytes as usize))?;
            writeln!(
                out,
                "held (whole 4 KiB blocks): {}",
                show(stats.held_bytes as usize)
            )?;
            writeln!(out, "capacity: {}", show(stats.capacity as usize))?;
            writeln!(out, "free: {}", show(stats.free_bytes as usize))?;
        }
        StoreCommand::Verify { folder } => {
            let report = open(folder)?.verify()?;
            for problem in &report.problems {
                writeln!(out, "BAD {problem}")?;
            }
            writeln!(
                out,
                "checked {} keys, {} of values: {}",
                report.keys,
                show(report.bytes as usize),
                if report.is_clean() {
                    "clean".to_string()
                } else {
                    format!("{} problems", report.problems.len())
                }
            )?;
            if !report.is_clean() {
                anyhow::bail!("{}: {} problems", folder.display(), report.problems.len());
            }
        }
    }
    Ok(())
}
