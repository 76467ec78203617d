//! The whole conformance suite on wgpu's noop backend (copies run in host
//! memory; no adapter or driver needed), through the smallest staging ring:
//! 4 KiB buffers, two per direction, so that every transfer of more than a
//! few pages is cut into pieces that wait for staging buffers to come back.

use tensorswap_wgpu::WgpuDevice;

tensorswap_conformance::conformance_main!("wgpu-noop", requires: "wgpu", || {
    let (device, queue) = wgpu::Device::noop(&wgpu::DeviceDescriptor::default());
    WgpuDevice::builder()
        .staging_buffer_size(4096)
        .staging_buffers(2)
        .wrap(device, queue)
});
