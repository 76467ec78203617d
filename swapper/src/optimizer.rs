//! [`OptimizerSwapper`]: optimizer state of parameter sub-groups on NVMe,
//! handed to the caller group by group in pinned memory and written back,
//! with the reads and writes overlapping the caller's update.

use std::collections::VecDeque;

use crate::error::{GroupOp, Result, SwapError};
use crate::extent::Extent;
use crate::offload::OffloadOptimizerConfig;
use crate::store::SwapStore;
use tensorswap_core::storage::StripedTicket;
use tensorswap_core::{AioConfig, AnyEngine, Error, IoEngine, Parked, SlabPart};

/// Bytes between the starts of two components of a group's state.
const COMPONENT_ALIGN: usize = 64;

/// The state of one sub-group while the caller updates it: `components`
/// arrays of `elements` f32 each (e.g. fp32 master weights and Adam's two
/// moments), in pinned memory.
pub struct GroupState<'a> {
    part: &'a mut SlabPart,
    elements: usize,
    components: usize,
}

impl GroupState<'_> {
    /// Every component, mutably, in the order they were declared.
    pub fn components_mut(&mut self) -> Vec<&mut [f32]> {
        let (elements, stride) = (self.elements, stride(self.elements));
        // The part holds at least components x stride bytes (group_bytes)
        // and starts page-aligned, so each component is f32-aligned.
        self.part[..stride * self.components]
            .chunks_mut(stride)
            .map(|chunk| bytemuck::cast_slice_mut(&mut chunk[..elements * 4]))
            .collect()
    }
}

type Ticket<E> = StripedTicket<<E as IoEngine>::Pending, SlabPart>;

struct Group {
    extent: Extent,
    elements: usize,
    components: usize,
}

/// Optimizer state for sub-groups of parameters, on NVMe.
///
/// [`step`](Self::step) reads each group into a pinned buffer, hands it to
/// the caller's update, and writes it back, in group order:
/// - `pipeline_read`: group i+1 is read while the caller updates group i, and
///   group 0 of the next step is read at the end of this one;
/// - `pipeline_write`: group i-1 is written while the caller updates group i.
///
/// A step needs `1 + pipeline_read + pipeline_write` buffers (pool slabs,
/// each at least a group's size). With fewer, [`new`](Self::new) logs which
/// overlap it gives up (write-behind first) and runs with less; it never
/// fails mid-step for lack of buffers.
///
/// A write-back that fails keeps the group's updated state in its buffer:
/// the step returns the error, and the next `step` or
/// [`flush`](Self::flush) writes it again before anything else.
pub struct OptimizerSwapper<E: IoEngine = AnyEngine> {
    store: SwapStore<E>,
    groups: Vec<Group>,
    pipeline_read: bool,
    pipeline_write: bool,
    /// Held between steps: the next step's first read, and groups whose
    /// write-back failed ([`Parked`], so that a store's other users fail
    /// instead of waiting forever for them).
    prefetched: Option<Parked<(usize, Ticket<E>)>>,
    unwritten: Vec<Parked<(usize, SlabPart)>>,
}

impl OptimizerSwapper<AnyEngine> {
    /// A swapper from DeepSpeed's `offload_optimizer` and `aio` sections,
    /// with `buffer_count` pinned buffers big enough for a group of
    /// `largest` `(elements, components)`.
    pub fn with_config(
        config: &OffloadOptimizerConfig,
        aio: &AioConfig,
        largest: (usize, usize),
    ) -> Result<Self> {
        let folders =
            super::offload::nvme_folders("offload_optimizer", config.device, &config.nvme_path)?;
        let mut builder = SwapStore::builder()
            .aio(aio.clone())
            .slab_size(group_bytes(largest.0, largest.1)?.max(1))
            .slabs(config.buffer_count);
        if !folders.is_empty() {
            builder = builder.folders(folders);
        }
        if config.pin_memory {
            builder = builder.pinning(tensorswap_core::Pinning::Required);
        }
        Self::new(builder.build()?, config)
    }
}

