//! What one sync serves, decided from the verified metadata: the targets with the signed
//! info they are checked against, and the metadata files under the names clients ask for.
//!
//! A delegated role the core refused (expired, badly signed, tampered, missing upstream)
//! costs only its own subtree, as it does in a client's delegation search:
//!
//! * its targets, and those of the roles below it, stay as the previous state verified them
//!   (the file and its signed info carried over); a file no earlier sync verified is not
//!   served;
//! * its metadata is served only when its expiry was the one check it failed: the bytes are
//!   then exactly what the upstream serves, signed by its delegator's keys and named by the
//!   snapshot, so a TUF client refuses the role for the reason it would upstream. Otherwise
//!   the file is absent, and a TUF client refuses the role as not found.
//!
//! Every other role updates normally. The mirror never serves bytes it did not verify.

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cpantuf_client::store::MetadataStore;
use cpantuf_core::metadata::TargetFile;
use cpantuf_core::trusted::TrustedSet;
use cpantuf_core::workflow::{
    self, encode_role_name, AllTargets, FoundTarget, Limits, RefusedRole, Search,
};

use super::{writable_path, Manifest, Source};

/// Logs each refused role with its delegator and the reason, one line each.
pub fn warn_refused(refused: &[RefusedRole]) {
    for r in refused {
        tracing::warn!(
            "delegated role {} (delegated by {}) refused, its subtree is served as last \
             verified: {}",
            r.role,
            r.delegator,
            r.error
        );
    }
}

/// The targets of the new state.
#[derive(Debug, Default)]
pub struct Planned {
    /// Path -> the signed info it is verified against.
    pub targets: BTreeMap<String, TargetFile>,
    /// How many of them were kept from the previous state because their signer is refused.
    pub kept: usize,
}

/// Every target path a trusted role lists, kept only when the core's delegation search (spec
/// 5.7) finds that role allowed to speak for it, with the info of the role that does. A path
/// whose search stops at a refused role keeps the previous state's verified info, if any.
pub fn targets(
    trusted: &mut TrustedSet,
    src: &mut Source<'_>,
    limits: &Limits,
    all: &AllTargets,
    previous: Option<&Manifest>,
) -> anyhow::Result<Planned> {
    let untrusted = all.untrusted(trusted);
    let listed: BTreeSet<String> = all
        .loaded
        .iter()
        .filter_map(|role| trusted.targets(role))
        .flat_map(|md| md.targets.keys().cloned())
        .collect();
    // With a role refused, the previous state's paths that no trusted role lists may be that
    // role's: search for them too. Without, they were removed upstream.
    let earlier: BTreeSet<String> = match previous {
        Some(m) if !all.refused.is_empty() => m
            .targets
            .keys()
            .filter(|p| !listed.contains(*p))
            .cloned()
            .collect(),
        _ => BTreeSet::new(),
    };
    let mut planned = Planned::default();
    for path in listed.iter().chain(&earlier) {
        match workflow::find_target_avoiding(trusted, src, limits, path, &untrusted)? {
            Search::Found(found) => {
                if let Some(info) = mirrorable(found) {
                    planned.targets.insert(path.clone(), info);
                }
            }
            Search::NotFound if listed.contains(path) => tracing::warn!(
                path,
                "listed only by roles not allowed to sign it: not mirrored"
            ),
            Search::NotFound => {} // removed upstream
            Search::Blocked { role } => match previous.and_then(|m| m.targets.get(path)) {
                Some(info) => {
                    planned.targets.insert(path.clone(), info.clone());
                    planned.kept += 1;
                }
                None => tracing::warn!(
                    path,
                    role,
                    "its signer is refused and no earlier sync verified it: not mirrored"
                ),
            },
        }
    }
    Ok(planned)
}

