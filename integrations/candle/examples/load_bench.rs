//! Model load time: a `candle_transformers` Llama loaded through
//! tensorswap's `VarBuilder` backend vs candle's own
//! `VarBuilder::from_mmaped_safetensors`, same file, alternating, with the
//! file's pages dropped from the page cache before every load
//! (`posix_fadvise(DONTNEED)`, checked with `mincore`), so that both read
//! from the drive. Prints one JSON line per load, then medians and the
//! ratio ours/candle.
//!
//! Run: `cargo run --release -p tensorswap-candle --example load_bench
//! [-- --folder /mnt/nvme --rounds 7 --layers 8 --hidden 1024]`

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Context};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::llama::{Config, Llama, LlamaConfig};

/// Load time of a Llama: tensorswap's VarBuilder backend vs candle's mmap.
#[derive(clap::Parser)]
struct Args {
    /// Folder for the model file (default: the system's temporary folder).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    folder: std::path::PathBuf,
    /// Loads of each kind, alternating.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Transformer layers.
    #[arg(long, default_value_t = 8)]
    layers: usize,
    /// Model width (a multiple of 64).
    #[arg(long, default_value_t = 1024)]
    hidden: usize,
}

fn config(layers: usize, hidden: usize) -> Config {
    LlamaConfig {
        hidden_size: hidden,
        intermediate_size: hidden * 11 / 4,
        vocab_size: 32_000,
        num_hidden_layers: layers,
        num_attention_heads: hidden / 64,
        num_key_value_heads: Some((hidden / 64 / 4).max(1)),
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        bos_token_id: None,
        eos_token_id: None,
        rope_scaling: None,
        max_position_embeddings: 2048,
        tie_word_embeddings: Some(false),
    }
    .into_config(false)
}

/// Drops the file's pages from the page cache and returns the fraction of
/// them still cached afterwards (0 when the drop worked).
fn drop_cache(path: &Path) -> anyhow::Result<f64> {
    let file = File::open(path)?;
    let len = file.metadata()?.len() as usize;
    file.sync_all()?;
    // SAFETY: plain syscalls on a descriptor we own; the mapping is private,
    // read only, never dereferenced, and unmapped before returning.
    unsafe {
        let fd = file.as_raw_fd();
        ensure!(
            libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED) == 0,
            "posix_fadvise failed"
        );
        let map = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0,
        );
        ensure!(map != libc::MAP_FAILED, "mmap failed");
        let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
        let mut resident = vec![0u8; len.div_ceil(page)];
        let ok = libc::mincore(map, len, resident.as_mut_ptr()) == 0;
        libc::munmap(map, len);
        ensure!(ok, "mincore failed");
        Ok(resident.iter().filter(|&&r| r & 1 == 1).count() as f64 / resident.len() as f64)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    ensure!(
        args.hidden >= 64 && args.hidden % 64 == 0,
        "--hidden {} is not a positive multiple of 64",
        args.hidden
    );
    let cfg = config(args.layers, args.hidden);
    let (dtype, device) = (DType::BF16, Device::Cpu);
    let dir = tempfile::Builder::new()
        .prefix("tensorswap-load-bench-")
        .tempdir_in(&args.folder)
        .with_context(|| format!("a folder in {}", args.folder.display()))?;
    let path = dir.path().join("model.safetensors");
    {
        let varmap = VarMap::new();
        Llama::load(VarBuilder::from_varmap(&varmap, dtype, &device), &cfg)?;
        varmap.save(&path)?;
    }
    let bytes = std::fs::metadata(&path)?.len();
    eprintln!(
        "Llama of {} layers x {} wide, {dtype:?}: {:.0} MiB in {}",
        args.layers,
        args.hidden,
        bytes as f64 / (1 << 20) as f64,
        path.display()
    );

    let (mut ours, mut candle) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        // Alternate which goes first.
        for first_ours in [round % 2 == 0, round % 2 != 0] {
            let cached = drop_cache(&path)?;
            let start = Instant::now();
            let vb = if first_ours {
                tensorswap_candle::var_builder(&[&path], dtype, &device)?
            } else {
                // SAFETY: nothing modifies the file while it is mapped.
                unsafe { VarBuilder::from_mmaped_safetensors(&[&path], dtype, &device)? }
            };
            let model = Llama::load(vb, &cfg)?;
            let seconds = start.elapsed().as_secs_f64();
            drop(model);
            let loader = if first_ours {
                "tensorswap"
            } else {
                "candle-mmap"
            };
            println!(
                "{{\"loader\":\"{loader}\",\"round\":{round},\"seconds\":{seconds:.4},\"gbps\":{:.3},\"cached_before\":{cached:.3}}}",
                bytes as f64 / seconds / 1e9
            );
            (if first_ours { &mut ours } else { &mut candle }).push(seconds);
        }
    }
    let ratios = ours.iter().zip(&candle).map(|(a, b)| a / b).collect();
    let (a, b) = (median(ours), median(candle));
    println!(
        "load, median of {} cold loads each: tensorswap {:.1} ms ({:.2} GB/s), candle mmap {:.1} ms ({:.2} GB/s); \
         time ours/candle: median of the rounds' ratios {:.3}",
        args.rounds,
        a * 1e3,
        bytes as f64 / a / 1e9,
        b * 1e3,
        bytes as f64 / b / 1e9,
        median(ratios)
    );
    Ok(())
}
