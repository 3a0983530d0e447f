//! The returning sync whose upstream did not change: decided from the verified timestamp alone,
//! in O(1) work, against a small record the served state keeps about itself.
//!
//! A state's record (`.sync-unchanged.json`, hidden, never served) holds the root and
//! timestamp versions it serves, the snapshot that timestamp names, and the earliest expiry of
//! the snapshot and of every targets role it serves. It is written only when no delegated role
//! was refused: a refused role may load next time without any upstream change, so such a state
//! always takes the full sync. When the timestamp just verified (signature, rollback and
//! expiry, against the trusted root, by the core) names that same snapshot under the same root
//! and nothing the state serves has expired since, a full sync would serve the same bytes:
//!
//! * same timestamp version: the state is up to date, nothing is read or written;
//! * a newer timestamp (the upstream re-signed it, e.g. before it expired): the served
//!   `tuf/timestamp.json` is replaced in place by rename(2), then the manifest and the record.
//!   A client sees the old or the new timestamp, both naming the snapshot the state serves; a
//!   crash before the record is renamed is repaired by the next run, which finds it behind.

use std::collections::BTreeMap;
use std::fs;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use cpantuf_client::store::{write_atomic, MetadataStore};
use cpantuf_core::metadata::{Envelope, MetaFile, Timestamp};
use cpantuf_core::trusted::TrustedSet;
use cpantuf_core::workflow::AllTargets;
use serde::{Deserialize, Serialize};

use super::layout::{Layout, MANIFEST};

/// The record's file name in each state.
pub const RECORD: &str = ".sync-unchanged.json";

/// What a state records for the shortcut.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    root_version: u64,
    timestamp_version: u64,
    /// The snapshot the state's timestamp names.
    snapshot: MetaFile,
    /// The earliest expiry of the snapshot and of every targets role the state serves, in
    /// seconds since the Unix epoch.
    expires: i64,
    /// Targets the state serves (for the report).
    pub targets: usize,
    /// Every targets role the state serves: its version, the role whose keys verified it and
    /// its expiry, for the sync that applies a change in place (see `in_place`). Empty in a
    /// record written before it was kept, which makes that sync build a new state instead.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleRecord>,
}

/// What a record keeps about one targets role of the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub version: u64,
    /// The role whose keys verified it (`root` for the top-level targets role).
    pub delegator: String,
    /// Seconds since the Unix epoch.
    pub expires: i64,
}

impl RoleRecord {
    /// The record of `role`, loaded in `trusted`.
    pub fn of(trusted: &TrustedSet, role: &str) -> Option<RoleRecord> {
        let md = trusted.targets(role)?;
        Some(RoleRecord {
            version: md.version.get(),
            delegator: trusted.delegator_of(role)?.to_owned(),
            expires: md.expires.timestamp(),
        })
    }
}

impl Record {
    /// The record of a state built from `trusted` with `targets` targets, or none when a
    /// delegated role was refused.
    pub fn of(trusted: &TrustedSet, all: &AllTargets, targets: usize) -> Option<Record> {
        if !all.refused.is_empty() {
            return None;
        }
        let roles = all
            .loaded
            .iter()
            .map(|r| Some((r.clone(), RoleRecord::of(trusted, r)?)))
            .collect::<Option<BTreeMap<_, _>>>()?;
        Record::from_roles(trusted, roles, targets)
    }

    /// The record of a state that serves `roles` (as loaded in `trusted`) and `targets`
    /// targets, under the snapshot and timestamp of `trusted`.
    pub fn from_roles(
        trusted: &TrustedSet,
        roles: BTreeMap<String, RoleRecord>,
        targets: usize,
    ) -> Option<Record> {
        let snapshot = trusted.snapshot()?;
        let earliest_role = roles.values().map(|r| r.expires).min();
        let expires = earliest_role.map_or(snapshot.expires.timestamp(), |e| {
            e.min(snapshot.expires.timestamp())
        });
        let timestamp = trusted.timestamp()?;
        Some(Record {
            root_version: trusted.root().version.get(),
            timestamp_version: timestamp.version.get(),
            snapshot: timestamp.snapshot_meta().clone(),
            expires,
            targets,
            roles,
        })
    }

    pub fn root_version(&self) -> u64 {
        self.root_version
    }

    /// The snapshot the state's timestamp names.
    pub fn snapshot(&self) -> &MetaFile {
        &self.snapshot
    }

    /// The record of a published state, if it has a readable one.
    pub fn load(layout: &Layout, state: &str) -> Option<Record> {
        let bytes = fs::read(layout.dir().join(state).join(RECORD)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the record into the state (or staging) directory `dir`.
    pub fn write(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        write_atomic(&dir.join(RECORD), &serde_json::to_vec(self)?)?;
        Ok(())
    }
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
pub fn verdict(r: &Record, trusted: &TrustedSet, now: DateTime<Utc>) -> Verdict {
    let Some(ts) = trusted.timestamp() else {
        return Verdict::Changed;
    };
    let same = r.root_version == trusted.root().version.get()
        && *ts.snapshot_meta() == r.snapshot
        && now.timestamp() < r.expires;
    match ts.version.get() {
        _ if !same => Verdict::Changed,
        v if v == r.timestamp_version => Verdict::UpToDate,
        v if v > r.timestamp_version => Verdict::NewTimestamp,
        _ => Verdict::Changed,
    }
}

/// Serves the store's timestamp (verified when stored; checked to be the trusted version) in
/// `state`, then records its version in the state's manifest and record.
pub fn serve_new_timestamp(
    layout: &Layout,
    state: &str,
    store: &MetadataStore,
    record: &mut Record,
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
    let mut manifest = layout
        .manifest(state)
        .with_context(|| format!("reading {} of {state} (local disk)", MANIFEST))?;
    manifest.timestamp_version = version;
    super::layout::write_manifest(&dir.join(MANIFEST), &manifest)?;
    record.timestamp_version = version;
    record.write(&dir)
}
