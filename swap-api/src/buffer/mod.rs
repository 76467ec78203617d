//! Memory that takes part in transfers: host buffers and device buffers.

mod device;
mod host;
mod host_buf;

pub use device::DeviceBuffer;
pub use host::HostBuffer;
pub(crate) use host_buf::bytes_mut;
pub use host_buf::{HostBuf, HostBufMut};
