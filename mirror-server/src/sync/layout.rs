//! The directories under `--dest`: the metadata store, staging areas, published states and the
//! `current` symlink, and the crash-safe moves between them.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use chrono::Utc;
use cpantuf_client::store::{sync_dir, write_atomic, write_atomic_with, MetadataStore};
use cpantuf_core::trusted::TrustedSet;

use super::Manifest;

/// The hidden file in each state that records its verified target infos.
pub const MANIFEST: &str = ".sync-manifest.json";
const STATE_PREFIX: &str = "state-";
const STAGING_PREFIX: &str = ".staging-";
const CURRENT: &str = "current";

/// Paths under `--dest`.
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Creates `dest` and `.sync/` when missing.
    pub fn new(dest: &Path) -> anyhow::Result<Layout> {
        let layout = Layout {
            dir: dest.to_owned(),
        };
        for d in [layout.metadata(), layout.roots()] {
            fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        Ok(layout)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn metadata(&self) -> PathBuf {
        self.dir.join(".sync").join("metadata")
    }

    pub fn roots(&self) -> PathBuf {
        self.dir.join(".sync").join("roots")
    }

    /// Whether the metadata store holds a root (so the trust anchor is not read again).
    pub fn store_initialised(&self, store: &MetadataStore) -> bool {
        store.path_of("root").is_file()
    }

    /// On the first run, stores the trust anchor `bytes` (from `origin`) after checking that
    /// it is a root signed by a threshold of its own keys (spec 5.2).
    pub fn init_store(
        &self,
        store: &MetadataStore,
        bytes: &[u8],
        origin: &str,
    ) -> anyhow::Result<()> {
        TrustedSet::new(bytes, Utc::now())
            .with_context(|| format!("{origin} is not a usable trusted root"))?;
        let version = super::root_version(bytes)?;
        write_atomic(&self.roots().join(format!("{version}.root.json")), bytes)?;
        store.persist("root", bytes)?;
        tracing::info!(
            version,
            "metadata store initialised from the trusted root {origin}"
        );
        Ok(())
    }

    /// Refuses to run when `current` exists and is not a symlink (the sync would replace it).
    pub fn check_current(&self) -> anyhow::Result<()> {
        let current = self.dir.join(CURRENT);
        if let Ok(meta) = fs::symlink_metadata(&current) {
            if !meta.file_type().is_symlink() {
                bail!(
                    "{} exists and is not a symlink: move it away, the sync manages it",
                    current.display()
                );
            }
        }
        Ok(())
    }

    /// The state `current` names (a directory name in `dest`), if any.
    pub fn current_state(&self) -> Option<String> {
        let target = fs::read_link(self.dir.join(CURRENT)).ok()?;
        let name = target.file_name()?.to_str()?.to_owned();
        self.dir.join(&name).is_dir().then_some(name)
    }

    /// The manifest of a published state.
    pub fn manifest(&self, state: &str) -> Option<Manifest> {
        let bytes = fs::read(self.dir.join(state).join(MANIFEST)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn numbered(&self, prefix: &str) -> anyhow::Result<Vec<u64>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            if let Some(n) = name
                .to_str()
                .and_then(|s| s.strip_prefix(prefix))
                .and_then(|s| s.parse().ok())
            {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The staging area for the next state: the newest one an interrupted sync left behind
    /// (its verified files are reused after hashing them again), or a new one.
    pub fn staging(&self) -> anyhow::Result<(u64, PathBuf)> {
        let states = self.numbered(STATE_PREFIX)?;
        let mut stagings = self.numbered(STAGING_PREFIX)?;
        let newest_state = states.last().copied().unwrap_or(0);
        let reuse = stagings.iter().rev().copied().find(|n| *n > newest_state);
        stagings.retain(|n| Some(*n) != reuse);
        for n in stagings {
            let old = self.dir.join(format!("{STAGING_PREFIX}{n}"));
            fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
        }
        let number = reuse.unwrap_or(newest_state + 1);
        let path = self.dir.join(format!("{STAGING_PREFIX}{number}"));
        if reuse.is_some() {
            tracing::info!(staging = %path.display(), "resuming an interrupted sync");
        }
        fs::create_dir_all(&path)?;
        Ok((number, path))
    }

    /// Turns a complete staging area into `state-N` and switches `current` to it with one
    /// rename(2). A crash before the rename leaves `current` on the previous state.
    pub fn publish(&self, number: u64, staging: &Path) -> anyhow::Result<String> {
        let name = format!("{STATE_PREFIX}{number}");
        let state = self.dir.join(&name);
        // One syncfs(2) makes every file and directory of the staging tree durable (the
        // downloads are not synced one by one) before the rename makes it a state.
        let dir = fs::File::open(staging)?;
        rustix::fs::syncfs(&dir).with_context(|| format!("syncing {}", staging.display()))?;
        fs::rename(staging, &state)
            .with_context(|| format!("renaming {} to {}", staging.display(), state.display()))?;
        sync_dir(&self.dir)?;
        let current = self.dir.join(CURRENT);
        self.check_current()?;
        let tmp = self.dir.join(".current.new");
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&name, &tmp)?;
        fs::rename(&tmp, &current).with_context(|| format!("switching {}", current.display()))?;
        sync_dir(&self.dir)?;
        Ok(name)
    }

    /// Removes published states beyond the newest `keep`, never the served one.
    pub fn prune(&self, keep: usize) -> anyhow::Result<()> {
        let current = self.current_state();
        let states = self.numbered(STATE_PREFIX)?;
        let excess = states.len().saturating_sub(keep);
        for n in &states[..excess] {
            let name = format!("{STATE_PREFIX}{n}");
            if Some(&name) == current.as_ref() {
                continue;
            }
            tracing::info!(state = name, "pruning an old state");
            fs::remove_dir_all(self.dir.join(&name))?;
        }
        Ok(())
    }
}

/// Deletes every file under `root` whose relative path is not in `expected` (left by an
/// interrupted sync of an older upstream version), then empty directories.
pub fn remove_unexpected(root: &Path, expected: &BTreeSet<String>) -> anyhow::Result<()> {
    fn walk(root: &Path, dir: &Path, expected: &BTreeSet<String>) -> anyhow::Result<bool> {
        let mut empty = true;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                if walk(root, &path, expected)? {
                    fs::remove_dir(&path)?;
                } else {
                    empty = false;
                }
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            if expected.contains(&rel) {
                empty = false;
            } else {
                tracing::debug!(file = rel, "removing a stale file from the staging area");
                fs::remove_file(&path)?;
            }
        }
        Ok(empty)
    }
    walk(root, root, expected)?;
    Ok(())
}

/// Writes a state's manifest to `path` (atomically, synced), encoded as it is written.
pub fn write_manifest(path: &Path, manifest: &Manifest) -> std::io::Result<()> {
    write_atomic_with(path, |w| {
        serde_json::to_writer(w, manifest).map_err(Into::into)
    })
}
