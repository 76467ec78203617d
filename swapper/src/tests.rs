//! Unit tests of the device-free swappers: optimizer state and gradients.

use crate::*;
use tensorswap_core::{
    AioConfig, AnyEngine, DirOptions, EngineKind, Error, FaultStage, FaultyEngine, IoOp,
    PinnedPool, SwapDir,
};

fn new_store(slab: usize, slabs: usize) -> (SwapStore<FaultyEngine<AnyEngine>>, tempfile::TempDir) {
    let parent = tempfile::tempdir().unwrap();
    let dir = SwapDir::create_with(parent.path(), DirOptions::default()).unwrap();
    let pool = PinnedPool::builder()
        .slab_size(slab)
        .slabs(slabs)
        .alignment(dir.alignment())
        .build()
        .unwrap();
    let engine =
        FaultyEngine::new(AnyEngine::new(EngineKind::Auto, &AioConfig::default()).unwrap());
    (SwapStore::new(engine, dir, pool).unwrap(), parent)
}

fn config(read: bool, write: bool) -> OffloadOptimizerConfig {
    OffloadOptimizerConfig {
        pipeline_read: read,
        pipeline_write: write,
        ..OffloadOptimizerConfig::default()
    }
}

/// Every overlap mode computes the same state over several steps, and
/// every group keeps its own state.
#[test]
fn optimizer_steps_agree_in_every_mode() {
    let mut finals = Vec::new();
    for (read, write) in [(false, false), (true, false), (false, true), (true, true)] {
        let (store, _dir) = new_store(64 << 10, 3);
        let mut opt = OptimizerSwapper::new(store, &config(read, write)).unwrap();
        assert_eq!(opt.overlap(), (read, write));
        for g in 0..4 {
            opt.add_group(1000 + g * 300, 3, |s| {
                for (k, c) in s.components_mut().into_iter().enumerate() {
                    c.fill((g * 10 + k) as f32);
                }
            })
            .unwrap();
        }
        for step in 0..3 {
            opt.step(|g, s| {
                let mut c = s.components_mut();
                let (m, rest) = c.split_first_mut().unwrap();
                for (i, x) in m.iter_mut().enumerate() {
                    *x += rest[0][i] * 0.5 + (step + g) as f32;
                }
                rest[1][0] += 1.0;
                Ok(())
            })
            .unwrap();
        }
        let mut seen = Vec::new();
        opt.step(|g, s| {
            let c = s.components_mut();
            seen.push((g, c[0].len(), c[0][0], c[0][c[0].len() - 1], c[2][0]));
            Ok(())
        })
        .unwrap();
        finals.push(seen);
    }
    assert!(finals.windows(2).all(|w| w[0] == w[1]), "{finals:?}");
    // group 1: master 10 + 3 x (11 * 0.5) + (0 + 1) + (1 + 1) + (2 + 1)
    assert_eq!(
        finals[0][1],
        (1, 1300, 10.0 + 16.5 + 6.0, 10.0 + 16.5 + 6.0, 12.0 + 3.0)
    );
}

/// Too few buffers fall back to less overlap; a group larger than a buffer
/// is an error naming the sizes.
#[test]
fn optimizer_buffers_are_checked_up_front() {
    let (store, _dir) = new_store(8192, 2);
    let mut opt = OptimizerSwapper::new(store, &config(true, true)).unwrap();
    assert_eq!(opt.overlap(), (true, false));
    let err = opt.add_group(10_000, 3, |_| {}).unwrap_err();
    assert!(
        matches!(err, SwapError::Buffers { .. }) && err.to_string().contains("slab_size"),
        "{err}"
    );
    let (store, _dir) = new_store(8192, 1);
    assert_eq!(
        OptimizerSwapper::new(store, &config(true, true))
            .unwrap()
            .overlap(),
        (false, false)
    );
}

/// A failed write-back keeps the updated state in memory; the next step
/// writes it first, and nothing is lost.
#[test]
fn optimizer_write_failure_loses_nothing() {
    let (store, _dir) = new_store(64 << 10, 3);
    let engine_store = store.clone();
    let mut opt = OptimizerSwapper::new(store, &config(true, true)).unwrap();
    for _ in 0..3 {
        opt.add_group(500, 2, |_| {}).unwrap();
    }
    engine_store
        .engine()
        .fail_next(IoOp::Write, libc::ENOSPC, FaultStage::Complete);
    let err = opt
        .step(|_, s| {
            s.components_mut()[0][0] += 1.0;
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            SwapError::Group {
                op: GroupOp::WriteBack,
                ..
            }
        ) && err.to_string().contains("optimizer group")
            && err.to_string().contains("No space"),
        "{err}"
    );
    opt.step(|_, s| {
        s.components_mut()[0][0] += 1.0;
        Ok(())
    })
    .unwrap();
    let mut values = Vec::new();
    opt.step(|_, s| {
        values.push(s.components_mut()[0][0]);
        Ok(())
    })
    .unwrap();
    // Step 1 stopped at the failure (reported after group 1 was updated):
    // group 0's update was kept and written by step 2, group 2 missed step 1.
    assert_eq!(values, [2.0, 2.0, 1.0]);
}

