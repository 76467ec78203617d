//! The safe, validating API every user calls: [`DeviceExt`].

use std::ptr::NonNull;
use std::sync::Arc;

use crate::buffer::{HostBuf, HostBufMut, HostBuffer, Pinned};
use crate::transfer::{Done, Failed, Transfer, TransferResult};
use crate::DeviceBuffer;
use crate::{check_range, Device, Direction, Error, IoOp, PendingOp, Rejected, Result, SwapFile};

/// Safe operations on any [`Device`]: allocation, registered host memory and
/// transfers that own their buffers while in flight.
///
/// Implemented for every `Device`; bring it into scope and call the methods on
/// the device.
///
/// ```
/// use tensorswap_core::DeviceExt;
/// let dev = tensorswap_cpu::CpuDevice::new()?;
/// let mut host = dev.alloc_host(1 << 20)?;      // pinned where the backend can
/// host.fill(7);
/// let mem = dev.alloc(1 << 20)?;                // device memory
/// let up = dev.upload(host, mem, 0)?;           // the ticket owns both buffers
/// let done = up.wait()?;                        // ... and gives them back
/// let back = dev.download(done.device, 0, vec![0u8; 1 << 20])?.wait()?;
/// assert!(back.host.iter().all(|&b| b == 7));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait DeviceExt: Device + Sized {
    /// Allocates `len` bytes of device memory.
    fn alloc(&self, len: usize) -> Result<DeviceBuffer<Self>> {
        let memory = self.allocate_memory(len)?;
        Ok(DeviceBuffer::new(memory, len, self.info().backend))
    }

    /// Allocates `len` zeroed bytes of host memory aligned to the backend's
    /// [`host_alignment`](crate::Capabilities::host_alignment) and registered
    /// with the device (page-locked where the backend can).
    fn alloc_host(&self, len: usize) -> Result<HostBuffer> {
        let caps = self.capabilities();
        let mut buf = HostBuffer::with_alignment(len, caps.host_alignment)?;
        let ptr = NonNull::new(buf.stable_mut_ptr()).ok_or(Error::HostAlloc {
            len,
            align: caps.host_alignment,
        })?;
        // SAFETY: the registration is stored inside `buf` and HostBuffer drops
        // it before freeing the memory, so the range outlives it.
        let registration = unsafe { self.register_host(ptr, len)? };
        buf.attach_registration(Box::new(registration), caps.pinned_host);
        Ok(buf)
    }

    /// Registers a host buffer the caller owns with the device, page-locked
    /// where the backend can (DeepSpeed's `pin_memory`): CUDA
    /// `cuMemHostRegister`, the CPU backend `mlock`, wgpu nothing
    /// ([`Pinned::is_pinned`] says false). The [`Pinned`] value owns the
    /// buffer until [`Pinned::unpin`] gives it back.
    ///
    /// Refused, with the buffer handed back unchanged: memory registered
    /// already ([`HostBuf::is_registered`]: [`Error::AlreadyRegistered`],
    /// also when the driver finds the range registered), a memlock limit
    /// that does not allow it ([`Error::Pin`], [`Error::MapCount`]), a
    /// device that refuses the range.
    ///
    /// ```
    /// use tensorswap_core::{DeviceExt, Error};
    /// let dev = tensorswap_cpu::CpuDevice::new()?;
    /// let pinned = dev.pin_memory(vec![1.5f32; 1 << 16])?;
    /// // A range is registered once: pinning it again hands it back.
    /// let again = dev.pin_memory(pinned).unwrap_err();
    /// assert!(matches!(again.error, Error::AlreadyRegistered { .. }));
    /// let weights: Vec<f32> = again.value.unpin();
    /// assert_eq!(weights.len(), 1 << 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn pin_memory<B: HostBuf>(&self, buf: B) -> Result<Pinned<B>, Rejected<B>> {
        let len = buf.bytes_len();
        if buf.is_registered() {
            return Err(Rejected {
                error: Error::AlreadyRegistered { len },
                value: buf,
            });
        }
        // An empty buffer has nothing to lock (and a dangling address).
        let ptr = match NonNull::new(buf.stable_ptr().cast_mut()) {
            Some(ptr) if len > 0 => ptr,
            _ => {
                let locked = self.capabilities().pinned_host;
                return Ok(Pinned::new(buf, Box::new(()), locked));
            }
        };
        // SAFETY: the registration is kept inside the `Pinned` next to `buf`
        // and dropped before it; `Pinned` never hands out `&mut B`, so the
        // range stays allocated and in place (HostBuf) until then.
        match unsafe { self.pin_host(ptr, len) } {
            Ok((registration, locked)) => Ok(Pinned::new(buf, Box::new(registration), locked)),
            Err(error) => Err(Rejected { error, value: buf }),
        }
    }

    /// Starts copying all of `src` into `dst` at `dst_offset`.
    ///
    /// Refused up front (buffers handed back in [`Failed`]) when the range does
    /// not fit or `dst` belongs to another device.
    fn upload<H: HostBuf>(
        &self,
        src: H,
        dst: DeviceBuffer<Self>,
        dst_offset: usize,
    ) -> Result<Transfer<Self, H>, Failed<Self, H>> {
        let len = src.bytes_len();
        if let Err(error) = check_target(self, &dst, dst_offset, len) {
            return Err(Failed {
                error,
                value: Done {
                    host: src,
                    device: dst,
                },
            });
        }
        // SAFETY: the range fits and dst is ours (checked above); the Transfer
        // takes ownership of `src` and `dst` and holds them until the op has
        // been waited (or forever, if leaked), so nobody else touches them.
        match unsafe { self.submit_upload(src.stable_ptr(), len, dst.memory(), dst_offset) } {
            Ok(op) => Ok(Transfer::new(op, src, dst, Direction::Upload)),
            Err(error) => Err(Failed {
                error,
                value: Done {
                    host: src,
                    device: dst,
                },
            }),
        }
    }

    /// Starts copying `dst.bytes_len()` bytes of `src`, from `src_offset`, into `dst`.
    ///
    /// Refused up front (buffers handed back in [`Failed`]) when the range does
    /// not fit or `src` belongs to another device.
    fn download<H: HostBufMut>(
        &self,
        src: DeviceBuffer<Self>,
        src_offset: usize,
        mut dst: H,
    ) -> Result<Transfer<Self, H>, Failed<Self, H>> {
        let len = dst.bytes_len();
        if let Err(error) = check_target(self, &src, src_offset, len) {
            return Err(Failed {
                error,
                value: Done {
                    host: dst,
                    device: src,
                },
            });
        }
        let ptr = dst.stable_mut_ptr();
        // SAFETY: as in upload: range checked, memory ours, both buffers owned
        // by the Transfer until the op has been waited.
        match unsafe { self.submit_download(src.memory(), src_offset, ptr, len) } {
            Ok(op) => Ok(Transfer::new(op, dst, src, Direction::Download)),
            Err(error) => Err(Failed {
                error,
                value: Done {
                    host: dst,
                    device: src,
                },
            }),
        }
    }

    /// Copies `dst.bytes_len()` bytes of a shared device buffer, from
    /// `src_offset`, into `dst`, and waits.
    ///
    /// The buffer stays shared (e.g. a swapper's
    /// `TensorHandle`): while a clone of
    /// the `Arc` is held nobody can own it, so nobody can upload into it or
    /// free it, and the copy has finished when this returns.
    fn download_shared<H: HostBufMut>(
        &self,
        src: &Arc<DeviceBuffer<Self>>,
        src_offset: usize,
        mut dst: H,
    ) -> Result<H, Rejected<H>> {
        let len = dst.bytes_len();
        if let Err(error) = check_target(self, src, src_offset, len) {
            return Err(Rejected { error, value: dst });
        }
        let ptr = dst.stable_mut_ptr();
        // SAFETY: range checked and memory ours; `src` is borrowed (so the
        // Arc, and with it the memory, lives) until this function returns,
        // after the wait; an Arc clone excludes owners, so no transfer writes
        // the memory; `dst` stays in this frame, untouched, until the wait.
        let outcome = unsafe { self.submit_download(src.memory(), src_offset, ptr, len) }
            .and_then(PendingOp::wait);
        match outcome {
            Ok(()) => Ok(dst),
            Err(error) => Err(Rejected { error, value: dst }),
        }
    }

    /// Uploads and waits: a blocking convenience over [`DeviceExt::upload`].
    fn upload_blocking<H: HostBuf>(
        &self,
        src: H,
        dst: DeviceBuffer<Self>,
        dst_offset: usize,
    ) -> TransferResult<Self, H> {
        self.upload(src, dst, dst_offset)?.wait()
    }

    /// Downloads and waits: a blocking convenience over [`DeviceExt::download`].
    fn download_blocking<H: HostBufMut>(
        &self,
        src: DeviceBuffer<Self>,
        src_offset: usize,
        dst: H,
    ) -> TransferResult<Self, H> {
        self.download(src, src_offset, dst)?.wait()
    }

    /// Starts reading `len` bytes of `file` at `file_offset` straight into
    /// `dst` at `dst_offset`, with no copy through host memory (GPUDirect
    /// Storage; see [`Device::open_direct`], which must have accepted the
    /// file). The ticket holds a handle on the file, so it stays open.
    ///
    /// Refused up front (buffers handed back in [`Failed`]) when the range
    /// does not fit or `dst` belongs to another device.
    fn read_direct(
        &self,
        file: &SwapFile,
        file_offset: u64,
        dst: DeviceBuffer<Self>,
        dst_offset: usize,
        len: usize,
    ) -> Result<Transfer<Self, SwapFile>, Failed<Self, SwapFile>> {
        direct(self, IoOp::Read, dst, dst_offset, len, file, file_offset)
    }

    /// Starts writing `len` bytes of `src`, from `src_offset`, straight to
    /// `file` at `file_offset`: the reverse of [`DeviceExt::read_direct`].
    fn write_direct(
        &self,
        src: DeviceBuffer<Self>,
        src_offset: usize,
        len: usize,
        file: &SwapFile,
        file_offset: u64,
    ) -> Result<Transfer<Self, SwapFile>, Failed<Self, SwapFile>> {
        direct(self, IoOp::Write, src, src_offset, len, file, file_offset)
    }
}