/// Bytes of pinned memory one group of `elements` x `components` f32 takes.
pub fn group_bytes(elements: usize, components: usize) -> tensorswap_core::Result<usize> {
    elements
        .checked_mul(4)
        .and_then(|b| b.checked_next_multiple_of(COMPONENT_ALIGN))
        .and_then(|stride| stride.max(COMPONENT_ALIGN).checked_mul(components))
        .ok_or_else(|| Error::Layout {
            reason: format!("a group of {components} x {elements} f32 overflows usize"),
        })
}

/// Bytes between component starts (group_bytes has checked the overflow).
fn stride(elements: usize) -> usize {
    (elements * 4)
        .next_multiple_of(COMPONENT_ALIGN)
        .max(COMPONENT_ALIGN)
}

impl<E: IoEngine> OptimizerSwapper<E> {
    /// A swapper on `store` (its slabs are the buffers) with the overlap
    /// `config` asks for, or less when there are too few slabs.
    pub fn new(store: SwapStore<E>, config: &OffloadOptimizerConfig) -> Result<Self> {
        let slabs = store.pool().stats().slabs;
        let (mut read, mut write) = (config.pipeline_read, config.pipeline_write);
        let needed = config.buffers_needed();
        if slabs < needed {
            write = write && slabs >= 2 + usize::from(read);
            read = read && slabs >= 2;
            tracing::warn!(
                needed,
                buffer_count = slabs,
                pipeline_read = read,
                pipeline_write = write,
                "offload_optimizer: pipeline_read/pipeline_write need {needed} buffers, buffer_count is {slabs}: running with less overlap (raise buffer_count to {needed})"
            );
        }
        Ok(Self {
            store,
            groups: Vec::new(),
            pipeline_read: read,
            pipeline_write: write,
            prefetched: None,
            unwritten: Vec::new(),
        })
    }

    /// The overlap in effect: `(pipeline_read, pipeline_write)`.
    pub fn overlap(&self) -> (bool, bool) {
        (self.pipeline_read, self.pipeline_write)
    }

