//! tensorswap's persistent store: named values in a folder that outlive
//! the process — KV-cache blocks keyed by content hashes, checkpoints of
//! swapped state, weights loaded again and again — written at the engine's
//! speed.
//!
//! [`PersistentStore`] keeps values in one data file of whole 4 KiB blocks,
//! written by tensorswap-core's engines (io_uring or threads, `O_DIRECT`
//! where the file system allows), with a CRC32C per block, and an index in
//! [redb](https://docs.rs/redb) (key -> where, length, CRCs, metadata,
//! recency), committed only after the value is written: keys and values
//! apart, as in WiscKey. Every put, get, remove and flush has a ticket,
//! waited or awaited like every other request of tensorswap.
//!
//! # Guarantees
//!
//! - A put is invisible until whole; a put over a key replaces its value
//!   atomically; a removed key is gone for every later reader.
//! - After a crash at any instant (the process killed, or power lost), the
//!   store reopens and serves, for each key, nothing or exactly one value
//!   that was put for it; every put acknowledged as durable
//!   ([`Durability`]) is there.
//! - Every byte served is checked against its block's CRC32C; a mismatch is
//!   [`StoreError::Checksum`], naming the key and the block.
//! - Bounded: a capacity, and LRU eviction of unpinned values or
//!   [`StoreError::Full`]; freed space is reused once its removal is
//!   durable. Space no entry points to is reclaimed when the store opens.
//! - One writer per folder: a second open is [`StoreError::Locked`],
//!   naming the holder.
//!
//! ```
//! use tensorswap_store::{Durability, PersistentStore, PutOptions, StoreOptions};
//! let folder = tempfile::tempdir()?;
//! let options = StoreOptions::new(256 << 20).durability(Durability::Flush);
//! let store = PersistentStore::open(folder.path(), options)?;
//!
//! // KV blocks keyed by hash, put with a queue of tickets, made durable at once.
//! let tickets: Vec<_> = (0..32u64)
//!     .map(|i| store.put(&i.to_le_bytes(), vec![i as u8; 64 << 10], &PutOptions::new()))
//!     .collect::<Result<_, _>>()?;
//! for ticket in tickets {
//!     ticket.wait()?;
//! }
//! store.flush().wait()?;
//! let hashes: Vec<[u8; 8]> = (30..34u64).map(|i| i.to_le_bytes()).collect();
//! assert_eq!(store.count_present(&hashes), 2);
//! assert!(store.remove(&0u64.to_le_bytes()).wait()?);
//! assert_eq!(store.stats().keys, 31);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout of a folder
//!
//! `tensorswap-store` (format marker and version), `lock` (the writer's
//! `flock`, and its pid), `index.redb`, `values.dat`.
//!
//! # Modules: what each may use
//!
//! From the bottom up; each uses only those above it in this list, and
//! tensorswap-core's public API:
//! 1. `error`, `options`, `space`, `crc`, `signal`, `stats`: plain data and
//!    helpers (std, thiserror, crc32c).
//! 2. `record` (an entry's bytes), `window` (buffers shared by requests; the
//!    crate's only `unsafe`), `inflight`, `lock`, `marker`.
//! 3. `index` (redb), `state` (the in-memory table and space).
//! 4. `shared`, `committer` (the one writer of the index), `commit_ticket`.
//! 5. `store`, `put`, `get`, `verify`: the public handle.

mod commit_ticket;
mod committer;
mod crc;
mod error;
mod get;
mod index;
mod inflight;
mod lock;
mod marker;
mod options;
#[cfg(feature = "fault-injection")]
pub mod power_cut;
mod put;
mod record;
mod shared;
mod signal;
mod space;
mod state;
mod stats;
mod store;
mod verify;
mod window;

pub use commit_ticket::CommitTicket;
pub use error::{printable_key, StoreError};
pub use get::{GetDone, GetTicket};
pub use options::{Durability, PutOptions, StoreOptions};
pub use put::PutTicket;
pub use stats::{Entry, Stats};
pub use store::{PersistentStore, MAX_KEY_LEN, MAX_META_LEN};
pub use verify::{Problem, VerifyReport};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
