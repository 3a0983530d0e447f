//! What the mirror serves, as a TUF client will see it: the version and expiry of the served
//! `timestamp.json` and of the snapshot it names, and when the sync last succeeded.
//!
//! The mirror verifies nothing (clients do, and would refuse a bad file whatever the mirror
//! said). This module only *reads* the served files' own claims, to tell an administrator that
//! clients are about to refuse the mirror: "served timestamp version 42 expires in 3600 s" is a
//! statement about bytes on disk, never about their authenticity. "Signed" here means "carries
//! at least one signature", not that any signature is valid.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use cpantuf_core::metadata::{Envelope, RoleMeta, Snapshot, Timestamp};
use serde::Deserialize;

/// Where the served metadata lives under the root.
pub const TUF_DIR: &str = "tuf";
/// The status file a sync writes after each success, relative to its `--dest`.
pub const SYNC_STATUS: &str = crate::sync::STATUS_FILE;

/// One served metadata file's own claims (unverified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedMeta {
    pub version: u64,
    pub expires: DateTime<Utc>,
}

/// The served metadata as last read.
#[derive(Debug, Clone)]
pub struct Status {
    /// The served timestamp, or why there is none a client could use.
    pub timestamp: Result<ServedMeta, String>,
    /// The snapshot that timestamp names, or why it cannot be read.
    pub snapshot: Result<ServedMeta, String>,
    /// When the sync last succeeded, if a status file was found.
    pub last_sync: Option<DateTime<Utc>>,
}

impl Status {
    /// Why clients would refuse what is served at `now`, or None if they would not on
    /// account of the timestamp and snapshot expiry or signatures.
    pub fn problem(&self, now: DateTime<Utc>) -> Option<String> {
        for (role, meta) in [("timestamp", &self.timestamp), ("snapshot", &self.snapshot)] {
            match meta {
                Err(why) => return Some(format!("served {role}: {why}")),
                Ok(m) if m.expires <= now => {
                    return Some(format!(
                        "served {role} version {} expired at {}",
                        m.version,
                        m.expires.to_rfc3339()
                    ))
                }
                Ok(_) => {}
            }
        }
        None
    }
}

/// Reads the served metadata again when `timestamp.json` changed (or the root moved).
pub struct Watch {
    root: PathBuf,
    sync_status: Option<PathBuf>,
    seen: RwLock<(Option<Stamp>, std::sync::Arc<Status>)>,
}

/// Identity of one version of a file.
type Stamp = (u64, u64, Option<SystemTime>, u64);

impl Watch {
    /// Reads the metadata served under `root` (through its symlink, if it is one).
    pub fn new(root: &Path, sync_status: Option<PathBuf>) -> Watch {
        let sync_status = sync_status.or_else(|| default_sync_status(root));
        let status = read(root, sync_status.as_deref());
        Watch {
            root: root.to_owned(),
            seen: RwLock::new((stamp(root), std::sync::Arc::new(status))),
            sync_status,
        }
    }

    /// The status as last read.
    pub fn status(&self) -> std::sync::Arc<Status> {
        self.seen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// Reads again if the served timestamp changed, or always if `force`; the sync status
    /// file is small and read every time.
    pub fn refresh(&self, force: bool) {
        let now = stamp(&self.root);
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        if force || now != seen.0 || now.is_none() {
            seen.1 = std::sync::Arc::new(read(&self.root, self.sync_status.as_deref()));
        } else {
            let mut status = (*seen.1).clone();
            status.last_sync = self.sync_status.as_deref().and_then(last_sync);
            seen.1 = std::sync::Arc::new(status);
        }
        seen.0 = now;
    }
}

/// `DEST/.sync/status.json` when the root is a sync's `DEST/current`.
fn default_sync_status(root: &Path) -> Option<PathBuf> {
    if root.file_name()? != "current" {
        return None;
    }
    Some(root.parent()?.join(SYNC_STATUS))
}

fn stamp(root: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let m = fs::metadata(root.join(TUF_DIR).join("timestamp.json")).ok()?;
    Some((m.dev(), m.ino(), m.modified().ok(), m.len()))
}

/// Reads the served timestamp, the snapshot it names, and the sync status.
pub fn read(root: &Path, sync_status: Option<&Path>) -> Status {
    let tuf = root.join(TUF_DIR);
    let timestamp = parse::<Timestamp>(&tuf.join("timestamp.json"));
    let snapshot = match &timestamp {
        Ok((_, ts)) => {
            let version = ts.unverified().snapshot_meta().version.get();
            let versioned = tuf.join(format!("{version}.snapshot.json"));
            let path = if versioned.exists() {
                versioned
            } else {
                tuf.join("snapshot.json")
            };
            parse::<Snapshot>(&path).map(|(m, _)| m)
        }
        Err(_) => Err("not read: no usable served timestamp".to_owned()),
    };
    Status {
        timestamp: timestamp.map(|(m, _)| m),
        snapshot,
        last_sync: sync_status.and_then(last_sync),
    }
}

/// Version and expiry of the metadata file at `path`, with the parsed document.
fn parse<T>(path: &Path) -> Result<(ServedMeta, Envelope<T>), String>
where
    T: RoleMeta + for<'de> Deserialize<'de>,
{
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("tuf/{name} is missing"),
        _ => format!("tuf/{name}: {e}"),
    })?;
    let env = Envelope::<T>::from_bytes(&bytes).map_err(|e| format!("tuf/{name}: {e}"))?;
    if env.signatures().is_empty() {
        return Err(format!("tuf/{name} is unsigned (no signatures)"));
    }
    let meta = ServedMeta {
        version: env.unverified().version().get(),
        expires: env.unverified().expires(),
    };
    Ok((meta, env))
}

/// What a sync's status file says (see `sync::status`).
#[derive(Deserialize)]
struct SyncStatus {
    /// RFC 3339.
    last_success: String,
}

fn last_sync(path: &Path) -> Option<DateTime<Utc>> {
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice::<SyncStatus>(&bytes)
        .ok()
        .and_then(|s| DateTime::parse_from_rfc3339(&s.last_success).ok())
        .map(|t| t.with_timezone(&Utc))
}
