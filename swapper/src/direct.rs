//! The direct pipeline: whole tensors move between device memory and the
//! store's file with no slab in between (GPUDirect Storage), up to a fixed
//! number in flight.

use std::collections::VecDeque;

use crate::error::{Result, SwapError};
use tensorswap_core::{Device, DeviceBuffer, DeviceExt, IoOp, SwapFile, Transfer};

/// One tensor to move: its device memory and where its bytes lie in the file.
pub(crate) struct DirectMove<D: Device> {
    /// Index of the tensor in the caller's list.
    pub(crate) item: usize,
    /// Read: the memory to fill. Write: the memory to write out.
    pub(crate) buf: DeviceBuffer<D>,
    /// File offset of the tensor's extent.
    pub(crate) file_offset: u64,
    /// Bytes of the tensor (its padding in the file is not touched).
    pub(crate) len: usize,
}

/// Runs `moves` in order with up to `depth` in flight; `done` gets each
/// tensor's memory back with its outcome, in order. Moves not started
/// because `stopped` turned true report [`SwapError::Closed`].
pub(crate) fn run<D: Device>(
    device: &D,
    file: &SwapFile,
    op: IoOp,
    moves: Vec<DirectMove<D>>,
    depth: usize,
    stopped: impl Fn() -> bool,
    mut done: impl FnMut(usize, DeviceBuffer<D>, Result<()>),
) {
    let mut inflight: VecDeque<InFlight<D>> = VecDeque::new();
    for m in moves {
        if inflight.len() >= depth.max(1) {
            if let Some(front) = inflight.pop_front() {
                finish(front, &mut done);
            }
        }
        if stopped() {
            let what = match op {
                IoOp::Read => "swap_in",
                IoOp::Write => "swap_out",
            };
            done(m.item, m.buf, Err(SwapError::Closed { what }));
            continue;
        }
        let started = match op {
            IoOp::Read => device.read_direct(file, m.file_offset, m.buf, 0, m.len),
            IoOp::Write => device.write_direct(m.buf, 0, m.len, file, m.file_offset),
        };
        match started {
            Ok(ticket) => inflight.push_back((m.item, ticket)),
            Err(failed) => done(m.item, failed.value.device, Err(failed.error.into())),
        }
    }
    for front in inflight {
        finish(front, &mut done);
    }
}

type InFlight<D> = (usize, Transfer<D, SwapFile>);

/// Waits one move and hands its memory and outcome to `done`.
fn finish<D: Device>(
    (item, ticket): InFlight<D>,
    done: &mut impl FnMut(usize, DeviceBuffer<D>, Result<()>),
) {
    match ticket.wait() {
        Ok(ok) => done(item, ok.device, Ok(())),
        Err(failed) => done(item, failed.value.device, Err(failed.error.into())),
    }
}
