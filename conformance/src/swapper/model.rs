//! Random operation sequences checked against a model of each tensor's
//! state and bytes (a proptest state machine).

use proptest::prelude::*;
use tensorswap_core::{Device, DeviceExt, DirOptions};
use tensorswap_swapper::{SwapError, TensorState};

use super::{rig, Rig, SLAB};
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

const TENSORS: u64 = 4;

#[derive(Debug, Clone, Copy)]
enum Op {
    SwapOut(u64),
    SwapIn(u64),
    Prefetch(u64),
    Get(u64),
    Release(u64),
    SwapInto(u64),
    /// Remove the tensor and register new bytes under its id.
    Replace(u64, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0..TENSORS;
    prop_oneof![
        id.clone().prop_map(Op::SwapOut),
        id.clone().prop_map(Op::SwapIn),
        id.clone().prop_map(Op::Prefetch),
        id.clone().prop_map(Op::Get),
        id.clone().prop_map(Op::Release),
        id.clone().prop_map(Op::SwapInto),
        (id, 0..3 * SLAB).prop_map(|(i, n)| Op::Replace(i, n)),
    ]
}

/// What the model expects of one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Resident {
        clean: bool,
    },
    Stored,
    /// Prefetched: swapping in, or already resident (clean).
    Prefetching,
}

struct Model {
    expect: Vec<Expect>,
    bytes: Vec<Vec<u8>>,
    seed: u64,
}

/// `Ok` or an `InvalidState` error, as the model allows for a tensor whose
/// prefetch may or may not have finished.
fn invalid_state<T>(result: &Result<T, SwapError>) -> bool {
    matches!(result, Err(SwapError::InvalidState { .. }))
}

impl Model {
    fn step<D: Device>(&mut self, rig: &Rig<D>, op: Op) -> Outcome {
        let s = &rig.swapper;
        match op {
            Op::SwapOut(i) => {
                let r = s.swap_out(&[i]).and_then(|t| t.wait());
                match self.expect[i as usize] {
                    Expect::Resident { .. } => {
                        r?;
                        self.expect[i as usize] = Expect::Stored;
                    }
                    Expect::Prefetching if r.is_ok() => self.expect[i as usize] = Expect::Stored,
                    Expect::Prefetching => {
                        check!(invalid_state(&r), "swap_out while prefetching: {r:?}")
                    }
                    Expect::Stored => {
                        check!(invalid_state(&r), "swap_out of a stored tensor: {r:?}")
                    }
                }
            }
            Op::SwapIn(i) => {
                let r = s.swap_in(&[i]).and_then(|t| t.wait());
                match self.expect[i as usize] {
                    Expect::Stored => {
                        r?;
                        self.expect[i as usize] = Expect::Resident { clean: true };
                    }
                    _ => check!(invalid_state(&r), "swap_in of a non-stored tensor: {r:?}"),
                }
            }
            Op::Prefetch(i) => {
                s.prefetch(&[i])?;
                if self.expect[i as usize] == Expect::Stored {
                    self.expect[i as usize] = Expect::Prefetching;
                }
            }
            Op::Get(i) => {
                let r = s.get(i);
                match self.expect[i as usize] {
                    Expect::Stored => check!(invalid_state(&r), "get of a stored tensor: {r:?}"),
                    expect => {
                        let handle = r?;
                        let want = &self.bytes[i as usize];
                        let got = s.device().download_shared(
                            handle.buffer(),
                            0,
                            vec![0u8; want.len()],
                        )?;
                        expect_bytes(&format!("get({i})"), &got, want)?;
                        if expect == Expect::Prefetching {
                            self.expect[i as usize] = Expect::Resident { clean: true };
                        }
                    }
                }
            }
            Op::Release(i) => {
                let r = s.release(&[i]);
                match self.expect[i as usize] {
                    Expect::Resident { clean: true } => {
                        r?;
                        self.expect[i as usize] = Expect::Stored;
                    }
                    Expect::Prefetching if r.is_ok() => self.expect[i as usize] = Expect::Stored,
                    _ => check!(
                        invalid_state(&r),
                        "release in {:?}: {r:?}",
                        self.expect[i as usize]
                    ),
                }
            }
            Op::SwapInto(i) => {
                let want = &self.bytes[i as usize];
                match (
                    s.swap_into(i, vec![0u8; want.len()]),
                    self.expect[i as usize],
                ) {
                    (Ok(got), _) => expect_bytes(&format!("swap_into({i})"), &got, want)?,
                    (Err(r), Expect::Prefetching)
                        if matches!(r.error, SwapError::InvalidState { .. }) => {}
                    (Err(r), _) => return Err(CaseError(format!("swap_into({i}): {}", r.error))),
                }
            }
            Op::Replace(i, len) => {
                if self.expect[i as usize] == Expect::Prefetching {
                    s.get(i)?; // settle the prefetch first
                }
                s.remove(i)?;
                self.seed += 1;
                self.bytes[i as usize] = pattern(self.seed, len);
                rig.put(i, &self.bytes[i as usize])?;
                self.expect[i as usize] = Expect::Resident { clean: false };
            }
        }
        self.check_states(rig)
    }

    fn check_states<D: Device>(&self, rig: &Rig<D>) -> Outcome {
        for (i, expect) in self.expect.iter().enumerate() {
            let status = rig.swapper.status(i as u64)?;
            let ok = match expect {
                Expect::Resident { clean } => {
                    status.state == TensorState::Resident && status.clean == *clean
                }
                Expect::Stored => status.state == TensorState::Stored,
                Expect::Prefetching => matches!(
                    status.state,
                    TensorState::SwappingIn | TensorState::Resident
                ),
            };
            check!(
                ok,
                "tensor {i}: model expects {expect:?}, swapper reports {status:?}"
            );
        }
        Ok(())
    }
}

/// Random sequences of swap_out / swap_in / prefetch / get / release /
/// swap_into / replace on random-sized tensors agree with the model: legal
/// operations succeed with the right bytes, illegal ones are
/// `InvalidState`; afterwards the pool is whole and the folder gone.
pub fn random_operations<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let sizes = proptest::collection::vec(0..3 * SLAB, TENSORS as usize);
    let ops = proptest::collection::vec(op(), 1..40);
    ctx.proptest((sizes, ops), |(sizes, ops)| {
        let rig = rig(ctx, 2, DirOptions::default())?;
        let mut model = Model {
            expect: vec![Expect::Resident { clean: false }; TENSORS as usize],
            bytes: sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| pattern(1000 + i as u64, n))
                .collect(),
            seed: 2000,
        };
        for (i, bytes) in model.bytes.iter().enumerate() {
            rig.put(i as u64, bytes)?;
        }
        for op in ops {
            model
                .step(&rig, op)
                .map_err(|e| CaseError(format!("after {op:?}: {}", e.0)))?;
        }
        rig.finish()
    })
}
