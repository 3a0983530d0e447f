//! A sync whose upstream changed a few roles (an upload, a deletion, a re-signed role) applied
//! to the served state in place, in O(changes), instead of building a new state.
//!
//! TUF's consistent snapshots make an ordered update in place safe (spec 5.7.3, and the
//! repository-side ordering of section 6): every file a new version adds has a new name, and
//! only the timestamp (and the plain names of changed files) are replaced. Here:
//!
//! 1. **Plan** from the verified timestamp and snapshot alone: the roles whose snapshot entry
//!    changed since the served state's record (`unchanged::Record`, which keeps each role's
//!    version, delegator and expiry). Each is verified through the chain of delegators the
//!    record names ([`workflow::load_through`]); its targets are compared with the version the
//!    state serves, and every path whose entry changed is searched again from the top-level
//!    targets role ([`workflow::find_target_avoiding`]), so the role allowed to speak for it
//!    decides, as in a full sync. The plan declines, and a full sync runs, when anything it
//!    cannot settle alone happens: a new root, a role that is new or changed its delegations,
//!    a role that expired, was refused or blocks a search, an upstream without consistent
//!    snapshots, a state without a record of its roles.
//! 2. **Apply**, in the order that keeps every reader on a whole version: each new or changed
//!    target downloaded and verified under its hash-named twin (a new path also under its
//!    plain name, which nothing names yet); the new role versions and snapshot; one syncfs;
//!    `timestamp.json` by rename (from here a TUF client sees the new version); the plain
//!    names of changed files (`02packages.details.txt.gz` above all) replaced by rename, so a
//!    cpanm or CPAN.pm client never reads an index naming a file not there yet; deleted plain
//!    names removed; the manifest and record last.
//!
//! What the new version no longer names (twins of deleted or replaced files, superseded role
//! and snapshot versions) stays served for `--keep-deleted` for clients still on the old
//! snapshot, listed in `.sync-retained.json`, then is removed by a later run.
//!
//! A crash at any point leaves the old version (timestamp not yet replaced) or the new one
//! with some plain names still old, plus files that no served metadata names; the next run
//! plans from the same record, finds the verified files by hashing them, and finishes.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use cpantuf_client::store::{write_atomic, MetadataStore};
use cpantuf_client::urls::consistent_target_path;
use cpantuf_core::metadata::{Envelope, RoleMeta, Snapshot, TargetFile, Targets};
use cpantuf_core::trusted::TrustedSet;
use cpantuf_core::workflow::{self, encode_role_name, Limits, Search};
use serde::{Deserialize, Serialize};

use super::layout::{Layout, MANIFEST};
use super::unchanged::{Record, RoleRecord};
use super::{writable_path, Manifest, Source};

/// The served state a change is applied to.
pub struct Served<'a> {
    pub layout: &'a Layout,
    /// The state's directory name (`state-N`).
    pub state: &'a str,
    pub record: Record,
    pub manifest: Manifest,
}

impl Served<'_> {
    fn dir(&self) -> PathBuf {
        self.layout.dir().join(self.state)
    }

    /// A metadata file of the state, parsed (it was verified when the state got it).
    fn metadata<T: serde::de::DeserializeOwned + RoleMeta>(&self, name: &str) -> Option<T> {
        let bytes = fs::read(self.dir().join("tuf").join(name)).ok()?;
        Some(Envelope::<T>::from_bytes(&bytes).ok()?.into_unverified())
    }
}

/// What changes between the served state and the upstream's verified new version.
#[derive(Debug, Default)]
pub struct Delta {
    /// Changed roles, each verified: (role, version the state serves).
    roles: Vec<(String, u64)>,
    /// Paths whose served info changes: the new info, or `None` when no longer served.
    targets: BTreeMap<String, Option<TargetFile>>,
}

/// Why the change cannot be applied in place (a full sync follows).
pub type Declined = String;

