//! Role files a run is about to verify, downloaded ahead of the core's delegation walk, several
//! at once.
//!
//! The core verifies roles one at a time, each after its delegator (spec 5.6, 5.7), so left
//! alone a sync makes its metadata requests one after another: 7,500 on a first copy of
//! CPAN, a thousand for a large index update. But once the snapshot is verified, the name and
//! version of every role file the walk will want are known. This module fetches those files
//! with `--jobs` connections into memory, and [`Prefetched::take`] hands each one to the
//! core's next request for it. Nothing here is trusted: the core checks every byte (length,
//! hashes and version against the snapshot, signatures against the delegator) as it would
//! after a request; a file that failed to arrive is simply requested again, and that request
//! reports the error.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use cpantuf_client::fetcher::Fetcher;
use cpantuf_client::store::MetadataStore;
use cpantuf_client::urls::metadata_url;
use cpantuf_core::metadata::Snapshot;
use cpantuf_core::workflow::Limits;

use super::unchanged::Record;

/// Most bytes held ahead at once; past this, roles are left to be fetched one by one.
const BUDGET: u64 = 256 << 20;

/// One role file to fetch: (role, version, the most bytes it may have).
pub type Wanted = (String, u64, u64);

/// Role files fetched ahead, by (role, version).
#[derive(Debug, Default)]
pub struct Prefetched {
    files: HashMap<(String, u64), Vec<u8>>,
    /// The roles whose stored copy is known not to be the one wanted.
    stale: HashSet<String>,
    /// Requests made.
    pub requests: usize,
}

impl Prefetched {
    /// The bytes fetched ahead for `role` at `version`, once.
    pub fn take(&mut self, role: &str, version: u64) -> Option<Vec<u8>> {
        self.files.remove(&(role.to_owned(), version))
    }

    /// Whether the stored copy of `role` is known not to be the version wanted (so reading
    /// and verifying it would be wasted).
    pub fn is_stale(&self, role: &str) -> bool {
        self.stale.contains(role)
    }
}

/// The delegated role files of `snapshot` the run will need and does not have: those whose
/// version differs from what the served state's `record` holds, or, without a record, those
/// the store has no copy of (all of them on a first sync).
pub fn wanted(
    snapshot: &Snapshot,
    record: Option<&Record>,
    store: &MetadataStore,
    limits: &Limits,
) -> Vec<Wanted> {
    let mut out = Vec::new();
    for (name, meta) in &snapshot.meta {
        let Some(role) = name.strip_suffix(".json") else {
            continue;
        };
        if role == "targets" {
            continue; // verified with the snapshot, before this runs
        }
        let version = meta.version.get();
        let have = match record {
            Some(r) => r.roles.get(role).is_some_and(|r| r.version == version),
            None => store.path_of(role).exists(),
        };
        if !have {
            let max = meta.length.unwrap_or(limits.targets_max_length);
            out.push((role.to_owned(), version, max));
        }
    }
    out
}

/// Fetches `wanted` from `base` (the upstream's metadata URL) with `jobs` connections; a file
/// that fails is left out (its request is made again, one by one, and reports the error).
pub fn fetch_all(fetcher: &Fetcher, base: &str, wanted: &[Wanted], jobs: usize) -> Prefetched {
    let next = AtomicUsize::new(0);
    let held = AtomicU64::new(0);
    let requests = AtomicUsize::new(0);
    let files = Mutex::new(HashMap::with_capacity(wanted.len()));
    let worker = || {
        while let Some((role, version, max)) = wanted.get(next.fetch_add(1, Ordering::Relaxed)) {
            if held.load(Ordering::Relaxed) >= BUDGET {
                break;
            }
            requests.fetch_add(1, Ordering::Relaxed);
            let url = metadata_url(base, role, Some(*version));
            match fetcher.fetch_bytes(&url, *max) {
                Ok(bytes) => {
                    held.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    let mut files = files.lock().unwrap_or_else(|p| p.into_inner());
                    files.insert((role.clone(), *version), bytes);
                }
                Err(e) => tracing::debug!(%url, error = %e, "fetching ahead failed"),
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, wanted.len().max(1)) {
            scope.spawn(worker);
        }
    });
    Prefetched {
        files: files.into_inner().unwrap_or_else(|p| p.into_inner()),
        stale: wanted.iter().map(|(role, _, _)| role.clone()).collect(),
        requests: requests.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_prefetched_file_is_handed_out_once_and_only_for_its_version() {
        let mut p = Prefetched::default();
        p.files.insert(("author-A".into(), 3), b"three".to_vec());
        assert_eq!(p.take("author-A", 2), None);
        assert_eq!(p.take("author-A", 3).as_deref(), Some(&b"three"[..]));
        assert_eq!(p.take("author-A", 3), None);
    }
}
