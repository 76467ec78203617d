//! Swap tickets awaited (`IntoFuture`) under a plain executor (pollster)
//! and under tokio: the same outcome as `wait`.

use tensorswap_cpu::CpuDevice;
use tensorswap_swapper::{SwapError, SwapStore, Swapper, TensorMeta, TensorState};

fn swapper(parent: &std::path::Path) -> Swapper<CpuDevice> {
    let dev = CpuDevice::new().expect("cpu device");
    let store = SwapStore::builder()
        .folder(parent)
        .slab_size(1 << 20)
        .slabs(2)
        .build_for(&dev)
        .expect("store");
    Swapper::new(dev, store).expect("swapper")
}

#[test]
fn a_swap_out_awaited_under_a_plain_executor_stores_the_tensor() {
    let parent = tempfile::tempdir().unwrap();
    let s = swapper(parent.path());
    let buf = s.device().alloc_from(&vec![3u8; 3 << 20]).unwrap();
    s.register(1, TensorMeta::bytes_of(3 << 20), buf).unwrap();
    let ticket = s.swap_out(&[1]).unwrap();
    pollster::block_on(async { ticket.await }).expect("swap out");
    assert_eq!(s.status(1).unwrap().state, TensorState::Stored);
}

#[tokio::test(flavor = "current_thread")]
async fn swaps_awaited_under_tokio_round_trip_and_report_refusals() {
    let parent = tempfile::tempdir().unwrap();
    let s = swapper(parent.path());
    let buf = s.device().alloc_from(&vec![5u8; 1 << 20]).unwrap();
    s.register(2, TensorMeta::bytes_of(1 << 20), buf).unwrap();
    s.swap_out(&[2]).unwrap().await.expect("swap out");
    s.swap_in(&[2]).unwrap().await.expect("swap in");
    let back = s.swap_into(2, vec![0u8; 1 << 20]).expect("copy out");
    assert!(back.iter().all(|&b| b == 5));
    let refused = s.swap_in(&[2]).expect_err("already resident");
    assert!(
        matches!(refused, SwapError::InvalidState { id: 2, .. }),
        "{refused}"
    );
}