impl<D: Device> DeviceExt for D {}

/// The checks and the submission of a direct file operation.
fn direct<D: Device>(
    dev: &D,
    op: IoOp,
    buf: DeviceBuffer<D>,
    offset: usize,
    len: usize,
    file: &SwapFile,
    file_offset: u64,
) -> Result<Transfer<D, SwapFile>, Failed<D, SwapFile>> {
    let checked = check_target(dev, &buf, offset, len).and_then(|()| {
        let end = u64::try_from(len)
            .ok()
            .and_then(|l| file_offset.checked_add(l));
        match end {
            Some(end) if end <= i64::MAX as u64 => Ok(()),
            _ => Err(Error::Layout {
                reason: format!(
                    "file range {file_offset}+{len} of {} is past the largest file offset",
                    file.path().display()
                ),
            }),
        }
    });
    if checked.is_ok() && op == IoOp::Write {
        // The bytes bypass host memory: whatever CRCs the range had are stale.
        file.checksums().forget(file_offset, len as u64);
    }
    // SAFETY: the range fits and the memory is ours (checked above); the
    // Transfer owns `buf` until the operation has been waited, so nobody
    // else touches or frees it meanwhile.
    let started = checked.and_then(|()| unsafe {
        dev.submit_direct(op, buf.memory(), offset, file, file_offset, len)
    });
    match started {
        Ok(pending) => Ok(Transfer::new(
            pending,
            file.clone(),
            buf,
            op.device_direction(),
        )),
        Err(error) => Err(Failed {
            error,
            value: Done {
                host: file.clone(),
                device: buf,
            },
        }),
    }
}

/// Checks that `buf` belongs to `dev` and that `offset..offset + len` fits in it.
fn check_target<D: Device>(
    dev: &D,
    buf: &DeviceBuffer<D>,
    offset: usize,
    len: usize,
) -> Result<()> {
    if !dev.owns(buf.memory()) {
        return Err(Error::ForeignMemory {
            memory: buf.backend(),
            device: dev.info().backend,
        });
    }
    check_range("device buffer", offset, len, buf.len())
}
