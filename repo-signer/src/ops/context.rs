//! What every operation works with: [`Ctx`] (mirror, configuration, keys,
//! the run's reference time) and [`Progress`] reporting.

use crate::build;
use crate::config::{hours, KeyRing, SignerConfig};
use crate::mirror::Mirror;
use crate::state::PublishedState;
use crate::RepoError;
use chrono::{DateTime, Utc};
use cpantuf_core::crypto::Ed25519Signer;
use cpantuf_core::metadata::{KeyId, Root};

/// Progress reporting for long work; the CLI drives a progress bar with it.
pub trait Progress: Sync {
    /// A new phase of `total` steps begins.
    fn phase(&self, name: &str, total: u64);
    /// One step of the current phase is done.
    fn step(&self);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _: &str, _: u64) {}
    fn step(&self) {}
}

/// What a run works with: the mirror, the configuration, the keys it holds
/// and the one "now" every expiry of the run is computed from.
pub struct Ctx {
    /// The mirror.
    pub mirror: Mirror,
    /// The configuration.
    pub cfg: SignerConfig,
    /// Every key loaded for this run (online keys plus any `--key`).
    pub keys: KeyRing,
    /// Key id of the index key.
    pub index_key: KeyId,
    /// Key id of the registry (prefix roles) key.
    pub registry_key: KeyId,
    /// Key id of PAUSE's author key.
    pub authors_key: KeyId,
    /// The reference time of this run.
    pub now: DateTime<Utc>,
}

impl Ctx {
    /// Opens the mirror, loads the online keys and adds `extra` keys
    /// (offline keys given for this run).
    pub fn new(
        cfg: SignerConfig,
        extra: Vec<Ed25519Signer>,
        now: DateTime<Utc>,
    ) -> Result<Self, RepoError> {
        let mirror = Mirror::open(&cfg.mirror)?;
        let load = |p: &std::path::Path| crate::config::load_signer(p, None);
        let index = load(&cfg.online_keys.index)?;
        let registry = load(&cfg.online_keys.registry)?;
        let authors = load(&cfg.online_keys.authors)?;
        let mut keys = KeyRing::new();
        let index_key = keys.add(index).clone();
        let registry_key = keys.add(registry).clone();
        let authors_key = keys.add(authors).clone();
        keys.add(load(&cfg.online_keys.timestamp)?);
        keys.add(load(&cfg.online_keys.snapshot)?);
        for k in extra {
            keys.add(k);
        }
        Ok(Ctx {
            mirror,
            cfg,
            keys,
            index_key,
            registry_key,
            authors_key,
            now,
        })
    }

    pub(crate) fn key(&self, id: &KeyId) -> &Ed25519Signer {
        self.keys.get(id).expect("online keys are loaded in new()")
    }

    pub(crate) fn state(&self) -> Result<PublishedState, RepoError> {
        PublishedState::load(&self.mirror.tuf_dir(), self.mirror.root())
    }

    /// Signers for a top-level role, as many as its threshold needs.
    pub(crate) fn top_signers(
        &self,
        root: &Root,
        role: &str,
    ) -> Result<Vec<&Ed25519Signer>, RepoError> {
        let r = &root.roles[role];
        let signers = self.keys.signers_for(&r.keyids);
        if (signers.len() as u64) < r.threshold.get() {
            return Err(RepoError::MissingKey {
                role: role.to_owned(),
                needed: r.threshold.get(),
                keyids: r.keyids.iter().map(|k| short(&k.0)).collect(),
                hint: self.missing_key_hint(role),
            });
        }
        Ok(signers)
    }

    /// What to tell an operator whose run holds no key of `role`: for an online
    /// role, which configured file holds which key; for an offline one, `--key`.
    fn missing_key_hint(&self, role: &str) -> String {
        let path = match role {
            "timestamp" => &self.cfg.online_keys.timestamp,
            "snapshot" => &self.cfg.online_keys.snapshot,
            _ => return ": give the role's offline keys with --key PEM".into(),
        };
        let held = crate::config::load_signer(path, None)
            .map_or_else(|_| "unreadable".into(), |s| short(&s.keyid().0));
        format!(
            ": the configuration's {role} key {} is key {held}, which root does not name (a \
             replaced key file, or another repository's configuration)",
            path.display()
        )
    }

    pub(crate) fn expires(&self, h: u32) -> DateTime<Utc> {
        build::expires_in(self.now, hours(h))
    }
}

pub(super) fn short(s: &str) -> String {
    s.chars().take(12).collect()
}