/// Plans the change from the verified timestamp and snapshot in `trusted` (step 1 above).
pub fn plan(
    served: &Served<'_>,
    trusted: &mut TrustedSet,
    src: &mut Source<'_>,
    limits: &Limits,
) -> anyhow::Result<Result<Delta, Declined>> {
    let record = &served.record;
    if !trusted.root().consistent_snapshot {
        return Ok(Err("the upstream does not use consistent snapshots".into()));
    }
    if record.root_version() != trusted.root().version.get() {
        return Ok(Err("a new root version".into()));
    }
    if record.roles.is_empty() {
        return Ok(Err("the served state has no record of its roles".into()));
    }
    let old_name = format!("{}.snapshot.json", record.snapshot().version);
    let Some(old) = served.metadata::<Snapshot>(&old_name) else {
        return Ok(Err(format!("the served state has no {old_name}")));
    };
    let new = trusted
        .snapshot()
        .context("no snapshot after refresh")?
        .clone();
    let changed = match changed_roles(&old, &new, record) {
        Ok(c) => c,
        Err(why) => return Ok(Err(why)),
    };
    let mut delta = Delta::default();
    for (role, old_version) in changed {
        let paths = match role_changes(served, trusted, src, limits, &role, old_version) {
            Ok(p) => p,
            Err(why) => return Ok(Err(why)),
        };
        for path in paths {
            match settle(trusted, src, limits, &path)? {
                Ok(info) => {
                    delta.targets.insert(path, info);
                }
                Err(why) => return Ok(Err(why)),
            }
        }
        delta.roles.push((role, old_version));
    }
    let manifest = &served.manifest.targets;
    delta
        .targets
        .retain(|p, info| manifest.get(p) != info.as_ref());
    if let Some(p) = delta.targets.iter().find_map(|(p, i)| {
        let twin = i.as_ref().map(|i| consistent_target_path(p, i));
        (twin == Some(None)).then_some(p)
    }) {
        return Ok(Err(format!(
            "{p} is signed without a SHA-256 to name its twin"
        )));
    }
    Ok(Ok(delta))
}

/// The roles whose snapshot entry differs between `old` and `new`, with the version `old`
/// names; declined when a role is new or dropped, or an unchanged one has expired since.
fn changed_roles(
    old: &Snapshot,
    new: &Snapshot,
    record: &Record,
) -> Result<Vec<(String, u64)>, Declined> {
    if let Some(gone) = old.meta.keys().find(|k| !new.meta.contains_key(*k)) {
        return Err(format!("the snapshot no longer lists {gone}"));
    }
    let now = Utc::now().timestamp();
    let mut changed = Vec::new();
    for (name, meta) in &new.meta {
        let role = name.strip_suffix(".json").unwrap_or(name);
        let known = record.roles.get(role);
        match (old.meta.get(name), known) {
            (Some(before), Some(r)) if before == meta && r.expires <= now => {
                return Err(format!("role {role} has expired since the last sync"))
            }
            (Some(before), _) if before == meta => {}
            (Some(before), Some(_)) => changed.push((role.to_owned(), before.version.get())),
            _ => return Err(format!("role {role} is new to this mirror")),
        }
    }
    Ok(changed)
}

/// Verifies the new version of `role` through the delegators the record names, and returns
/// the paths whose entries differ from the version the state serves. Declined when the role
/// is refused or changed its delegations.
fn role_changes(
    served: &Served<'_>,
    trusted: &mut TrustedSet,
    src: &mut Source<'_>,
    limits: &Limits,
    role: &str,
    old_version: u64,
) -> Result<Vec<String>, Declined> {
    let chain = delegators(&served.record.roles, role)?;
    let chain: Vec<&str> = chain.iter().map(String::as_str).collect();
    workflow::load_through(trusted, src, limits, &chain, role)
        .map_err(|e| format!("role {role}: {e}"))?;
    let name = format!("{old_version}.{}.json", encode_role_name(role));
    let old: Targets = served
        .metadata(&name)
        .ok_or_else(|| format!("the served state has no {name}"))?;
    let new = trusted.targets(role).expect("loaded just now");
    if old.delegations != new.delegations {
        return Err(format!("role {role} changed its delegations"));
    }
    let mut paths: Vec<String> = new
        .targets
        .iter()
        .filter(|(p, info)| old.targets.get(*p) != Some(*info))
        .map(|(p, _)| p.clone())
        .collect();
    paths.extend(
        old.targets
            .keys()
            .filter(|p| !new.targets.contains_key(*p))
            .cloned(),
    );
    Ok(paths)
}

