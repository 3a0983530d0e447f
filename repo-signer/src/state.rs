//! The published state, read back from `MIRROR/tuf/`.
//!
//! What `timestamp.json` points at *is* the repository: the snapshot it
//! names, and the role versions that snapshot lists. Files of other
//! versions may exist (written by a run that crashed before its timestamp,
//! or superseded and not yet pruned) and are ignored.
//!
//! The signer reads its own output without checking signatures (it is the
//! writer, and `verify` audits it from a trusted root); it does parse and
//! validate every file it reads, so a corrupted file stops the run instead
//! of being extended. The top-level targets role is read only by the runs
//! that need it.

use super::signed::SignedFile;
use super::snapindex::SnapshotIndex;
use super::RepoError;
use cpantuf_core::metadata::{Envelope, RoleMeta, Root, Snapshot, Targets, Timestamp};
use serde::Deserialize;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

/// The current state of a repository.
#[derive(Clone, Debug)]
pub struct PublishedState {
    tuf_dir: PathBuf,
    /// The newest root.
    pub root: Envelope<Root>,
    /// The top-level roles after the first publish; `None` right after
    /// `init`.
    pub current: Option<Current>,
}

/// Timestamp, snapshot and top-level targets as published.
#[derive(Clone, Debug)]
pub struct Current {
    /// `timestamp.json`.
    pub timestamp: Envelope<Timestamp>,
    /// The snapshot the timestamp names, indexed over its bytes when it has
    /// the shape this signer writes ([`SnapshotIndex`]): an upload then
    /// never parses the whole list.
    pub snapshot_index: Option<SnapshotIndex>,
    /// The same snapshot parsed in full: at load when there is no index,
    /// else on first use ([`Current::snapshot`]).
    snapshot: std::sync::OnceLock<Envelope<Snapshot>>,
    /// That snapshot's version, read at load.
    snapshot_version: NonZeroU64,
    /// The bytes of that snapshot.
    pub snapshot_bytes: Vec<u8>,
    snapshot_name: String,
    /// The file of the top-level targets the snapshot names, read on first
    /// use ([`Current::targets`]): most uploads never need it, and at CPAN
    /// scale it is a quarter of a megabyte.
    targets_path: PathBuf,
    targets: std::sync::OnceLock<Envelope<Targets>>,
}

impl Current {
    /// The snapshot parsed in full.
    pub fn snapshot(&self) -> Result<&Envelope<Snapshot>, RepoError> {
        if let Some(s) = self.snapshot.get() {
            return Ok(s);
        }
        let env =
            Envelope::from_bytes(&self.snapshot_bytes).map_err(|source| RepoError::Metadata {
                file: self.snapshot_name.clone(),
                source,
            })?;
        Ok(self.snapshot.get_or_init(|| env))
    }

    /// The snapshot's list, taken out of this state (whose parsed snapshot
    /// is dropped; a later [`Current::snapshot`] parses the bytes again):
    /// when there is no index.
    pub(crate) fn take_snapshot_meta(
        &mut self,
    ) -> Result<std::collections::BTreeMap<String, cpantuf_core::metadata::MetaFile>, RepoError>
    {
        self.snapshot()?;
        let env = self.snapshot.take().expect("parsed above");
        Ok(env.into_unverified().meta)
    }

    /// The snapshot's version.
    pub fn snapshot_version(&self) -> NonZeroU64 {
        self.snapshot_version
    }

    /// The version the snapshot lists for `name` (`ROLE.json`).
    pub fn listed_version(&self, name: &str) -> Option<NonZeroU64> {
        match &self.snapshot_index {
            Some(ix) => ix.version_of(name),
            None => self.parsed().unverified().meta.get(name).map(|m| m.version),
        }
    }

    /// Every name (`ROLE.json`) the snapshot lists, in order.
    pub fn listed_names(&self) -> Vec<String> {
        match &self.snapshot_index {
            Some(ix) => ix.names().map(str::to_owned).collect(),
            None => self.parsed().unverified().meta.keys().cloned().collect(),
        }
    }

    /// Without an index the snapshot was parsed at load (and parses again
    /// after [`Current::take_snapshot_meta`]).
    fn parsed(&self) -> &Envelope<Snapshot> {
        self.snapshot()
            .expect("parsed at load when there is no index")
    }

    /// The top-level targets the snapshot names.
    pub fn targets(&self) -> Result<&Envelope<Targets>, RepoError> {
        if let Some(t) = self.targets.get() {
            return Ok(t);
        }
        let (t, _) = read_role::<Targets>(&self.targets_path)?;
        Ok(self.targets.get_or_init(|| t))
    }
}

/// Reads and parses a metadata file.
pub fn read_role<T: RoleMeta + for<'de> Deserialize<'de>>(
    path: &Path,
) -> Result<(Envelope<T>, Vec<u8>), RepoError> {
    let bytes = std::fs::read(path).map_err(RepoError::io(path))?;
    let env = Envelope::from_bytes(&bytes).map_err(|source| RepoError::Metadata {
        file: path.display().to_string(),
        source,
    })?;
    Ok((env, bytes))
}

