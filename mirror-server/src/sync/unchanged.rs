//! The returning sync whose upstream did not change: decided from the verified timestamp alone,
//! in O(1) work, against what the served state recorded about itself when it was built.
//!
//! A state records (in its manifest) the snapshot the timestamp named, and the earliest expiry
//! of the snapshot and of every targets role it serves, but only when no delegated role was
//! refused (a refused role may load next time without any upstream change, so such a state
//! always takes the full sync). When the timestamp just verified (signature, rollback and
//! expiry, against the trusted root, by the core) names that same snapshot and nothing the
//! state serves has expired since, a full sync would serve the same bytes again:
//!
//! * same timestamp version: the state is up to date, nothing is written;
//! * a newer timestamp (the upstream re-signed it, e.g. before it expired): the served
//!   `tuf/timestamp.json` is replaced in place by rename(2), then the manifest. A client sees
//!   the old or the new timestamp, both naming the snapshot the state serves; a crash between
//!   the two renames is repaired by the next run, which finds the manifest behind.

use std::fs;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use cpantuf_client::store::{write_atomic, MetadataStore};
use cpantuf_core::metadata::{Envelope, MetaFile, Timestamp};
use cpantuf_core::trusted::TrustedSet;
use cpantuf_core::workflow::AllTargets;
use serde::{Deserialize, Serialize};

use super::layout::{Layout, MANIFEST};
use super::Manifest;

/// What a state records for the shortcut.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Basis {
    /// The snapshot the state's timestamp names.
    pub snapshot: MetaFile,
    /// The earliest expiry of the snapshot and of every targets role the state serves, in
    /// seconds since the Unix epoch.
    pub expires: i64,
}

/// The basis of a state built from `trusted`, or none when a delegated role was refused.
pub fn basis(trusted: &TrustedSet, all: &AllTargets) -> Option<Basis> {
    if !all.refused.is_empty() {
        return None;
    }
    let snapshot = trusted.snapshot()?;
    let roles = all.loaded.iter().filter_map(|r| trusted.targets(r));
    let expires = roles
        .map(|t| t.expires)
        .chain([snapshot.expires])
        .min()?
        .timestamp();
    Some(Basis {
        snapshot: trusted.timestamp()?.snapshot_meta().clone(),
        expires,
    })
}

/// What the verified timestamp means for the served state.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The served state is what a full sync would build.
    UpToDate,
    /// As [`Verdict::UpToDate`], once the newer timestamp is served.
    NewTimestamp,
    /// Something changed (or may have): a full sync.
    Changed,
}

/// Compares the trusted root and timestamp with what the served state was built from.
pub fn verdict(m: &Manifest, trusted: &TrustedSet, now: DateTime<Utc>) -> Verdict {
    let (Some(basis), Some(ts)) = (&m.unchanged, trusted.timestamp()) else {
        return Verdict::Changed;
    };
    let same = m.root_version == trusted.root().version.get()
        && *ts.snapshot_meta() == basis.snapshot
        && now.timestamp() < basis.expires;
    match ts.version.get() {
        _ if !same => Verdict::Changed,
        v if v == m.timestamp_version => Verdict::UpToDate,
        v if v > m.timestamp_version => Verdict::NewTimestamp,
        _ => Verdict::Changed,
    }
}

/// Serves the store's timestamp (verified when stored; checked to be the trusted version) in
/// `state`, then records it in the state's manifest.
pub fn serve_new_timestamp(
    layout: &Layout,
    state: &str,
    store: &MetadataStore,
    mut manifest: Manifest,
    trusted: &TrustedSet,
) -> anyhow::Result<()> {
    let stored = store.path_of("timestamp");
    let bytes = fs::read(&stored).with_context(|| format!("reading {}", stored.display()))?;
    let version = Envelope::<Timestamp>::from_bytes(&bytes)?
        .unverified()
        .version
        .get();
    let trusted_version = trusted.timestamp().map(|t| t.version.get());
    anyhow::ensure!(
        Some(version) == trusted_version,
        "{} holds timestamp version {version}, not the one just verified (local disk)",
        stored.display()
    );
    let dir = layout.dir().join(state);
    write_atomic(&dir.join("tuf/timestamp.json"), &bytes)?;
    manifest.timestamp_version = version;
    write_atomic(&dir.join(MANIFEST), &serde_json::to_vec(&manifest)?)?;
    Ok(())
}
