//! A sync whose upstream changed a few roles (an upload, a deletion, a re-signed role) applied
//! to the served state in place, in O(changes), instead of building a new state.
//!
//! TUF's consistent snapshots make an ordered update in place safe (spec 5.7.3, and the
//! repository-side ordering of section 6): every file a new version adds has a new name, and
//! only the timestamp (and the plain names of changed files) are replaced. Here:
//!
//! 1. **Plan** (`delta`): from the verified timestamp and snapshot alone, the roles that
//!    changed since the served state's record, each verified by the core, and every path
//!    whose served info changes, settled by the core's delegation search; or a reason to
//!    build a new state instead.
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
use cpantuf_client::store::{write_atomic, write_replacing, MetadataStore};
use cpantuf_client::urls::consistent_target_path;
use cpantuf_core::metadata::{Envelope, RoleMeta, TargetFile};
use cpantuf_core::trusted::TrustedSet;
use cpantuf_core::workflow::encode_role_name;
use serde::{Deserialize, Serialize};

use super::delta::Delta;
use super::layout::{Layout, MANIFEST};
use super::unchanged::{Record, RoleRecord};
use super::Manifest;

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
    pub fn metadata<T: serde::de::DeserializeOwned + RoleMeta>(&self, name: &str) -> Option<T> {
        let bytes = fs::read(self.dir().join("tuf").join(name)).ok()?;
        Some(Envelope::<T>::from_bytes(&bytes).ok()?.into_unverified())
    }
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

/// Downloads and verifies targets, each into the file a [`PartOf`] names, handing each to a
/// [`Placer`]; returns how many files and bytes.
pub type Fetch<'a> = dyn Fn(&[(&String, &TargetFile)], &PartOf<'_>, &Placer<'_>) -> anyhow::Result<(usize, u64)>
    + 'a;

/// Where the download of a target is written until it is verified.
pub type PartOf<'a> = dyn Fn(&str, &TargetFile) -> PathBuf + Sync + 'a;

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
    let twin_of = |path: &str, info: &TargetFile| {
        dir.join(consistent_target_path(path, info).expect("checked in plan"))
    };
    let parts = Parts::new(served.layout.dir());
    parts.clear_interrupted()?;
    parts.record(
        fetch
            .iter()
            .map(|(p, i)| super::part_beside(&twin_of(p, i))),
    )?;
    let part_of = |path: &str, info: &TargetFile| super::part_beside(&twin_of(path, info));
    let place = |path: &str, info: &TargetFile, part: &Path| -> anyhow::Result<()> {
        super::move_into(part, &twin_of(path, info))
    };
    (applied.downloaded, applied.downloaded_bytes) = (how.fetch)(&fetch, &part_of, &place)?;
    parts.done()?;
    link_new_paths(&dir, &delta, old)?;
    write_metadata(&dir, how.store, trusted, &delta)?;
    let handle = fs::File::open(&dir)?;
    rustix::fs::syncfs(&handle).with_context(|| format!("syncing {}", dir.display()))?;
    // From here a TUF client sees the new version.
    let timestamp =
        fs::read(how.store.path_of("timestamp")).context("reading the stored timestamp")?;
    write_atomic(&dir.join("tuf/timestamp.json"), &timestamp)?;
    let retired = replace_plain_names(&dir, &delta, old, &mut applied)?;
    let old_snapshot = served.record.snapshot().version.get();
    retain(
        &dir,
        trusted,
        old_snapshot,
        retired,
        &delta,
        how.keep_deleted,
    )?;
    finish(served, delta, trusted, &mut applied)?;
    Ok(applied)
}

/// The downloads in flight of a change applied in place, written beside their twins under
/// hidden names (never served; see `super::part_beside`), and listed in a file first, so that
/// the next run removes what an interrupted one left (it is not verified) without walking
/// the tree.
struct Parts<'a> {
    dest: &'a Path,
    list: PathBuf,
}

impl<'a> Parts<'a> {
    fn new(dest: &'a Path) -> Self {
        Parts {
            dest,
            list: dest.join(".sync").join("partial.list"),
        }
    }

    /// Removes the files an interrupted run listed (and the directory that held the downloads
    /// of earlier versions).
    fn clear_interrupted(&self) -> anyhow::Result<()> {
        let _ = fs::remove_dir_all(self.dest.join(".sync").join("partial"));
        let listed = match fs::read_to_string(&self.list) {
            Ok(listed) => listed,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.list.display())),
        };
        for part in listed.lines().filter(|l| !l.is_empty()) {
            let part = self.dest.join(part);
            match fs::remove_file(&part) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("removing {}", part.display()))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Lists `parts`, paths under the destination (synced: the list must outlive any of them).
    fn record(&self, parts: impl Iterator<Item = PathBuf>) -> anyhow::Result<()> {
        let mut text = String::new();
        for p in parts {
            let rel = p.strip_prefix(self.dest).expect("under the destination");
            text.push_str(rel.to_str().context("a download's path is not UTF-8")?);
            text.push('\n');
        }
        write_atomic(&self.list, text.as_bytes())
            .with_context(|| format!("writing {}", self.list.display()))
    }

    /// Every listed download was moved into place (or removed when it failed).
    fn done(&self) -> anyhow::Result<()> {
        fs::remove_file(&self.list).with_context(|| format!("removing {}", self.list.display()))
    }
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
/// names (from the metadata store, which holds what was just verified: the same file).
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
        let dest = dir.join("tuf").join(name);
        // A hard link (the store replaces its files by rename, never in place), else a copy;
        // synced with everything else by the one syncfs before the timestamp.
        if super::link_over(&stored, &dest).is_err() {
            let bytes =
                fs::read(&stored).with_context(|| format!("reading {}", stored.display()))?;
            write_replacing(&dest, &bytes)?;
        }
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

/// Adds `retired` (and the superseded role versions and `old_snapshot`) to the retained list,
/// and removes what has been retained for `keep` (never a file the new version names).
fn retain(
    dir: &Path,
    trusted: &TrustedSet,
    old_snapshot: u64,
    mut retired: Vec<String>,
    delta: &Delta,
    keep: Duration,
) -> anyhow::Result<()> {
    let file = dir.join(RETAINED);
    let mut list: Vec<Retained> = fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let superseded = delta.roles.iter().filter_map(|(role, old)| {
        let now = trusted.targets(role)?.version.get();
        old.filter(|v| *v != now).map(|v| (role, v))
    });
    for (role, version) in superseded.chain(delta.orphans.iter().map(|(r, v)| (r, *v))) {
        retired.push(format!("tuf/{version}.{}.json", encode_role_name(role)));
    }
    if Some(old_snapshot) != trusted.snapshot().map(|s| s.version.get()) {
        retired.push(format!("tuf/{old_snapshot}.snapshot.json"));
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
    super::layout::write_manifest(&dir.join(MANIFEST), &manifest)?;
    for (role, _) in &delta.roles {
        let r = RoleRecord::of(trusted, role).context("changed role not loaded")?;
        record.roles.insert(role.clone(), r);
    }
    for (role, _) in &delta.orphans {
        record.roles.remove(role);
    }
    applied.targets = manifest.targets.len();
    let record = Record::from_roles(trusted, record.roles, applied.targets)
        .context("no snapshot or timestamp")?;
    record.write(&dir)
}
