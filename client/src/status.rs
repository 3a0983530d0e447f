//! What a client home trusts and knows, for `cpantuf status`: the trusted
//! root (its version and every top-level role's keys and threshold), each
//! top-level role's version and expiry, when each mirror last answered, and
//! the size of the verified cache. No network request is made.
//!
//! The role versions come from the stored metadata verified again now
//! ([`Session::with_stored`]). When that fails (metadata expired since the
//! last refresh, or a store edited by hand) the report says so in
//! `verified: false` and `problem`, and shows the versions and expiries as
//! stored: read for display only, never used for a decision.

use crate::mirror_log::{MirrorLog, MirrorRecord};
use crate::report::one_line;
use crate::session::Session;
use crate::store::MetadataStore;
use chrono::{DateTime, SecondsFormat, Utc};
use cpantuf_core::metadata::Root;
use cpantuf_core::trusted::TrustedSet;
use serde::Serialize;
use std::path::Path;

/// The report (its JSON field names are a documented interface).
#[derive(Debug, Serialize)]
pub struct Status {
    /// The client home.
    pub home: String,
    /// Whether the stored metadata verifies now (signatures, versions and
    /// expiry, exactly as a refresh checks them).
    pub verified: bool,
    /// Why it does not, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The trusted root.
    pub root: RootStatus,
    /// timestamp, snapshot and targets.
    pub roles: Vec<RoleStatus>,
    /// Metadata files in the store, delegated roles included.
    pub stored_metadata_files: usize,
    /// The configured mirrors, in the order they are tried.
    pub mirrors: Vec<MirrorStatus>,
    /// The verified cache.
    pub cache: CacheStatus,
}

/// The trusted root.
#[derive(Debug, Serialize)]
pub struct RootStatus {
    /// Its version.
    pub version: u64,
    /// Its expiry (RFC 3339).
    pub expires: String,
    /// Keys and threshold of each top-level role.
    pub roles: Vec<RoleKeys>,
}

/// Who may sign a top-level role.
#[derive(Debug, Serialize)]
pub struct RoleKeys {
    /// The role.
    pub role: String,
    /// Signatures needed.
    pub threshold: u64,
    /// The keys that may sign it.
    pub keys: Vec<KeyInfo>,
}

/// One key, by its TUF key id (the fingerprint operators publish).
#[derive(Debug, Serialize)]
pub struct KeyInfo {
    /// The key id.
    pub keyid: String,
    /// Its signature scheme.
    pub scheme: String,
}

/// One top-level role's stored metadata.
#[derive(Debug, Serialize)]
pub struct RoleStatus {
    /// The role.
    pub role: String,
    /// Its version (absent when never fetched).
    pub version: Option<u64>,
    /// Its expiry (RFC 3339).
    pub expires: Option<String>,
    /// Seconds until it expires (negative once expired).
    pub expires_in_seconds: Option<i64>,
}

/// One mirror and what is known of it.
#[derive(Debug, Serialize)]
pub struct MirrorStatus {
    /// Its URL.
    pub url: String,
    /// When it last answered or failed.
    #[serde(flatten)]
    pub record: MirrorRecord,
}

/// The verified cache.
#[derive(Debug, Default, Serialize)]
pub struct CacheStatus {
    /// Files in it.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// Why a status cannot be given at all.
#[derive(Debug, thiserror::Error)]
#[error("the trusted root in {0} cannot be read: {1}")]
pub struct BadRoot(String, String);

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The status of the home `session` has open.
pub fn gather(session: &mut Session) -> Result<Status, crate::session::SessionError> {
    let now = Utc::now();
    let home = session.home().to_owned();
    let store = MetadataStore::new(session.metadata_dir());
    let verified = session.with_stored(|t| top_roles_verified(t, now));
    let (roles, problem) = match verified {
        Ok(roles) => (roles, None),
        Err(e) => (top_roles_as_stored(&store, now), Some(one_line(&e))),
    };
    let root = root_status(&store).map_err(|e| crate::session::SessionError::Io {
        what: e.to_string(),
        source: std::io::ErrorKind::InvalidData.into(),
    })?;
    let log = MirrorLog::read(&home);
    let mirrors = session
        .config()
        .mirrors
        .iter()
        .map(|url| MirrorStatus {
            url: url.clone(),
            record: log.mirrors.get(url).cloned().unwrap_or_default(),
        })
        .collect();
    Ok(Status {
        home: home.display().to_string(),
        verified: problem.is_none(),
        problem,
        root,
        roles,
        stored_metadata_files: count_json(store.dir()),
        mirrors,
        cache: cache_size(&home.join("cache")),
    })
}

fn role_status(role: &str, meta: Option<(u64, DateTime<Utc>)>, now: DateTime<Utc>) -> RoleStatus {
    RoleStatus {
        role: role.into(),
        version: meta.map(|m| m.0),
        expires: meta.map(|m| rfc3339(m.1)),
        expires_in_seconds: meta.map(|m| (m.1 - now).num_seconds()),
    }
}

fn top_roles_verified(t: &TrustedSet, now: DateTime<Utc>) -> Vec<RoleStatus> {
    let ts = t.timestamp().map(|r| (r.version.get(), r.expires));
    let snap = t.snapshot().map(|r| (r.version.get(), r.expires));
    let targets = t.targets("targets").map(|r| (r.version.get(), r.expires));
    vec![
        role_status("timestamp", ts, now),
        role_status("snapshot", snap, now),
        role_status("targets", targets, now),
    ]
}

/// Version and expiry as the stored file says, for display only.
fn top_roles_as_stored(store: &MetadataStore, now: DateTime<Utc>) -> Vec<RoleStatus> {
    ["timestamp", "snapshot", "targets"]
        .iter()
        .map(|role| {
            let meta = store.load(role).and_then(|b| {
                let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
                let signed = v.get("signed")?;
                let version = signed.get("version")?.as_u64()?;
                let expires = signed.get("expires")?.as_str()?;
                let expires = DateTime::parse_from_rfc3339(expires).ok()?;
                Some((version, expires.with_timezone(&Utc)))
            });
            role_status(role, meta, now)
        })
        .collect()
}

fn root_status(store: &MetadataStore) -> Result<RootStatus, BadRoot> {
    let bad = |why: String| BadRoot(store.dir().display().to_string(), why);
    let bytes = store
        .load("root")
        .ok_or_else(|| bad("no root.json".into()))?;
    let trusted = TrustedSet::new(&bytes, Utc::now()).map_err(|e| bad(one_line(&e)))?;
    let root: &Root = trusted.root();
    let roles = root
        .roles
        .iter()
        .map(|(role, keys)| RoleKeys {
            role: role.clone(),
            threshold: keys.threshold.get(),
            keys: keys
                .keyids
                .iter()
                .map(|id| KeyInfo {
                    keyid: id.to_string(),
                    scheme: root
                        .keys
                        .get(id)
                        .map_or("unknown".into(), |k| k.scheme.clone()),
                })
                .collect(),
        })
        .collect();
    Ok(RootStatus {
        version: root.version.get(),
        expires: rfc3339(root.expires),
        roles,
    })
}

fn count_json(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count()
    })
}

fn cache_size(dir: &Path) -> CacheStatus {
    let mut total = CacheStatus::default();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            match e.metadata() {
                Ok(m) if m.is_dir() => todo.push(e.path()),
                Ok(m) if m.is_file() => {
                    total.files += 1;
                    total.bytes += m.len();
                }
                _ => {}
            }
        }
    }
    total
}
