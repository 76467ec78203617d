//! `tensorswap info`: what this build and this machine can do.

use std::io::Write;

use tensorswap::sys::memlock::MemlockLimit;
use tensorswap::{Device, COMPILED_BACKENDS};

use super::size::show;

pub(crate) fn run(out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "tensorswap {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(
        out,
        "backends compiled in: {}",
        COMPILED_BACKENDS.join(", ")
    )?;
    writeln!(out, "devices:")?;
    for &backend in COMPILED_BACKENDS {
        let dev = match tensorswap::open(backend) {
            Ok(dev) => dev,
            Err(error) => {
                writeln!(out, "  {backend}: not available: {error}")?;
                continue;
            }
        };
        let info = dev.info();
        let caps = dev.capabilities();
        let yes = |b: bool| if b { "yes" } else { "no" };
        writeln!(out, "  {backend}: {}", info.name)?;
        if let Some(capacity) = info.memory_capacity {
            writeln!(
                out,
                "    memory capacity:    {} ({capacity} bytes)",
                show(capacity)
            )?;
        }
        writeln!(out, "    pinned host memory: {}", yes(caps.pinned_host))?;
        writeln!(out, "    async transfers:    {}", yes(caps.async_transfers))?;
        writeln!(
            out,
            "    ordered transfers:  {}",
            yes(caps.ordered_transfers)
        )?;
        writeln!(out, "    direct storage:     {}", yes(caps.direct_storage))?;
        writeln!(out, "    max allocation:     {} bytes", caps.max_allocation)?;
        writeln!(out, "    host alignment:     {} bytes", caps.host_alignment)?;
    }
    let limit = MemlockLimit::current();
    let lockable = limit
        .lockable()
        .map_or("unlimited".to_string(), |b| format!("{b} bytes"));
    writeln!(
        out,
        "page-locking: {limit}; this process may lock: {lockable}"
    )?;
    match tensorswap::open_best() {
        Ok(selection) => writeln!(out, "default device: {selection}")?,
        Err(error) => writeln!(out, "default device: none: {error}")?,
    }
    Ok(())
}