/// The roles that delegate down to `role`, from the top-level targets role, as recorded.
fn delegators(roles: &BTreeMap<String, RoleRecord>, role: &str) -> Result<Vec<String>, Declined> {
    let mut chain = Vec::new();
    let mut at = role;
    while at != "targets" {
        let r = roles
            .get(at)
            .ok_or_else(|| format!("no record of role {at}"))?;
        if chain.len() > 64 || r.delegator == "root" {
            return Err(format!("no delegation chain recorded for role {role}"));
        }
        chain.push(r.delegator.clone());
        at = &r.delegator;
    }
    chain.reverse();
    Ok(chain)
}

/// What the state serves for `path` now: the info of the role the delegation search (spec
/// 5.7) finds allowed to speak for it, or `None`.
fn settle(
    trusted: &mut TrustedSet,
    src: &mut Source<'_>,
    limits: &Limits,
    path: &str,
) -> anyhow::Result<Result<Option<TargetFile>, Declined>> {
    let none = HashSet::new();
    Ok(
        match workflow::find_target_avoiding(trusted, src, limits, path, &none)? {
            Search::Found(found) => match writable_path(path) {
                Ok(()) => Ok(Some(found.info)),
                Err(why) => {
                    tracing::warn!(
                        "target {path:?}, signed by {}, cannot be mirrored ({why}): not mirrored",
                        found.role
                    );
                    Ok(None)
                }
            },
            Search::NotFound => Ok(None),
            Search::Blocked { role } => Err(format!("the search for {path} stops at {role}")),
        },
    )
}

/// How the change went.
#[derive(Debug, Default)]
pub struct Applied {
    pub downloaded: usize,
    pub downloaded_bytes: u64,
    pub resumed: usize,
    pub changed: usize,
    pub removed: usize,
    pub roles: usize,
    pub targets: usize,
}

/// Where the state gets what it needs (step 2 above).
pub struct Apply<'a> {
    pub store: &'a MetadataStore,
    pub fetch: &'a Fetch<'a>,
    pub keep_deleted: Duration,
}

/// Downloads and verifies targets into a directory, handing each to a [`Placer`]; returns
/// how many files and bytes.
pub type Fetch<'a> =
    dyn Fn(&[(&String, &TargetFile)], &Path, &Placer<'_>) -> anyhow::Result<(usize, u64)> + 'a;

/// Moves a downloaded, verified file (`part`) into place for `path`.
pub type Placer<'a> = dyn Fn(&str, &TargetFile, &Path) -> anyhow::Result<()> + Sync + 'a;

/// Applies `delta` to the served state (step 2 above).
pub fn apply(
    served: Served<'_>,
    delta: Delta,
    trusted: &TrustedSet,
    how: &Apply<'_>,
) -> anyhow::Result<Applied> {
    let dir = served.dir();
    let old = &served.manifest.targets;
    let mut applied = Applied {
        roles: delta.roles.len(),
        ..Applied::default()
    };
    let (fetch, resumed) = targets_to_fetch(&dir, &delta);
    applied.resumed = resumed;
    // Downloads in flight; what an interrupted run left here is not verified: start afresh.
    let partial = served.layout.dir().join(".sync").join("partial");
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial)?;
    let place = |path: &str, info: &TargetFile, part: &Path| -> anyhow::Result<()> {
        let twin = dir.join(consistent_target_path(path, info).expect("checked in plan"));
        fs::create_dir_all(twin.parent().expect("a target path has a parent"))?;
        fs::rename(part, &twin).with_context(|| format!("moving into {}", twin.display()))?;
        Ok(())
    };
    (applied.downloaded, applied.downloaded_bytes) = (how.fetch)(&fetch, &partial, &place)?;
    link_new_paths(&dir, &delta, old)?;
    write_metadata(&dir, how.store, trusted, &delta)?;
    let handle = fs::File::open(&dir)?;
    rustix::fs::syncfs(&handle).with_context(|| format!("syncing {}", dir.display()))?;
    // From here a TUF client sees the new version.
    let timestamp =
        fs::read(how.store.path_of("timestamp")).context("reading the stored timestamp")?;
    write_atomic(&dir.join("tuf/timestamp.json"), &timestamp)?;
    let retired = replace_plain_names(&dir, &delta, old, &mut applied)?;
    retain(&dir, retired, &delta, how.keep_deleted)?;
    finish(served, delta, trusted, &mut applied)?;
    Ok(applied)
}

