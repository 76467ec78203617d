//! Refused calls: a typed error that says what is wrong, the caller's
//! buffer back, nothing else changed.

use tensorswap_core::IoEngine;
use tensorswap_store::{PutOptions, StoreError, StoreOptions, MAX_KEY_LEN, MAX_META_LEN};

use super::open;
use crate::engine::scratch_parent;
use crate::{check, expect_bytes, pattern, CaseError, Ctx, Outcome};

/// Fails unless `result` is refused with an error `expected` accepts,
/// handing back `want`.
fn refused<T, B: AsRef<[u8]>>(
    what: &str,
    result: Result<T, tensorswap_core::Rejected<B, StoreError>>,
    expected: impl Fn(&StoreError) -> bool,
    want: &[u8],
) -> Outcome {
    match result {
        Ok(_) => Err(CaseError(format!("{what} was accepted"))),
        Err(r) if expected(&r.error) => {
            expect_bytes(&format!("{what}: the buffer back"), r.value.as_ref(), want)
        }
        Err(r) => Err(CaseError(format!(
            "{what} failed with the wrong error: {}",
            r.error
        ))),
    }
}

/// Keys and metadata too long, absent keys, ranges outside a value,
/// buffers too small, a second open of the folder.
pub fn refusals_hand_buffers_back<E: IoEngine + 'static>(ctx: &Ctx<E>) -> Outcome {
    let folder = scratch_parent()?;
    let store = open(ctx, folder.path(), StoreOptions::new(1 << 20))?;
    store
        .put(b"k", pattern(1, 10_000), &PutOptions::new())?
        .wait()?;
    let data = pattern(2, 100);

    let long_key = vec![b'k'; MAX_KEY_LEN + 1];
    let put = store.put(&long_key, data.clone(), &PutOptions::new());
    refused(
        "a put with a key too long",
        put,
        |e| matches!(e, StoreError::KeyTooLong { .. }),
        &data,
    )?;
    let put = store.put(
        b"m",
        data.clone(),
        &PutOptions::new().meta(vec![0u8; MAX_META_LEN + 1]),
    );
    refused(
        "a put with metadata too long",
        put,
        |e| matches!(e, StoreError::MetaTooLong { .. }),
        &data,
    )?;
    let get = store.get(b"absent", data.clone());
    refused(
        "a get of an absent key",
        get,
        StoreError::is_not_found,
        &data,
    )?;
    let get = store.get(b"k", data.clone());
    refused(
        "a get into a buffer too small",
        get,
        |e| matches!(e, StoreError::Range { .. }),
        &data,
    )?;
    let get = store.get_range(b"k", 9_950, data.clone());
    refused(
        "a range past the value's end",
        get,
        |e| matches!(e, StoreError::Range { .. }),
        &data,
    )?;
    let get = store.get_range(b"k", u64::MAX - 10, data.clone());
    refused(
        "a range whose end overflows",
        get,
        |e| matches!(e, StoreError::Range { .. }),
        &data,
    )?;

    let second = tensorswap_store::PersistentStore::open_with_engine(
        folder.path(),
        StoreOptions::new(1 << 20),
        ctx.engine()?,
    );
    let me = format!("pid {}", std::process::id());
    check!(
        matches!(&second, Err(StoreError::Locked { holder, .. }) if holder.contains(&me)),
        "a second open of the folder was not refused naming {me}: {:?}",
        second.err()
    );
    // Nothing was lost.
    let got = store.get(b"k", vec![0u8; 10_000])?.wait()?;
    expect_bytes("the stored value", &got.buf, &pattern(1, 10_000))?;
    check!(
        store.stats().keys == 1,
        "{} keys, not 1",
        store.stats().keys
    );
    ctx.checked(7);
    Ok(())
}
