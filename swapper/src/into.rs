//! `Swapper::swap_into`: a stored tensor read straight into a caller's buffer.

use std::sync::Arc;

use crate::error::{Result, SwapError};
use crate::meta::TensorId;
use crate::plan::{self, Chunk, Span};
use crate::shared::Shared;
use crate::stream::{self, ReadSink};
use crate::table::{Home, Slot};
use tensorswap_core::buffer::bytes_mut;
use tensorswap_core::Rejected;
use tensorswap_core::{Device, DeviceBuffer, DeviceExt, Error, HostBufMut, IoEngine, SlabPart};

/// Where `swap_into` finds the bytes.
enum Source<D: Device> {
    /// Device memory of a resident tensor.
    Device(Arc<DeviceBuffer<D>>),
    /// Host-tier bytes, already copied under the lock.
    Copied,
    /// The tensor's extent of the store file.
    File(Span),
}

pub(crate) fn swap_into<D: Device, E: IoEngine, H: HostBufMut>(
    shared: &Shared<D, E>,
    id: TensorId,
    mut buf: H,
) -> Result<H, Rejected<H, SwapError>> {
    let span = {
        let mut table = shared.lock();
        let checked = table.entry_mut(id).and_then(|entry| {
            if buf.bytes_len() != entry.logical {
                return Err(Error::Layout {
                    reason: format!(
                        "swap_into: tensor {id} has {} bytes, the buffer {}",
                        entry.logical,
                        buf.bytes_len()
                    ),
                }
                .into());
            }
            match (&entry.slot, &entry.home) {
                (Slot::Resident { buf, .. }, _) => Ok(Source::Device(Arc::clone(buf))),
                (Slot::Stored, Home::Host(Some(host))) => {
                    bytes_mut(&mut buf).copy_from_slice(&host[..entry.logical]);
                    Ok(Source::Copied)
                }
                (Slot::Stored, Home::File(extent)) => {
                    entry.readers += 1;
                    Ok(Source::File(Span {
                        item: 0,
                        file_offset: extent.offset,
                        logical: entry.logical,
                        padded: entry.padded,
                    }))
                }
                _ => Err(entry.refuse(id, "swap_into", "; wait for its swap first")),
            }
        });
        match checked {
            Ok(span) => span,
            Err(error) => return Err(Rejected { error, value: buf }),
        }
    };
    let span = match span {
        Source::Copied => return Ok(buf),
        Source::Device(memory) => {
            return shared
                .device
                .download_shared(&memory, 0, buf)
                .map_err(Rejected::map_err)
        }
        Source::File(span) => span,
    };
    // Through the slabs, in the chunks the tensor was written in, so reads
    // stay direct and checksums verify.
    let mut sink = IntoBuffer {
        out: bytes_mut(&mut buf),
        error: None,
    };
    let batches = plan::batches(&[span], shared.store.pool().slab_size());
    stream::read(
        &shared.store,
        shared.store.striped_file(),
        &batches,
        &mut sink,
    );
    let error = sink.error.take();
    shared.readers(id, -1);
    match error {
        None => Ok(buf),
        Some(error) => Err(Rejected {
            error: error.into(),
            value: buf,
        }),
    }
}

/// Copies each chunk read into its place in the caller's buffer.
struct IntoBuffer<'a> {
    out: &'a mut [u8],
    error: Option<Error>,
}

impl ReadSink for IntoBuffer<'_> {
    fn wanted(&mut self, _: &Chunk) -> bool {
        self.error.is_none()
    }

    fn consume(&mut self, chunk: &Chunk, result: tensorswap_core::Result<SlabPart>) {
        match result {
            Ok(part) => {
                let to = &mut self.out[chunk.item_offset..chunk.item_offset + chunk.len];
                to.copy_from_slice(&part[..chunk.len]);
            }
            Err(error) => {
                self.error.get_or_insert(error);
            }
        }
    }
}