/// The new and changed targets whose twin is not already there, verified (left by an
/// interrupted run); and how many were.
fn targets_to_fetch<'d>(
    dir: &Path,
    delta: &'d Delta,
) -> (Vec<(&'d String, &'d TargetFile)>, usize) {
    let mut fetch = Vec::new();
    let mut resumed = 0;
    for (path, info) in delta
        .targets
        .iter()
        .filter_map(|(p, i)| Some((p, i.as_ref()?)))
    {
        let twin = consistent_target_path(path, info).expect("checked in plan");
        if super::verifies(path, info, &dir.join(twin)) {
            resumed += 1;
        } else {
            fetch.push((path, info));
        }
    }
    (fetch, resumed)
}

/// Gives each path the state did not serve its plain name (no served index names it yet).
fn link_new_paths(
    dir: &Path,
    delta: &Delta,
    old: &BTreeMap<String, TargetFile>,
) -> anyhow::Result<()> {
    for (path, info) in &delta.targets {
        let Some(info) = info.as_ref().filter(|_| !old.contains_key(path)) else {
            continue;
        };
        let twin = dir.join(consistent_target_path(path, info).expect("checked in plan"));
        super::link_over(&twin, &dir.join(path))?;
    }
    Ok(())
}

/// Writes the new version of each changed role, and the snapshot, under their versioned
/// names (from the metadata store, which holds what was just verified).
fn write_metadata(
    dir: &Path,
    store: &MetadataStore,
    trusted: &TrustedSet,
    delta: &Delta,
) -> anyhow::Result<()> {
    let mut files: Vec<(String, String)> = Vec::new();
    for (role, _) in &delta.roles {
        let md = trusted.targets(role).context("changed role not loaded")?;
        files.push((
            role.clone(),
            format!("{}.{}.json", md.version, encode_role_name(role)),
        ));
    }
    let snapshot = trusted.snapshot().context("no snapshot")?;
    files.push((
        "snapshot".into(),
        format!("{}.snapshot.json", snapshot.version),
    ));
    for (role, name) in files {
        let stored = store.path_of(&role);
        let bytes = fs::read(&stored).with_context(|| format!("reading {}", stored.display()))?;
        write_atomic(&dir.join("tuf").join(name), &bytes)?;
    }
    Ok(())
}

/// After the timestamp: replaces the plain name of each changed target by rename, removes
/// the plain name of each deleted one. Returns what the new version no longer names.
fn replace_plain_names(
    dir: &Path,
    delta: &Delta,
    old: &BTreeMap<String, TargetFile>,
    applied: &mut Applied,
) -> anyhow::Result<Vec<String>> {
    let mut retired = Vec::new();
    for (path, info) in &delta.targets {
        if let Some(twin) = old.get(path).and_then(|i| consistent_target_path(path, i)) {
            retired.push(twin);
        }
        let plain = dir.join(path);
        match info {
            Some(info) if old.contains_key(path) => {
                let twin = dir.join(consistent_target_path(path, info).expect("checked in plan"));
                let tmp = dir.join(".sync-replacing");
                let _ = fs::remove_file(&tmp);
                fs::hard_link(&twin, &tmp)?;
                fs::rename(&tmp, &plain)
                    .with_context(|| format!("replacing {}", plain.display()))?;
                applied.changed += 1;
            }
            Some(_) => applied.changed += 1,
            None => {
                match fs::remove_file(&plain) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("removing {}", plain.display()))
                    }
                    _ => {}
                }
                applied.removed += 1;
            }
        }
    }
    Ok(retired)
}