/// Gradients appended across many slabs come back exact, accumulated
/// records sum, and `clear` starts over.
#[test]
fn gradients_written_behind_read_back_and_sum() {
    let (store, dir) = new_store(16 << 10, 2);
    let mut grads = GradientSwapper::new(store);
    let make = |id: u64, n: usize, scale: f32| -> Vec<f32> {
        (0..n).map(|i| (i as f32 + id as f32) * scale).collect()
    };
    for micro in 1..=3 {
        for id in 0..6u64 {
            grads
                .append(id, &make(id, 1000 + 3000 * id as usize, micro as f32))
                .unwrap();
        }
    }
    grads.append(9, &[7u16; 5]).unwrap();
    for id in 0..6u64 {
        let n = 1000 + 3000 * id as usize;
        let mut acc = vec![0f32; n];
        assert_eq!(grads.sum_into(id, &mut acc).unwrap(), 3);
        assert_eq!(acc, make(id, n, 6.0), "gradient {id}");
    }
    let mut small = [0u16; 5];
    grads.read_into(9, &mut small).unwrap();
    assert_eq!(small, [7; 5]);
    assert!(
        grads.read_into(0, &mut [0f32; 1000]).is_err(),
        "three records are not one"
    );
    assert!(
        grads.sum_into(5, &mut [0f32; 10]).is_err(),
        "a short accumulator"
    );
    grads.clear().unwrap();
    assert_eq!(grads.records(0), 0);
    grads.append(0, &[1.0f32; 10]).unwrap();
    let mut acc = [1.0f32; 10];
    assert_eq!(grads.sum_into(0, &mut acc).unwrap(), 1);
    assert_eq!(acc, [2.0; 10]);
    drop(grads);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A slab whose write fails is kept and written again by every flush until
/// it succeeds; no gradient is lost.
#[test]
fn gradient_write_failure_is_retried() {
    let (store, _dir) = new_store(16 << 10, 2);
    let engine_store = store.clone();
    let mut grads = GradientSwapper::new(store);
    for _ in 0..6 {
        engine_store
            .engine()
            .fail_next(IoOp::Write, libc::EIO, FaultStage::Complete);
    }
    // While the disk keeps failing, an append that needs a slab held by a
    // failed write reports the error and records nothing.
    let failed_appends = (0..10)
        .take_while(|_| grads.append(1, &[3.0f32; 10_000]).is_err())
        .count();
    assert!(
        failed_appends > 0 && failed_appends < 10,
        "{failed_appends} failed appends"
    );
    let failed_flushes = (0..10).take_while(|_| grads.flush().is_err()).count();
    assert!(failed_flushes < 10, "the writes never succeeded");
    assert_eq!(grads.records(1), 1);
    let mut acc = vec![0f32; 10_000];
    assert_eq!(grads.sum_into(1, &mut acc).unwrap(), 1);
    assert!(acc.iter().all(|&x| x == 3.0));
}

/// An `nvme` section without `nvme_path` is a Config error naming the key.
#[test]
fn optimizer_config_needs_a_path_for_nvme() {
    let config = OffloadOptimizerConfig::default();
    let err = OptimizerSwapper::with_config(&config, &AioConfig::default(), (10, 3)).err();
    assert!(
        matches!(&err, Some(SwapError::Core(Error::Config { reason })) if reason.contains("offload_optimizer.nvme_path")),
        "{err:?}"
    );
}

/// A list `nvme_path` stripes the optimizer's store over every folder in
/// it: a group larger than a stripe unit lands in both, and steps read it
/// back whole. An empty list is a Config error naming the key.
#[test]
fn optimizer_config_stripes_over_a_list_of_folders() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = OffloadOptimizerConfig {
        nvme_path: Some(vec![a.path().to_path_buf(), b.path().to_path_buf()].into()),
        ..OffloadOptimizerConfig::default()
    };
    let elements = 1 << 19; // 3 components of 2 MiB: over several stripes
    let mut opt =
        OptimizerSwapper::with_config(&config, &AioConfig::default(), (elements, 3)).unwrap();
    let g = opt
        .add_group(elements, 3, |s| s.components_mut()[0].fill(1.5))
        .unwrap();
    for dir in [&a, &b] {
        let folders: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(folders.len(), 1, "one swap folder in each nvme_path folder");
    }
    for _ in 0..2 {
        opt.step(|_, s| {
            let c = s.components_mut();
            assert!(c[0].iter().all(|&x| x == 1.5));
            Ok(())
        })
        .unwrap();
    }
    assert_eq!(g, 0);
    drop(opt);
    for dir in [&a, &b] {
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
    let empty = OffloadOptimizerConfig {
        nvme_path: Some(NvmePath::Several(Vec::new())),
        ..OffloadOptimizerConfig::default()
    };
    let err = OptimizerSwapper::with_config(&empty, &AioConfig::default(), (10, 3)).err();
    assert!(
        matches!(&err, Some(SwapError::Core(Error::Config { reason })) if reason.contains("offload_optimizer.nvme_path is an empty list")),
        "{err:?}"
    );
}
