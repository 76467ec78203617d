//! The parameter swapper's `buffer_count` / `buffer_size` limits.

use tensorswap_core::{Device, DeviceExt, DirOptions, Error};
use tensorswap_swapper::{
    AioSection, OffloadDevice, OffloadParamConfig, ParamSwapper, SwapError, TensorMeta, TensorState,
};

use super::{rig, Rig, SLAB};
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

/// At most `buffer_count` parameters in memory and none above
/// `buffer_size` elements: refusals name the knob; `get` swaps in on
/// demand; released parameters free their buffer.
pub fn param_buffers<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let Rig {
        swapper,
        pool,
        parent,
    } = rig(ctx, 2, DirOptions::default())?;
    let params = ParamSwapper::with_swapper(swapper, 2, 3 * SLAB);
    let dev = params.swapper().device();
    let len = |id: u64| SLAB / 2 + 5000 * id as usize;
    for id in 0..4u64 {
        let mut host = dev.alloc_host(len(id))?;
        host.copy_from_slice(&pattern(id, len(id)));
        let done = dev.upload_blocking(host, dev.alloc(len(id))?, 0)?;
        params.register(id, TensorMeta::bytes_of(len(id)), done.device)?;
    }
    let too_big = params.register(
        9,
        TensorMeta::bytes_of(3 * SLAB + 1),
        dev.alloc(3 * SLAB + 1)?,
    );
    check!(
        matches!(too_big, Err(ref r) if matches!(r.error, SwapError::Buffers { .. }) && r.error.to_string().contains("buffer_size")),
        "an oversized parameter: {too_big:?}"
    );
    params.swap_out(&[0, 1, 2, 3])?.wait()?;
    params.prefetch(&[0, 1])?;
    let over = params.prefetch(&[2]);
    check!(
        matches!(over, Err(SwapError::Buffers { ref reason }) if reason.contains("buffer_count is 2")),
        "a third parameter in a two-buffer swapper: {over:?}"
    );
    check!(
        params.status(2)?.state == TensorState::Stored,
        "a refused prefetch moved the parameter"
    );
    for id in [0, 1] {
        let got = dev.download_shared(params.get(id)?.buffer(), 0, vec![0u8; len(id)])?;
        expect_bytes(&format!("parameter {id}"), &got, &pattern(id, len(id)))?;
    }
    params.release(&[0])?;
    let handle = params.get(2)?; // on demand, into the released buffer
    let got = dev.download_shared(handle.buffer(), 0, vec![0u8; len(2)])?;
    expect_bytes(
        "parameter 2 swapped in on demand",
        &got,
        &pattern(2, len(2)),
    )?;
    drop(handle);
    drop(params);
    let stats = pool.stats();
    check!(stats.free == stats.slabs, "pool not whole: {stats:?}");
    let left = std::fs::read_dir(parent.path())
        .map_err(|e| CaseError(format!("listing the scratch folder: {e}")))?
        .count();
    check!(left == 0, "{left} entries left behind");
    ctx.checked(4);
    config_errors(ctx)
}

/// Unusable `offload_param` sections are `Error::Config` naming the key.
fn config_errors<D: Device>(ctx: &Ctx<D>) -> Outcome {
    let aio = AioSection::default();
    let cases = [
        (
            OffloadParamConfig {
                nvme_path: None,
                ..OffloadParamConfig::default()
            },
            "nvme_path",
        ),
        (
            OffloadParamConfig {
                device: OffloadDevice::None,
                ..OffloadParamConfig::default()
            },
            "\"none\"",
        ),
        (
            OffloadParamConfig {
                device: OffloadDevice::Cpu,
                buffer_count: 0,
                ..OffloadParamConfig::default()
            },
            "buffer_count",
        ),
    ];
    for (config, key) in cases {
        match ParamSwapper::new(ctx.device()?, &config, &aio) {
            Err(SwapError::Core(Error::Config { reason })) if reason.contains(key) => {}
            Err(other) => {
                return Err(CaseError(format!(
                    "{config:?}: expected a Config error naming {key}, got {other}"
                )))
            }
            Ok(_) => return Err(CaseError(format!("{config:?} was accepted"))),
        }
    }
    ctx.checked(3);
    Ok(())
}