    /// Number of groups.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Adds a group of `components` arrays of `elements` f32, initialised by
    /// `init`, and writes it out. Returns its index.
    pub fn add_group(
        &mut self,
        elements: usize,
        components: usize,
        init: impl FnOnce(&mut GroupState<'_>),
    ) -> Result<usize> {
        let bytes = group_bytes(elements, components)?;
        let padded = self.store.padded(bytes)?;
        let slab = self.store.pool().slab_size();
        if padded > slab {
            return Err(SwapError::Buffers {
                reason: format!(
                    "a group of {components} x {elements} f32 needs a {padded}-byte buffer, the buffers are {slab} bytes; build the store with slab_size >= {padded} or split the group"
                ),
            });
        }
        let extent = self.store.alloc(padded)?;
        let index = self.groups.len();
        self.groups.push(Group {
            extent,
            elements,
            components,
        });
        let mut part = self.lease(index)?;
        part.fill(0);
        init(&mut self.state(index, &mut part));
        let written = self
            .store
            .write(extent.offset, part)
            .map_err(|f| f.error)?
            .wait();
        if let Err(failed) = written {
            self.groups.pop();
            self.store.free(extent);
            return Err(failed.error.into());
        }
        Ok(index)
    }

    /// One optimizer step: every group, in order, read, updated by
    /// `update(index, state)`, written back. An error from `update` stops the
    /// step; groups before it are updated, the rest keep their state.
    pub fn step(
        &mut self,
        mut update: impl FnMut(usize, &mut GroupState<'_>) -> Result<()>,
    ) -> Result<()> {
        self.flush()?;
        let mut writes: VecDeque<(usize, Ticket<E>)> = VecDeque::new();
        let outcome = self.run_step(&mut update, &mut writes);
        let drained = self.drain(&mut writes, 0);
        outcome.and(drained)
    }

    fn run_step(
        &mut self,
        update: &mut dyn FnMut(usize, &mut GroupState<'_>) -> Result<()>,
        writes: &mut VecDeque<(usize, Ticket<E>)>,
    ) -> Result<()> {
        let n = self.groups.len();
        let mut next = self.prefetched.take().map(Parked::into_inner);
        for g in 0..n {
            let current = match next.take() {
                Some((h, ticket)) if h == g => ticket,
                _ => self.read(g, writes)?,
            };
            if self.pipeline_read && g + 1 < n {
                next = Some((g + 1, self.read(g + 1, writes)?));
            }
            let mut part = current
                .wait()
                .map_err(|f| self.failed(g, GroupOp::Read, f.error))?
                .buf;
            update(g, &mut self.state(g, &mut part))?;
            self.write(g, part, writes)?;
        }
        if self.pipeline_read && n > 0 {
            let ahead = (0, self.read(0, writes)?);
            self.prefetched = Some(self.store.pool().park(ahead));
        }
        Ok(())
    }

    /// Writes any group whose write-back failed earlier; fails if one still fails.
    pub fn flush(&mut self) -> Result<()> {
        for held in std::mem::take(&mut self.unwritten) {
            let (g, part) = held.into_inner();
            let offset = self.groups[g].extent.offset;
            let result = match self.store.write(offset, part) {
                Ok(ticket) => ticket.wait().map(drop),
                Err(failed) => Err(failed),
            };
            if let Err(failed) = result {
                self.unwritten
                    .push(self.store.pool().park((g, failed.value)));
                return Err(self.failed(g, GroupOp::WriteBack, failed.error));
            }
        }
        Ok(())
    }

    /// Starts reading group `g`, once no write of it is pending and few
    /// enough writes are in flight to leave a buffer.
    fn read(&mut self, g: usize, writes: &mut VecDeque<(usize, Ticket<E>)>) -> Result<Ticket<E>> {
        while writes.iter().any(|(h, _)| *h == g) {
            self.drain(writes, writes.len() - 1)?;
        }
        self.drain(writes, usize::from(self.pipeline_write))?;
        let part = self.lease(g)?;
        let offset = self.groups[g].extent.offset;
        self.store
            .read(offset, part)
            .map_err(|f| self.failed(g, GroupOp::Read, f.error))
    }

    fn write(
        &mut self,
        g: usize,
        part: SlabPart,
        writes: &mut VecDeque<(usize, Ticket<E>)>,
    ) -> Result<()> {
        match self.store.write(self.groups[g].extent.offset, part) {
            Ok(ticket) => writes.push_back((g, ticket)),
            Err(failed) => {
                self.unwritten
                    .push(self.store.pool().park((g, failed.value)));
                return Err(self.failed(g, GroupOp::WriteBack, failed.error));
            }
        }
        self.drain(writes, usize::from(self.pipeline_write))
    }

    /// Waits for the oldest writes until at most `keep` are in flight.
    fn drain(&mut self, writes: &mut VecDeque<(usize, Ticket<E>)>, keep: usize) -> Result<()> {
        let mut first_error = None;
        while writes.len() > keep {
            let Some((g, ticket)) = writes.pop_front() else {
                break;
            };
            if let Err(failed) = ticket.wait() {
                self.unwritten
                    .push(self.store.pool().park((g, failed.value)));
                first_error.get_or_insert(self.failed(g, GroupOp::WriteBack, failed.error));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// A pinned buffer sized for group `g`.
    fn lease(&self, g: usize) -> Result<SlabPart> {
        let padded = self.groups[g].extent.len as usize;
        let mut parts = self.store.pool().wait_lease()?.split(&[padded])?;
        let part = parts.pop().ok_or_else(|| Error::Layout {
            reason: "splitting a slab gave no part".into(),
        })?;
        Ok(part)
    }

    fn state<'a>(&self, g: usize, part: &'a mut SlabPart) -> GroupState<'a> {
        let group = &self.groups[g];
        GroupState {
            part,
            elements: group.elements,
            components: group.components,
        }
    }

    fn failed(&self, g: usize, op: GroupOp, error: Error) -> SwapError {
        SwapError::Group {
            group: g,
            op,
            cause: std::sync::Arc::new(error.into()),
        }
    }
}
