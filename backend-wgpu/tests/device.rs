//! wgpu-specific behaviour on wgpu's noop backend (runs everywhere): limits,
//! knobs, a device the application owns, and failures.

use std::sync::{Arc, Mutex};

use tensorswap_core::{Device, DeviceExt, Error};
use tensorswap_wgpu::WgpuDevice;

fn noop_with(limits: wgpu::Limits) -> (wgpu::Device, wgpu::Queue) {
    wgpu::Device::noop(&wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    })
}

fn noop() -> (wgpu::Device, wgpu::Queue) {
    noop_with(wgpu::Limits::default())
}

#[test]
fn allocations_above_max_buffer_size_are_too_large_and_name_the_limit() {
    // Not a multiple of 4: the largest allocation rounds down to one.
    let limits = wgpu::Limits {
        max_buffer_size: (1 << 20) + 2,
        ..Default::default()
    };
    let (device, queue) = noop_with(limits);
    let dev = WgpuDevice::from_wgpu(device, queue).unwrap();
    assert_eq!(dev.capabilities().max_allocation, 1 << 20);
    let fits = dev.alloc(1 << 20).unwrap();
    assert_eq!(fits.len(), 1 << 20);
    let err = dev.alloc((1 << 20) + 1).unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { requested, max, limit: "max_buffer_size", .. }
            if requested == (1 << 20) + 1 && max == 1 << 20),
        "{err}"
    );
    assert!(err.to_string().contains("max_buffer_size"), "{err}");
    // The device still works, up to the last byte of the largest buffer.
    let tail = vec![9u8; 3];
    let done = dev
        .upload_blocking(tail.clone(), fits, (1 << 20) - 3)
        .unwrap();
    let back = dev
        .download_blocking(done.device, (1 << 20) - 3, vec![0u8; 3])
        .unwrap();
    assert_eq!(back.host, tail);
}

#[test]
fn memory_is_one_bindable_buffer_padded_to_the_copy_alignment() {
    let (device, queue) = noop();
    let dev = WgpuDevice::builder()
        .usage(wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM)
        .wrap(device, queue)
        .unwrap();
    let mem = dev.alloc(4099).unwrap();
    let buffer = mem.memory().buffer();
    assert_eq!(buffer.size(), 4100);
    let usage = buffer.usage();
    for wanted in [
        wgpu::BufferUsages::STORAGE,
        wgpu::BufferUsages::UNIFORM,
        wgpu::BufferUsages::COPY_SRC,
        wgpu::BufferUsages::COPY_DST,
    ] {
        assert!(usage.contains(wanted), "{usage:?} lacks {wanted:?}");
    }
}

#[test]
fn bad_knobs_are_config_errors() {
    for builder in [
        WgpuDevice::builder().staging_buffers(0),
        WgpuDevice::builder().staging_buffer_size(0),
        WgpuDevice::builder().transfer_timeout(std::time::Duration::ZERO),
    ] {
        let (device, queue) = noop();
        let err = builder.wrap(device, queue).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err}");
    }
}

#[test]
fn an_adapter_name_that_matches_nothing_is_unavailable_and_lists_the_adapters() {
    let err = WgpuDevice::builder()
        .adapter_name("no adapter is called this")
        .build()
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let message = err.to_string();
    assert!(message.contains("no adapter is called this"), "{message}");
    assert!(message.contains("there are"), "{message}");
}

#[test]
fn transfers_raise_nothing_on_a_shared_device() {
    // An application's handler sees only the application's errors.
    let (device, queue) = noop();
    let raised = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&raised);
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        seen.lock().unwrap().push(e.to_string())
    }));
    let dev = WgpuDevice::builder()
        .staging_buffer_size(4096)
        .staging_buffers(1)
        .wrap(device, queue)
        .unwrap();
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7) as u8).collect();
    let mem = dev
        .upload_blocking(data.clone(), dev.alloc(20_001).unwrap(), 1)
        .unwrap();
    let back = dev
        .download_blocking(mem.device, 1, vec![0u8; 20_000])
        .unwrap();
    assert_eq!(back.host, data);
    assert!(
        raised.lock().unwrap().is_empty(),
        "{:?}",
        raised.lock().unwrap()
    );
}

#[test]
fn a_destroyed_device_fails_transfers_with_a_typed_error() {
    let (device, queue) = noop();
    let dev = WgpuDevice::from_wgpu(device.clone(), queue).unwrap();
    let mem = dev.alloc(1 << 16).unwrap();
    device.destroy();
    // Unaligned: the bytes around the range cannot be read any more.
    let refused = dev
        .upload(vec![2u8; 100], mem, 1)
        .unwrap()
        .wait()
        .unwrap_err();
    assert!(
        matches!(
            refused.error,
            Error::Transfer {
                offset: 1,
                len: 100,
                ..
            }
        ),
        "{}",
        refused.error
    );
    let mem = refused.value.device;
    let refused = dev
        .upload(vec![1u8; 1 << 16], mem, 0)
        .unwrap()
        .wait()
        .unwrap_err();
    assert!(
        matches!(refused.error, Error::Transfer { .. }),
        "{}",
        refused.error
    );
    assert_eq!(
        refused.value.host,
        vec![1u8; 1 << 16],
        "the source comes back intact"
    );
    // Later transfers fail at once with the same cause, and never hang.
    let refused = dev
        .download(refused.value.device, 0, vec![0u8; 16])
        .unwrap()
        .wait()
        .unwrap_err();
    assert!(
        refused.error.to_string().contains("unusable"),
        "{}",
        refused.error
    );
}
