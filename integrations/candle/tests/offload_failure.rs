//! A swap-out that fails loses nothing: the ticket says why, and `swap_in`
//! gives the tensor back bit-identical (the only copy), after which the
//! offloader has forgotten it. The failure is real: the process may not
//! grow files past 1 MiB (`RLIMIT_FSIZE`), so the write is EFBIG. A test
//! binary of its own, because the limit is per process.

mod common;

use candle_core::{Device, Tensor};
use common::{raw_bytes, seeded};
use tensorswap_candle::Offloader;
use tensorswap_swapper::TensorState;

#[test]
fn a_failed_swap_out_gives_the_tensor_back() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let off = Offloader::builder()
        .folder(dir.path())
        .slab_size(256 << 10)
        .build()?;
    let tensor = Tensor::from_vec(seeded(8, 1 << 20), 1 << 20, &Device::Cpu)?; // 4 MiB
    let expected = raw_bytes(&tensor);

    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on this process's own limits and signal
    // disposition; SIGXFSZ ignored turns the limit into EFBIG errors.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut old), 0);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit {
            rlim_cur: 1 << 20,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let outcome = off.swap_out(1, &tensor).map(|ticket| ticket.wait());
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &old) };

    let error = outcome?.expect_err("a 4 MiB swap-out into a file limited to 1 MiB failed");
    let message = error.to_string();
    assert!(
        message.contains("tensor 1") && message.contains("too large"),
        "{message}"
    );
    assert_eq!(off.status(1)?.state, TensorState::Resident);
    drop(tensor);
    let back = off.swap_in(1)?;
    assert_eq!(raw_bytes(&back), expected);
    assert!(
        off.ids().is_empty(),
        "the offloader still holds {:?}",
        off.ids()
    );
    Ok(())
}
