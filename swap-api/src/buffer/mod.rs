//! Host memory that takes part in transfers and file requests: aligned
//! buffers, a caller's own buffers pinned ([`Pinned`]), and the traits that
//! let any owned buffer take part.

mod host;
mod host_buf;
mod pinned;

pub use host::HostBuffer;
pub use host_buf::bytes_mut;
pub use host_buf::{HostBuf, HostBufMut};
pub use pinned::Pinned;
