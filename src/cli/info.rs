//! `tensorswap info`: what this build and this machine can do.

use tensorswap::sys::memlock::MemlockLimit;
use tensorswap::{Device, COMPILED_BACKENDS};

use super::size::show;

pub(crate) fn run() -> anyhow::Result<()> {
    println!("tensorswap {}", env!("CARGO_PKG_VERSION"));
    println!("backends compiled in: {}", COMPILED_BACKENDS.join(", "));
    println!("devices:");
    for &backend in COMPILED_BACKENDS {
        match tensorswap::open(backend) {
            Ok(dev) => {
                let info = dev.info();
                let caps = dev.capabilities();
                let yes = |b: bool| if b { "yes" } else { "no" };
                println!("  {backend}: {}", info.name);
                if let Some(capacity) = info.memory_capacity {
                    println!(
                        "    memory capacity:   {} ({capacity} bytes)",
                        show(capacity)
                    );
                }
                println!("    pinned host memory: {}", yes(caps.pinned_host));
                println!("    async transfers:   {}", yes(caps.async_transfers));
                println!("    ordered transfers: {}", yes(caps.ordered_transfers));
                println!("    direct storage:    {}", yes(caps.direct_storage));
                println!("    max allocation:    {} bytes", caps.max_allocation);
                println!("    host alignment:    {} bytes", caps.host_alignment);
            }
            Err(error) => println!("  {backend}: not available: {error}"),
        }
    }
    let limit = MemlockLimit::current();
    let lockable = limit
        .lockable()
        .map_or("unlimited".to_string(), |b| format!("{b} bytes"));
    println!("page-locking: {limit}; this process may lock: {lockable}");
    match tensorswap::open_best() {
        Ok(selection) => println!("default device: {selection}"),
        Err(error) => println!("default device: none: {error}"),
    }
    Ok(())
}
