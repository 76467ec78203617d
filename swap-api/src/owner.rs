//! [`OwnerToken`]: which device instance allocated a piece of memory.

use std::sync::Arc;

/// Identifies one device (and its clones), so that
/// [`Device::owns`](crate::Device::owns) can tell its memory from that of
/// another device of the same backend: each allocation keeps a clone of its
/// device's token. Driver handles cannot always tell (wgpu's ids repeat
/// across instances).
///
/// ```
/// use tensorswap_core::OwnerToken;
/// let device = OwnerToken::new();
/// let memory = device.clone();
/// assert!(memory.same(&device));
/// assert!(!memory.same(&OwnerToken::new()));
/// ```
#[derive(Debug, Clone, Default)]
pub struct OwnerToken(Arc<()>);

impl OwnerToken {
    /// A token no other device has.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when both come from the same [`OwnerToken::new`].
    pub fn same(&self, other: &OwnerToken) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
