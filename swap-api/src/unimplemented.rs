//! The device type of a backend that is compiled in but not implemented yet.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::{Capabilities, Device, DeviceInfo, Error, PendingOp, Result};

/// Names a backend whose implementation has not landed.
pub trait PlannedBackend: Send + Sync + 'static {
    /// Backend name (`"wgpu"`, `"cuda"`).
    const NAME: &'static str;
    /// Where the work is tracked, shown in the `Unsupported` error.
    const TRACKING: &'static str;
}

/// A device that cannot be constructed: [`Unimplemented::open`] always returns
/// [`Error::Unsupported`], so the `Device` methods can never be reached.
///
/// It lets a planned backend take part in the facade, the CLI and the
/// conformance runner (which reports it as skipped with the reason) before
/// its real implementation exists.
pub enum Unimplemented<B: PlannedBackend> {
    #[doc(hidden)]
    Never(Infallible, PhantomData<B>),
}

impl<B: PlannedBackend> Unimplemented<B> {
    /// Always `Err(Error::Unsupported)`, naming the backend and where it is tracked.
    pub fn open() -> Result<Self> {
        Err(Error::Unsupported {
            backend: B::NAME,
            what: format!(
                "the {} backend is not implemented yet ({})",
                B::NAME,
                B::TRACKING
            ),
        })
    }

    fn never(&self) -> ! {
        match *self {
            Unimplemented::Never(never, _) => match never {},
        }
    }
}

impl<B: PlannedBackend> std::fmt::Debug for Unimplemented<B> {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.never()
    }
}

impl PendingOp for Infallible {
    fn is_complete(&self) -> bool {
        match *self {}
    }
    fn wait(self) -> Result<()> {
        match self {}
    }
}

impl<B: PlannedBackend> Device for Unimplemented<B> {
    type Memory = Infallible;
    type Pending = Infallible;
    type Registration = Infallible;

    fn info(&self) -> DeviceInfo {
        self.never()
    }
    fn capabilities(&self) -> Capabilities {
        self.never()
    }
    fn allocate_memory(&self, _len: usize) -> Result<Infallible> {
        self.never()
    }
    fn owns(&self, _memory: &Infallible) -> bool {
        self.never()
    }
    unsafe fn register_host(&self, _ptr: NonNull<u8>, _len: usize) -> Result<Infallible> {
        self.never()
    }
    unsafe fn submit_upload(
        &self,
        _: *const u8,
        _: usize,
        _: &Infallible,
        _: usize,
    ) -> Result<Infallible> {
        self.never()
    }
    unsafe fn submit_download(
        &self,
        _: &Infallible,
        _: usize,
        _: *mut u8,
        _: usize,
    ) -> Result<Infallible> {
        self.never()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Planned;
    impl PlannedBackend for Planned {
        const NAME: &'static str = "planned";
        const TRACKING: &'static str = "issue 0";
    }

    #[test]
    fn open_is_a_typed_unsupported_error() {
        // Irrefutable: the compiler knows `Ok` would hold an uninhabited value.
        let Err(err) = Unimplemented::<Planned>::open();
        assert!(err.is_unavailable());
        assert!(matches!(
            err,
            Error::Unsupported {
                backend: "planned",
                ..
            }
        ));
        assert!(err.to_string().contains("issue 0"), "{err}");
    }
}
