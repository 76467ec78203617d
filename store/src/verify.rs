//! [`PersistentStore::verify`]: every entry of the index decoded and
//! placed, every byte of every value read back against its CRCs.

use std::collections::VecDeque;

use tensorswap_core::{HostBuffer, IoEngine};

use crate::error::printable_key;
use crate::get::GetTicket;
use crate::space::Extent;
use crate::{PersistentStore, StoreError};

/// What [`PersistentStore::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Entries checked.
    pub keys: u64,
    /// Value bytes read and checked.
    pub bytes: u64,
    /// What is wrong, by key; empty when the store is sound.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One damaged entry or value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key.
    pub key: Vec<u8>,
    /// What is wrong with it.
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", printable_key(&self.key), self.what)
    }
}

/// Reads in flight at once.
const DEPTH: usize = 8;

impl<E: IoEngine + 'static> PersistentStore<E> {
    /// Checks the whole store: that every index entry decodes (its own
    /// CRC), lies inside the capacity and the data file and shares no block
    /// with another, and that every value reads back matching the CRC32C of
    /// each of its 4 KiB blocks. Problems are listed, not returned as an
    /// error; an error means the check itself could not run.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let capacity = self.stats().capacity;
        let file_len = self.shared.file.len()?;
        let mut placed: Vec<(Extent, Vec<u8>)> = Vec::new();
        let mut keys = Vec::new();
        self.shared.index.scan_raw(b"", |key, record| {
            report.keys += 1;
            match record {
                Err(reason) => report.problems.push(Problem {
                    key: key.to_vec(),
                    what: format!("its index entry is damaged: {reason}"),
                }),
                Ok(record) => {
                    let end = record.head.extents.iter().map(Extent::end).max().unwrap_or(0);
                    if end > capacity.max(file_len) {
                        report.problems.push(Problem {
                            key: key.to_vec(),
                            what: format!("its value ends at byte {end}, past the data file's {file_len} bytes"),
                        });
                    }
                    placed.extend(record.head.extents.iter().map(|&e| (e, key.to_vec())));
                    keys.push(key.to_vec());
                }
            }
            true
        })?;
        placed.sort_unstable_by_key(|(e, _)| *e);
        for pair in placed.windows(2) {
            let ((a, key_a), (b, key_b)) = (&pair[0], &pair[1]);
            if a.end() > b.offset {
                report.problems.push(Problem {
                    key: key_b.clone(),
                    what: format!(
                        "its bytes {}..{} of the data file are also {}'s",
                        b.offset,
                        a.end().min(b.end()),
                        printable_key(key_a)
                    ),
                });
            }
        }
        let mut reading: VecDeque<(Vec<u8>, GetTicket<HostBuffer>)> = VecDeque::new();
        let finish =
            |report: &mut VerifyReport, key: Vec<u8>, ticket: GetTicket<HostBuffer>| match ticket
                .wait()
            {
                Ok(done) => report.bytes += done.len as u64,
                Err(failed) => report.problems.push(Problem {
                    key,
                    what: failed.error.to_string(),
                }),
            };
        for key in keys {
            match self.get_owned(&key) {
                Ok(ticket) => reading.push_back((key, ticket)),
                // Evicted or removed since the scan.
                Err(StoreError::NotFound { .. }) => {}
                Err(err) => report.problems.push(Problem {
                    key,
                    what: err.to_string(),
                }),
            }
            if reading.len() >= DEPTH {
                let (key, ticket) = reading.pop_front().expect("not empty");
                finish(&mut report, key, ticket);
            }
        }
        for (key, ticket) in reading {
            finish(&mut report, key, ticket);
        }
        Ok(report)
    }
}