impl PublishedState {
    /// Loads the state of the repository in `tuf_dir`.
    pub fn load(tuf_dir: &Path, mirror: &Path) -> Result<Self, RepoError> {
        let root_copy = tuf_dir.join("root.json");
        if !root_copy.exists() && !tuf_dir.join("1.root.json").exists() {
            return Err(RepoError::NotInitialised {
                mirror: mirror.to_owned(),
            });
        }
        // root.json is a convenience copy; a crash can leave it one version
        // behind N.root.json, which is the authority: probe upwards.
        let mut n: u64 = if root_copy.exists() {
            read_role::<Root>(&root_copy)?.0.unverified().version.get()
        } else {
            1
        };
        while let Some(next) = n.checked_add(1) {
            if !tuf_dir.join(format!("{next}.root.json")).exists() {
                break;
            }
            n = next;
        }
        let (root, _) = read_role::<Root>(&tuf_dir.join(format!("{n}.root.json")))?;
        let ts_path = tuf_dir.join("timestamp.json");
        let current = if ts_path.exists() {
            let (timestamp, _) = read_role::<Timestamp>(&ts_path)?;
            let sv = timestamp.unverified().snapshot_meta().version;
            let snapshot_name = format!("{sv}.snapshot.json");
            let snap_path = tuf_dir.join(&snapshot_name);
            let snapshot_bytes = std::fs::read(&snap_path).map_err(RepoError::io(&snap_path))?;
            let snapshot_index = cpantuf_core::canonical::split_canonical_envelope(&snapshot_bytes)
                .and_then(|(_, signed)| SnapshotIndex::parse(signed))
                .filter(|ix| ix.version == sv);
            let snapshot = std::sync::OnceLock::new();
            let snapshot_version = match &snapshot_index {
                Some(ix) => ix.version,
                None => {
                    let (env, _) = read_role::<Snapshot>(&snap_path)?;
                    let version = env.unverified().version;
                    let _ = snapshot.set(env);
                    version
                }
            };
            let mut cur = Current {
                timestamp,
                snapshot_index,
                snapshot,
                snapshot_version,
                snapshot_bytes,
                snapshot_name,
                targets_path: PathBuf::new(),
                targets: std::sync::OnceLock::new(),
            };
            let tv = cur
                .listed_version("targets.json")
                .ok_or_else(|| RepoError::Missing {
                    path: format!("{sv}.snapshot.json: targets.json entry"),
                })?;
            let targets_path = tuf_dir.join(format!("{tv}.targets.json"));
            if !targets_path.is_file() {
                return Err(RepoError::Missing {
                    path: targets_path.display().to_string(),
                });
            }
            cur.targets_path = targets_path;
            Some(cur)
        } else {
            None
        };
        Ok(PublishedState {
            tuf_dir: tuf_dir.to_owned(),
            root,
            current,
        })
    }

    /// The metadata directory.
    pub fn tuf_dir(&self) -> &Path {
        &self.tuf_dir
    }

    /// The published state after the first publish.
    pub fn current(&self) -> Result<&Current, RepoError> {
        self.current.as_ref().ok_or(RepoError::NotPublished)
    }

    /// The authors whose roles the published snapshot lists.
    pub fn published_authors(&self) -> Vec<cpantuf_core::cpan::PauseId> {
        let Some(c) = self.current.as_ref() else {
            return Vec::new();
        };
        c.listed_names()
            .iter()
            .filter_map(|name| {
                match cpantuf_core::cpan::CpanRole::from_name(name.strip_suffix(".json")?).ok()? {
                    cpantuf_core::cpan::CpanRole::Author(id) => Some(id),
                    _ => None,
                }
            })
            .collect()
    }

    /// The version snapshot lists for a targets-type role.
    pub fn role_version(&self, role: &str) -> Option<NonZeroU64> {
        self.current
            .as_ref()?
            .listed_version(&format!("{role}.json"))
    }

    /// Reads the published version of a delegated targets role.
    pub fn load_role(
        &self,
        role: &str,
    ) -> Result<Option<(Envelope<Targets>, SignedFile)>, RepoError> {
        let Some(v) = self.role_version(role) else {
            return Ok(None);
        };
        let (env, bytes) = read_role::<Targets>(&self.tuf_dir.join(format!("{v}.{role}.json")))?;
        Ok(Some((
            env,
            SignedFile {
                role: role.to_owned(),
                version: v,
                bytes,
            },
        )))
    }

    /// The next version of a role: one above the published one, or 1.
    /// A role published at `u64::MAX` has none: re-signing it under the
    /// same version would rewrite a published file.
    pub fn next_version(&self, role: &str) -> Result<NonZeroU64, RepoError> {
        match self.role_version(role) {
            Some(v) => version_after(role, v),
            None => Ok(NonZeroU64::MIN),
        }
    }
}

/// `v + 1` for `role`, never saturating: version arithmetic that wrapped or
/// stuck at `u64::MAX` would sign a second, different file of a version
/// clients and mirrors already hold.
pub fn version_after(role: &str, v: NonZeroU64) -> Result<NonZeroU64, RepoError> {
    v.checked_add(1).ok_or_else(|| RepoError::VersionExhausted {
        role: role.to_owned(),
        version: v.get(),
    })
}
