//! Blocking helpers the cases build on.

use tensorswap_core::{Device, DeviceBuffer, DeviceExt};

use crate::CaseError;

/// Uploads `bytes` (through registered host memory) into `dst` at `offset`.
pub(crate) fn put<D: Device>(
    dev: &D,
    bytes: &[u8],
    dst: DeviceBuffer<D>,
    offset: usize,
) -> Result<DeviceBuffer<D>, CaseError> {
    let mut host = dev.alloc_host(bytes.len())?;
    host.copy_from_slice(bytes);
    Ok(dev.upload_blocking(host, dst, offset)?.device)
}

/// Downloads `len` bytes of `src` from `offset`.
pub(crate) fn get<D: Device>(
    dev: &D,
    src: DeviceBuffer<D>,
    offset: usize,
    len: usize,
) -> Result<(DeviceBuffer<D>, Vec<u8>), CaseError> {
    let done = dev.download_blocking(src, offset, vec![0u8; len])?;
    Ok((done.device, done.host))
}

/// A device buffer of `bytes.len()` holding `bytes`.
pub(crate) fn filled<D: Device>(dev: &D, bytes: &[u8]) -> Result<DeviceBuffer<D>, CaseError> {
    put(dev, bytes, dev.alloc(bytes.len())?, 0)
}
