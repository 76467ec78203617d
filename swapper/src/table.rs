//! The swapper's bookkeeping: one entry per tensor, its slot (where the
//! live copy is) and its home (where the stored copy lives).

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Result, SwapError, SwapOp};
use crate::extent::Extent;
use crate::meta::{TensorId, TensorMeta};
use crate::state::TensorState;
use crate::status::TensorStatus;
use tensorswap_core::{Device, DeviceBuffer, Error, HostBuffer};

/// Where the live copy of a tensor is.
pub(crate) enum Slot<D: Device> {
    /// In device memory. `clean`: the home holds the same bytes.
    Resident {
        buf: Arc<DeviceBuffer<D>>,
        clean: bool,
    },
    /// A job owns the device buffer and is writing it home.
    SwappingOut,
    /// Only the home holds it.
    Stored,
    /// A job is reading it from home into new device memory.
    SwappingIn,
}

impl<D: Device> Slot<D> {
    pub(crate) fn resident(buf: DeviceBuffer<D>, clean: bool) -> Self {
        Slot::Resident {
            buf: Arc::new(buf),
            clean,
        }
    }
}

/// Where the stored copy of a tensor lives, fixed at its first swap-out.
pub(crate) enum Home {
    /// Never swapped out.
    Unassigned,
    /// An extent of the store's file.
    File(Extent),
    /// Pinned host memory (the `max_in_cpu` tier); `None` while a job holds
    /// the buffer, or before its first swap-out allocated it.
    Host(Option<HostBuffer>),
}

pub(crate) struct Entry<D: Device> {
    pub(crate) meta: TensorMeta,
    pub(crate) logical: usize,
    pub(crate) padded: usize,
    pub(crate) slot: Slot<D>,
    pub(crate) home: Home,
    /// `swap_into` calls reading the home right now.
    pub(crate) readers: usize,
    pub(crate) last_error: Option<(SwapOp, Arc<SwapError>)>,
}

impl<D: Device> Entry<D> {
    pub(crate) fn state(&self) -> TensorState {
        match (&self.slot, &self.home) {
            (Slot::Resident { .. }, _) => TensorState::Resident,
            (Slot::SwappingOut, _) => TensorState::SwappingOut,
            (Slot::SwappingIn, _) => TensorState::SwappingIn,
            (Slot::Stored, Home::Host(_)) => TensorState::Host,
            (Slot::Stored, _) => TensorState::Stored,
        }
    }

    pub(crate) fn status(&self) -> TensorStatus {
        TensorStatus {
            state: self.state(),
            meta: self.meta.clone(),
            logical_bytes: self.logical,
            padded_bytes: self.padded,
            clean: matches!(self.slot, Slot::Resident { clean: true, .. }),
            last_error: self.last_error.as_ref().map(|(_, e)| Arc::clone(e)),
        }
    }

    /// The typed error for `op` in the current state.
    pub(crate) fn refuse(&self, id: TensorId, op: &'static str, hint: &'static str) -> SwapError {
        SwapError::InvalidState {
            id,
            op,
            state: self.state(),
            hint,
        }
    }

    /// The last failure as the error `get` reports, if there was one.
    pub(crate) fn failure(&self, id: TensorId) -> Option<SwapError> {
        self.last_error
            .as_ref()
            .map(|&(op, ref source)| SwapError::Tensor {
                id,
                op,
                cause: Arc::clone(source),
            })
    }
}

pub(crate) struct Table<D: Device> {
    pub(crate) tensors: HashMap<TensorId, Entry<D>>,
    /// Bytes of tensors whose home is host memory.
    pub(crate) host_used: usize,
    pub(crate) max_in_cpu: usize,
}

impl<D: Device> Table<D> {
    pub(crate) fn entry(&self, id: TensorId) -> Result<&Entry<D>> {
        self.tensors.get(&id).ok_or(SwapError::UnknownTensor { id })
    }

    pub(crate) fn entry_mut(&mut self, id: TensorId) -> Result<&mut Entry<D>> {
        self.tensors
            .get_mut(&id)
            .ok_or(SwapError::UnknownTensor { id })
    }

    /// Checks that `ids` are registered and listed once each, then that each
    /// passes `check`; nothing changes unless all pass.
    pub(crate) fn check_all(
        &self,
        op: &'static str,
        ids: &[TensorId],
        mut check: impl FnMut(TensorId, &Entry<D>) -> Result<()>,
    ) -> Result<()> {
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        for &id in ids {
            if !seen.insert(id) {
                return Err(Error::Config {
                    reason: format!("tensor {id} is listed twice in one {op}"),
                }
                .into());
            }
            check(id, self.entry(id)?)?;
        }
        Ok(())
    }
}
