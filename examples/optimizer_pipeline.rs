//! Measures the optimizer swapper with and without pipelining on a workload
//! whose update costs about as much as its I/O: 8 sub-groups of fp32 master
//! weights + Adam's two moments, an Adam update per group. The two modes
//! alternate step by step in one run; medians and their ratio are printed.
//!
//! Run: `cargo run --release --example optimizer_pipeline [-- --folder DIR --elements N --steps S]`

use std::time::Instant;

use anyhow::ensure;
use tensorswap::swapper::{OffloadOptimizerConfig, OptimizerSwapper};
use tensorswap::AioConfig;

fn arg(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::args().skip_while(|a| a != name).nth(1) {
        Some(v) => Ok(v.parse()?),
        None => Ok(default),
    }
}

/// One Adam step over a group (master weights, first and second moments),
/// computed `PASSES` times so that the update costs about what the group's
/// read and write cost on this machine's disk.
fn adam(state: &mut [&mut [f32]], step: usize) {
    for _ in 0..PASSES {
        adam_once(state, step);
    }
}

const PASSES: usize = 3;

fn adam_once(state: &mut [&mut [f32]], step: usize) {
    let (lr, b1, b2, eps) = (1e-3f32, 0.9f32, 0.999f32, 1e-8f32);
    let (bc1, bc2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
    let [w, m, v] = state else { return };
    for i in 0..w.len() {
        let g = w[i] * 1e-2 + 1e-3; // a stand-in gradient
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        w[i] -= lr * (m[i] / bc1) / ((v[i] / bc2).sqrt() + eps);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let elements = arg("--elements", 2 << 20)?;
    let steps = arg("--steps", 7)?.max(1);
    let groups = 8;
    let folder = std::env::args()
        .skip_while(|a| a != "--folder")
        .nth(1)
        .map_or_else(std::env::temp_dir, Into::into);
    let swapper = |read, write| {
        let config = OffloadOptimizerConfig {
            nvme_path: Some(folder.clone().into()),
            buffer_count: 3,
            pipeline_read: read,
            pipeline_write: write,
            ..OffloadOptimizerConfig::default()
        };
        let mut opt = OptimizerSwapper::with_config(&config, &AioConfig::default(), (elements, 3))?;
        for g in 0..groups {
            opt.add_group(elements, 3, |s| s.components_mut()[0].fill(g as f32))?;
        }
        anyhow::Ok(opt)
    };
    let mut pipelined = swapper(true, true)?;
    let mut sequential = swapper(false, false)?;
    let group_mib = (elements * 12) >> 20;
    println!(
        "{groups} groups x 3 x {elements} f32 ({group_mib} MiB per group) in {}; {steps} steps per mode, alternating",
        folder.display()
    );
    // Update time alone, for scale.
    let mut scratch = vec![vec![0.5f32; elements]; 3];
    let t = Instant::now();
    adam(
        &mut scratch
            .iter_mut()
            .map(|c| c.as_mut_slice())
            .collect::<Vec<_>>(),
        1,
    );
    let update_ms = t.elapsed().as_secs_f64() * 1e3;

    let (mut piped, mut seq) = (Vec::new(), Vec::new());
    for step in 1..=steps + 1 {
        for (opt, times) in [(&mut pipelined, &mut piped), (&mut sequential, &mut seq)] {
            let t = Instant::now();
            opt.step(|_, state| {
                adam(&mut state.components_mut(), step);
                Ok(())
            })?;
            if step > 1 {
                times.push(t.elapsed().as_secs_f64()); // the first step warms up
            }
        }
    }
    // Both modes computed the same state.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    pipelined.step(|_, s| {
        a.push(s.components_mut()[0][0]);
        Ok(())
    })?;
    sequential.step(|_, s| {
        b.push(s.components_mut()[0][0]);
        Ok(())
    })?;
    ensure!(
        a == b,
        "pipelined and sequential steps disagree: {a:?} vs {b:?}"
    );
    let (p, s) = (median(piped), median(seq));
    println!("update alone: {:.1} ms per group", update_ms);
    println!(
        "step, sequential: {:.0} ms; pipelined (read-ahead + write-behind): {:.0} ms; speed-up {:.2}x",
        s * 1e3,
        p * 1e3,
        s / p
    );
    Ok(())
}
