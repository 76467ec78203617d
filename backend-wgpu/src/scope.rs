//! Catching wgpu errors as values.
//!
//! wgpu reports most errors to the device's uncaptured-error handler, whose
//! default panics. Every wgpu call of this crate that can fail runs inside
//! [`captured`], so a failure becomes a typed error instead (and a handler a
//! user installed on a shared device never sees our errors).

/// Runs `f` with every wgpu error class captured on this thread; returns its
/// value and the first error it raised.
pub(crate) fn captured<T>(
    device: &wgpu::Device,
    f: impl FnOnce() -> T,
) -> (T, Option<wgpu::Error>) {
    let filters = [
        wgpu::ErrorFilter::Validation,
        wgpu::ErrorFilter::OutOfMemory,
        wgpu::ErrorFilter::Internal,
    ];
    let scopes: Vec<_> = filters.map(|f| device.push_error_scope(f)).into();
    let value = f();
    // Scopes pop innermost first; every one must be popped.
    let errors: Vec<_> = scopes
        .into_iter()
        .rev()
        .filter_map(|scope| pollster::block_on(scope.pop()))
        .collect();
    (value, errors.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_error_is_returned_not_raised() {
        let (device, _queue) = wgpu::Device::noop(&wgpu::DeviceDescriptor::default());
        let (_, error) = captured(&device, || {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: 16,
                // MAP_READ may only be combined with COPY_DST.
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::MAP_WRITE,
                mapped_at_creation: false,
            })
        });
        assert!(
            matches!(error, Some(wgpu::Error::Validation { .. })),
            "{error:?}"
        );
        let (_, error) = captured(&device, || {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: 16,
                usage: wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        assert!(error.is_none(), "{error:?}");
    }
}
