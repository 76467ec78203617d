//! The front door's error paths: each verb that fails hands back what it
//! was given, and a retry then succeeds.
#![cfg(feature = "cpu")]

use tensorswap::cpu::CpuDevice;
use tensorswap::swapper::{SwapError, SwapStore, TensorState};
use tensorswap::{
    AioConfig, AnyDevice, AnyEngine, DeviceExt, EngineKind, Error, FaultStage, FaultyEngine, IoOp,
    PinnedPool, SwapDir, TensorSwap,
};

type Faulty = TensorSwap<FaultyEngine<AnyEngine>>;

/// A TensorSwap on a CPU device of `capacity` bytes (a clone of which
/// comes with it, to count its memory) whose store's engine takes injected
/// faults.
fn tensor_swap(capacity: usize) -> (Faulty, CpuDevice, tempfile::TempDir) {
    let parent = tempfile::tempdir().unwrap();
    let cpu = CpuDevice::builder().capacity(capacity).build().unwrap();
    let device = AnyDevice::Cpu(cpu.clone());
    let dir = SwapDir::create(parent.path()).unwrap();
    let pool = PinnedPool::builder()
        .slab_size(1 << 20)
        .slabs(2)
        .alignment(dir.alignment())
        .build_for(&device)
        .unwrap();
    let engine =
        FaultyEngine::new(AnyEngine::new(EngineKind::Auto, &AioConfig::default()).unwrap());
    let store = SwapStore::new(engine, dir, pool).unwrap();
    (TensorSwap::with(device, store).unwrap(), cpu, parent)
}

fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13) ^ seed)
        .collect()
}

#[test]
fn a_full_disk_hands_the_tensor_back_and_a_retry_stores_it() {
    let (ts, cpu, _dir) = tensor_swap(64 << 20);
    let len = (3 << 20) + 11;
    let tensor = ts.to_device(bytes(1, len)).unwrap().device;
    ts.store()
        .engine()
        .fail_next(IoOp::Write, libc::ENOSPC, FaultStage::Complete);
    let refused = ts.swap_tensor(tensor).unwrap_err();
    assert!(
        matches!(refused.error.core(), Some(Error::Io { cause, .. }) if cause.raw_os_error() == Some(libc::ENOSPC)),
        "{}",
        refused.error
    );
    let tensor = refused.value.into_memory().expect("the tensor comes back");
    assert_eq!(cpu.used(), tensor.len(), "nothing else is held");
    let handle = ts.swap_tensor(tensor).unwrap();
    assert_eq!(ts.status(&handle).unwrap().state, TensorState::Stored);
    let back = ts.load_tensor(handle).unwrap();
    assert_eq!(
        ts.from_device(back, vec![0u8; len]).unwrap().host,
        bytes(1, len)
    );
}

#[test]
fn a_failed_read_hands_the_handle_back_and_a_retry_loads_it() {
    let (ts, _cpu, _dir) = tensor_swap(64 << 20);
    let len = 1 << 20;
    let handle = ts
        .swap_tensor(ts.to_device(bytes(2, len)).unwrap().device)
        .unwrap();
    ts.store()
        .engine()
        .fail_next(IoOp::Read, libc::EIO, FaultStage::Complete);
    let refused = ts.load_tensor(handle).unwrap_err();
    assert!(
        matches!(refused.error.core(), Some(Error::Io { cause, .. }) if cause.raw_os_error() == Some(libc::EIO)),
        "{}",
        refused.error
    );
    let handle = refused.value;
    assert_eq!(ts.status(&handle).unwrap().state, TensorState::Stored);
    // After a prefetch, load_tensor hands the tensor over once read.
    ts.prefetch(&handle).unwrap();
    let back = ts.load_tensor(handle).unwrap();
    assert_eq!(
        ts.from_device(back, vec![0u8; len]).unwrap().host,
        bytes(2, len)
    );
}

#[test]
fn loaded_and_discarded_tensors_leave_no_device_memory() {
    let (ts, cpu, _dir) = tensor_swap(64 << 20);
    let first = ts
        .swap_tensor(ts.to_device(bytes(3, 4096)).unwrap().device)
        .unwrap();
    let id = first.id();
    let status = ts.status(&first).unwrap();
    assert_eq!(
        (status.state, status.logical_bytes),
        (TensorState::Stored, 4096)
    );
    let second = ts
        .swap_tensor(ts.to_device(bytes(4, 4096)).unwrap().device)
        .unwrap();
    assert_ne!(id, second.id(), "two handles, one id");
    ts.discard(first).unwrap();
    drop(ts.load_tensor(second).unwrap());
    assert_eq!(cpu.used(), 0, "device memory left behind");
}

#[test]
fn a_device_without_room_hands_the_host_buffer_back() {
    let (ts, _cpu, _dir) = tensor_swap(1 << 20);
    let host = ts.pin_memory(bytes(6, 2 << 20)).unwrap();
    let at = host.as_ptr();
    let refused = ts.to_device(host).unwrap_err();
    assert!(
        matches!(refused.error, Error::OutOfMemory { .. }),
        "{}",
        refused.error
    );
    assert_eq!(refused.value.as_ptr(), at);
    let plain = ts.unpin_memory(refused.value);
    assert_eq!(plain, bytes(6, 2 << 20));
}

#[test]
fn memory_of_another_device_is_handed_back() {
    let (ts, _cpu, _dir) = tensor_swap(64 << 20);
    let other = CpuDevice::new().unwrap();
    let foreign = AnyDevice::Cpu(other.clone()).alloc(4096).unwrap();
    let refused = ts.swap_tensor(foreign).unwrap_err();
    assert!(
        matches!(refused.error, SwapError::Core(Error::ForeignMemory { .. })),
        "{}",
        refused.error
    );
    assert_eq!(refused.value.into_memory().map(|t| t.len()), Some(4096));
}