/// The signed info of a target the search found, or `None`, with a warning, when the server
/// could not serve its path (a hidden name, one under `tuf/`). The signing role chose the name:
/// like a refusal, it costs that file alone.
pub fn mirrorable(found: FoundTarget) -> Option<TargetFile> {
    match writable_path(&found.path) {
        Ok(()) => Some(found.info),
        Err(why) => {
            tracing::warn!(
                "target {:?}, signed by {}, cannot be mirrored ({why}): not mirrored",
                found.path,
                found.role
            );
            None
        }
    }
}

/// Where the bytes of one served metadata file come from.
pub enum MetadataFile {
    /// A verified file of the metadata store (or of its root archive).
    Stored(PathBuf),
    /// A refused role's bytes that failed only their expiry check.
    Expired(Vec<u8>),
}

impl MetadataFile {
    pub fn read(&self) -> anyhow::Result<Cow<'_, [u8]>> {
        match self {
            MetadataFile::Stored(p) => fs::read(p)
                .map(Cow::Owned)
                .with_context(|| format!("reading {}", p.display())),
            MetadataFile::Expired(b) => Ok(Cow::Borrowed(b)),
        }
    }
}

/// The metadata files of the new state, by the names the upstream serves them under:
/// `N.root.json` for every root verified so far, `root.json`, `timestamp.json`, and the
/// snapshot and each targets role as `VERSION.NAME.json` (consistent snapshots) or
/// `NAME.json`.
pub fn metadata_files(
    roots: &Path,
    store: &MetadataStore,
    trusted: &TrustedSet,
    all: &AllTargets,
) -> anyhow::Result<BTreeMap<String, MetadataFile>> {
    use MetadataFile::Stored;
    let mut tuf = BTreeMap::new();
    for entry in fs::read_dir(roots)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".root.json") && !name.starts_with('.') {
            tuf.insert(name, Stored(entry.path()));
        }
    }
    tuf.insert("root.json".into(), Stored(store.path_of("root")));
    tuf.insert("timestamp.json".into(), Stored(store.path_of("timestamp")));
    let consistent = trusted.root().consistent_snapshot;
    let name_of = |role: &str, version: u64| {
        let name = encode_role_name(role);
        if consistent {
            format!("{version}.{name}.json")
        } else {
            format!("{name}.json")
        }
    };
    let snapshot = trusted.snapshot().context("no snapshot")?;
    tuf.insert(
        name_of("snapshot", snapshot.version.get()),
        Stored(store.path_of("snapshot")),
    );
    let mut served = HashSet::new();
    for role in &all.loaded {
        let v = trusted.targets(role).context("role not loaded")?.version;
        add_role(&mut tuf, &mut served, role, name_of(role, v.get()), || {
            Stored(store.path_of(role))
        });
    }
    for r in all.refused.iter().filter(|r| !trusted.has_targets(&r.role)) {
        let (Some(bytes), Some(meta)) = (
            &r.expired_copy,
            snapshot.meta.get(&format!("{}.json", r.role)),
        ) else {
            continue;
        };
        let name = name_of(&r.role, meta.version.get());
        add_role(&mut tuf, &mut served, &r.role, name, || {
            MetadataFile::Expired(bytes.clone())
        });
    }
    Ok(tuf)
}

/// Adds a targets role's file unless its name is taken by other metadata: in a repository
/// without consistent snapshots a role named `2.root` is stored as `2.root.json`, the name
/// clients fetch root version 2 by, and that name must keep serving the root.
fn add_role(
    tuf: &mut BTreeMap<String, MetadataFile>,
    served: &mut HashSet<String>,
    role: &str,
    name: String,
    file: impl FnOnce() -> MetadataFile,
) {
    if !served.insert(role.to_owned()) {
        return;
    }
    match tuf.entry(name) {
        Entry::Vacant(e) => {
            e.insert(file());
        }
        Entry::Occupied(e) => tracing::warn!(
            "delegated role {role}: its metadata file name {} is that of other metadata, \
             which keeps it; clients will refuse the role",
            e.key()
        ),
    }
}
