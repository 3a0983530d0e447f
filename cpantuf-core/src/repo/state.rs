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
use super::RepoError;
use crate::metadata::{Envelope, RoleMeta, Root, Snapshot, Targets, Timestamp};
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
    /// The snapshot the timestamp names.
    pub snapshot: Envelope<Snapshot>,
    /// The bytes of that snapshot.
    pub snapshot_bytes: Vec<u8>,
    /// The file of the top-level targets the snapshot names, read on first
    /// use ([`Current::targets`]): most uploads never need it, and at CPAN
    /// scale it is a quarter of a megabyte.
    targets_path: PathBuf,
    targets: std::sync::OnceLock<Envelope<Targets>>,
}

impl Current {
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
        while tuf_dir.join(format!("{}.root.json", n + 1)).exists() {
            n += 1;
        }
        let (root, _) = read_role::<Root>(&tuf_dir.join(format!("{n}.root.json")))?;
        let ts_path = tuf_dir.join("timestamp.json");
        let current = if ts_path.exists() {
            let (timestamp, _) = read_role::<Timestamp>(&ts_path)?;
            let sv = timestamp.unverified().snapshot_meta().version;
            let (snapshot, snapshot_bytes) =
                read_role::<Snapshot>(&tuf_dir.join(format!("{sv}.snapshot.json")))?;
            let tv = snapshot
                .unverified()
                .meta
                .get("targets.json")
                .map(|m| m.version)
                .ok_or_else(|| RepoError::Missing {
                    path: format!("{sv}.snapshot.json: targets.json entry"),
                })?;
            let targets_path = tuf_dir.join(format!("{tv}.targets.json"));
            if !targets_path.is_file() {
                return Err(RepoError::Missing {
                    path: targets_path.display().to_string(),
                });
            }
            Some(Current {
                timestamp,
                snapshot,
                snapshot_bytes,
                targets_path,
                targets: std::sync::OnceLock::new(),
            })
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
    pub fn published_authors(&self) -> Vec<crate::cpan::PauseId> {
        let Some(c) = self.current.as_ref() else {
            return Vec::new();
        };
        c.snapshot
            .unverified()
            .meta
            .keys()
            .filter_map(|name| {
                match crate::cpan::CpanRole::from_name(name.strip_suffix(".json")?).ok()? {
                    crate::cpan::CpanRole::Author(id) => Some(id),
                    _ => None,
                }
            })
            .collect()
    }

    /// The version snapshot lists for a targets-type role.
    pub fn role_version(&self, role: &str) -> Option<NonZeroU64> {
        let c = self.current.as_ref()?;
        c.snapshot
            .unverified()
            .meta
            .get(&format!("{role}.json"))
            .map(|m| m.version)
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
    pub fn next_version(&self, role: &str) -> NonZeroU64 {
        self.role_version(role)
            .map_or(NonZeroU64::MIN, |v| v.saturating_add(1))
    }
}
