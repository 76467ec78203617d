//! Layer-by-layer streaming inference (ZeRO-Inference style): the weights of
//! an MLP live on NVMe; each layer is prefetched while the previous one
//! computes, then released (its stored copy is still current, so nothing is
//! written). The output is checked against the same MLP computed with every
//! weight in memory.
//!
//! Run: `cargo run --release --example streaming_mlp [-- --folder /mnt/nvme]`

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use tensorswap::cpu::CpuDevice;
use tensorswap::swapper::{DType, SwapStore, Swapper, TensorMeta};
use tensorswap::DeviceExt;

const LAYERS: usize = 12;
const WIDTH: usize = 1024;
const BATCH: usize = 16;

/// Deterministic weights of layer `l`, scaled to keep activations bounded.
fn weights(l: usize) -> Vec<f32> {
    let mut x = (l as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..WIDTH * WIDTH)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 / (WIDTH as f32).sqrt()
        })
        .collect()
}

/// `out = relu(input x W^T)` for a batch of rows.
fn layer(input: &[f32], w: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; BATCH * WIDTH];
    for (row, o) in input.chunks(WIDTH).zip(out.chunks_mut(WIDTH)) {
        for (j, oj) in o.iter_mut().enumerate() {
            let wj = &w[j * WIDTH..(j + 1) * WIDTH];
            let dot: f32 = row.iter().zip(wj).map(|(a, b)| a * b).sum();
            *oj = dot.max(0.0);
        }
    }
    out
}

fn main() -> anyhow::Result<()> {
    let folder = match std::env::args().skip_while(|a| a != "--folder").nth(1) {
        Some(path) => path.into(),
        None => std::env::temp_dir(),
    };
    let device = CpuDevice::new()?;
    let store = SwapStore::builder()
        .folder(&folder)
        .slab_size(4 << 20)
        .slabs(4)
        .build_for(&device)
        .with_context(|| format!("creating a swap folder in {}", folder.display()))?;
    let swapper = Swapper::new(device, store)?;

    // Put every layer's weights in device memory, then out to NVMe.
    let ids: Vec<u64> = (0..LAYERS as u64).collect();
    for &id in &ids {
        let w = weights(id as usize);
        let bytes: &[u8] = bytemuck::cast_slice(&w);
        let dev = swapper.device();
        let mut host = dev.alloc_host(bytes.len())?;
        host.copy_from_slice(bytes);
        let done = dev.upload_blocking(host, dev.alloc(bytes.len())?, 0)?;
        swapper.register(id, TensorMeta::new(DType::F32, [WIDTH, WIDTH]), done.device)?;
    }
    swapper.swap_out(&ids)?.wait()?;
    println!(
        "{LAYERS} layers of {WIDTH}x{WIDTH} f32 ({} MiB) stored in {}",
        (LAYERS * WIDTH * WIDTH * 4) >> 20,
        swapper.store().path().display()
    );

    let input: Vec<f32> = (0..BATCH * WIDTH).map(|i| (i % 17) as f32 / 17.0).collect();

    // Streaming: prefetch layer l+1 while layer l computes.
    let start = Instant::now();
    let (mut waited, mut x) = (Duration::ZERO, input.clone());
    swapper.prefetch(&[0])?;
    for l in 0..LAYERS as u64 {
        if l + 1 < LAYERS as u64 {
            swapper.prefetch(&[l + 1])?;
        }
        let asked = Instant::now();
        let w = swapper.get(l)?; // waits only if the prefetch has not finished
        waited += asked.elapsed();
        let floats: &[f32] = bytemuck::try_cast_slice(&w.memory().as_slice()[..WIDTH * WIDTH * 4])
            .map_err(|e| anyhow::anyhow!("layer {l} weights: {e}"))?;
        x = layer(&x, floats);
        drop(w);
        swapper.release(&[l])?;
    }
    let streamed = start.elapsed();

    // Reference: every weight in memory.
    let all: Vec<Vec<f32>> = (0..LAYERS).map(weights).collect();
    let start = Instant::now();
    let mut y = input;
    for w in &all {
        y = layer(&y, w);
    }
    let in_memory = start.elapsed();

    ensure!(x == y, "streamed output differs from the in-memory output");
    println!(
        "streamed: {:.0} ms (waited for I/O {:.1} ms); all weights in memory: {:.0} ms",
        streamed.as_secs_f64() * 1e3,
        waited.as_secs_f64() * 1e3,
        in_memory.as_secs_f64() * 1e3
    );
    println!("output of {BATCH}x{WIDTH} matches the all-in-memory result exactly");
    Ok(())
}
