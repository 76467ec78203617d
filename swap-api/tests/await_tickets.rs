//! Transfers and file requests awaited (`IntoFuture`) under a plain
//! executor (pollster) and under tokio: the same results as `wait`, errors
//! with their buffers included, whether the ticket was complete at the
//! first poll or not.

use std::sync::Arc;
use std::time::Duration;

use tensorswap_core::{
    AioConfig, AnyEngine, DeviceExt, EngineKind, Error, FaultStage, FaultyEngine, IoEngineExt,
    IoOp, SwapDir,
};
use tensorswap_cpu::CpuDevice;

fn slow_device() -> CpuDevice {
    // 50 ms per copy: the ticket is still running at the first poll, so
    // the future waits on its own thread.
    CpuDevice::builder()
        .latency(Duration::from_millis(50))
        .build()
        .expect("cpu device")
}

#[test]
fn a_transfer_awaited_under_a_plain_executor_gives_its_buffers_back() {
    let dev = slow_device();
    let up = dev
        .upload(vec![7u8; 8192], dev.alloc(8192).unwrap(), 0)
        .unwrap();
    assert!(!up.is_complete(), "the latency keeps it running");
    let done = pollster::block_on(async { up.await }).expect("upload");
    let down = dev.download(done.device, 0, vec![0u8; 8192]).unwrap();
    let back = pollster::block_on(async { down.await }).expect("download");
    assert!(back.host.iter().all(|&b| b == 7));
}

/// `await` on a ticket that is already complete returns at the first poll.
#[test]
fn a_complete_ticket_is_ready_at_once() {
    let dev = CpuDevice::new().unwrap();
    let up = dev
        .upload(vec![1u8; 64], dev.alloc(64).unwrap(), 0)
        .unwrap();
    while !up.is_complete() {
        std::thread::yield_now();
    }
    let done = pollster::block_on(async { up.await }).expect("upload");
    assert_eq!(done.host, vec![1u8; 64]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_requests_awaited_under_tokio_land_and_come_back() {
    let parent = tempfile::tempdir().unwrap();
    let dir = SwapDir::create(parent.path()).unwrap();
    let engine = Arc::new(AnyEngine::new(EngineKind::Auto, &AioConfig::default()).unwrap());
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let file = dir.create_file().unwrap();
        let engine = Arc::clone(&engine);
        tasks.push(tokio::spawn(async move {
            let written = engine.write(&file, 0, vec![i; 1 << 20])?.await?;
            let read = engine.read(&file, 0, vec![0u8; 1 << 20])?.await?;
            assert_eq!(written.buf.len(), read.buf.len());
            Ok::<_, Error>(read.buf.iter().all(|&b| b == i))
        }));
    }
    for task in tasks {
        assert!(task.await.expect("task").expect("requests"), "bytes differ");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_request_awaited_hands_its_buffer_back() {
    let parent = tempfile::tempdir().unwrap();
    let dir = SwapDir::create(parent.path()).unwrap();
    let file = dir.create_file().unwrap();
    let engine =
        FaultyEngine::new(AnyEngine::new(EngineKind::Auto, &AioConfig::default()).unwrap());
    engine.fail_next(IoOp::Write, libc::EIO, FaultStage::Complete);
    let failed = engine
        .write(&file, 0, vec![9u8; 4096])
        .unwrap()
        .await
        .expect_err("the injected fault");
    assert!(matches!(failed.error, Error::Io { .. }), "{}", failed.error);
    assert_eq!(failed.value, vec![9u8; 4096], "the buffer comes back whole");
}