/// The file that lists what the state still serves for clients on an older snapshot.
pub const RETAINED: &str = ".sync-retained.json";

/// One file kept after the version that named it was replaced.
#[derive(Debug, Serialize, Deserialize)]
struct Retained {
    path: String,
    /// Seconds since the Unix epoch.
    since: i64,
}

/// Adds `retired` (and the superseded role and snapshot versions) to the retained list, and
/// removes what has been retained for `keep` (never a file the new version names).
fn retain(
    dir: &Path,
    mut retired: Vec<String>,
    delta: &Delta,
    keep: Duration,
) -> anyhow::Result<()> {
    let file = dir.join(RETAINED);
    let mut list: Vec<Retained> = fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    for (role, old_version) in &delta.roles {
        retired.push(format!("tuf/{old_version}.{}.json", encode_role_name(role)));
    }
    let current: HashSet<String> = delta
        .targets
        .iter()
        .filter_map(|(p, i)| consistent_target_path(p, i.as_ref()?))
        .collect();
    let now = Utc::now().timestamp();
    list.retain(|r| !current.contains(&r.path));
    list.extend(
        retired
            .into_iter()
            .filter(|p| !current.contains(p))
            .map(|path| Retained { path, since: now }),
    );
    let keep = i64::try_from(keep.as_secs()).unwrap_or(i64::MAX);
    let (expired, kept): (Vec<_>, Vec<_>) = list
        .into_iter()
        .partition(|r| now.saturating_sub(r.since) >= keep);
    write_atomic(&file, &serde_json::to_vec(&kept)?)?;
    for r in expired {
        match fs::remove_file(dir.join(&r.path)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(file = r.path, "could not remove a retired file: {e}")
            }
            _ => tracing::debug!(file = r.path, "removed a retired file"),
        }
    }
    Ok(())
}

/// The manifest, then the record (written last: until it is, the next run plans again from
/// the previous one).
fn finish(
    served: Served<'_>,
    delta: Delta,
    trusted: &TrustedSet,
    applied: &mut Applied,
) -> anyhow::Result<()> {
    let dir = served.dir();
    let (mut manifest, mut record) = (served.manifest, served.record);
    for (path, info) in delta.targets {
        match info {
            Some(info) => manifest.targets.insert(path, info),
            None => manifest.targets.remove(&path),
        };
    }
    manifest.timestamp_version = trusted.timestamp().context("no timestamp")?.version.get();
    write_atomic(&dir.join(MANIFEST), &serde_json::to_vec(&manifest)?)?;
    for (role, _) in &delta.roles {
        let r = RoleRecord::of(trusted, role).context("changed role not loaded")?;
        record.roles.insert(role.clone(), r);
    }
    applied.targets = manifest.targets.len();
    let record = Record::from_roles(trusted, record.roles, applied.targets)
        .context("no snapshot or timestamp")?;
    record.write(&dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(delegator: &str) -> RoleRecord {
        RoleRecord {
            version: 1,
            delegator: delegator.into(),
            expires: i64::MAX,
        }
    }

    #[test]
    fn the_delegation_chain_is_read_from_the_record() {
        let roles = BTreeMap::from([
            ("targets".to_string(), role("root")),
            ("prefix-A".to_string(), role("targets")),
            ("author-A".to_string(), role("prefix-A")),
        ]);
        assert_eq!(
            delegators(&roles, "author-A").unwrap(),
            ["targets", "prefix-A"]
        );
        assert!(delegators(&roles, "targets").unwrap().is_empty());
        assert!(delegators(&roles, "author-B").is_err());
    }

    #[test]
    fn a_cycle_in_a_recorded_chain_declines_rather_than_loops() {
        let roles = BTreeMap::from([("a".to_string(), role("b")), ("b".to_string(), role("a"))]);
        assert!(delegators(&roles, "a").is_err());
    }
}
