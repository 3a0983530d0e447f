//! `init`: the first root of a new repository.

use super::context::short;
use crate::build;
use crate::config::hours;
use crate::mirror::Mirror;
use crate::publish::{self, Publication};
use crate::signed::{self, SignedFile};
use crate::RepoError;
use chrono::{DateTime, Utc};
use cpantuf_core::crypto::{compute_keyid, Ed25519Signer};
use cpantuf_core::metadata::{Key, Root};
use cpantuf_core::verify::Authority;
use std::num::NonZeroU64;

/// What `init` needs.
pub struct InitParams<'a> {
    /// The mirror.
    pub mirror: &'a Mirror,
    /// Root keys, all of which sign `1.root.json`.
    pub root_signers: Vec<Ed25519Signer>,
    /// Root threshold.
    pub root_threshold: NonZeroU64,
    /// Targets public keys.
    pub targets_keys: Vec<Key>,
    /// Targets threshold.
    pub targets_threshold: NonZeroU64,
    /// Snapshot public key.
    pub snapshot_key: Key,
    /// Timestamp public key.
    pub timestamp_key: Key,
    /// Root lifetime in hours.
    pub root_hours: u32,
    /// Reference time.
    pub now: DateTime<Utc>,
}

/// Writes `tuf/1.root.json` and `tuf/root.json` for a new repository.
pub fn init(p: InitParams<'_>) -> Result<SignedFile, RepoError> {
    let tuf = p.mirror.tuf_dir();
    if tuf.join("1.root.json").exists() {
        return Err(RepoError::AlreadyInitialised {
            mirror: p.mirror.root().to_owned(),
        });
    }
    if (p.root_signers.len() as u64) < p.root_threshold.get() {
        return Err(RepoError::MissingKey {
            role: "root".into(),
            needed: p.root_threshold.get(),
            keyids: p.root_signers.iter().map(|s| short(&s.keyid().0)).collect(),
            hint: ": give as many --root-key files as the threshold".into(),
        });
    }
    if (p.targets_keys.len() as u64) < p.targets_threshold.get() {
        return Err(RepoError::MissingKey {
            role: "targets".into(),
            needed: p.targets_threshold.get(),
            keyids: p
                .targets_keys
                .iter()
                .map(|k| short(&compute_keyid(k).0))
                .collect(),
            hint: ": give as many --targets-key files as the threshold".into(),
        });
    }
    let keys = build::TopLevelKeys {
        root: (
            p.root_signers
                .iter()
                .map(|s| s.public_key().clone())
                .collect(),
            p.root_threshold,
        ),
        targets: (p.targets_keys, p.targets_threshold),
        snapshot: (vec![p.snapshot_key], NonZeroU64::MIN),
        timestamp: (vec![p.timestamp_key], NonZeroU64::MIN),
    };
    let root = build::root(
        NonZeroU64::MIN,
        build::expires_in(p.now, hours(p.root_hours)),
        &keys,
    );
    let signers: Vec<&Ed25519Signer> = p.root_signers.iter().collect();
    let file = signed::sign("root", &root, &signers);
    // Spec 5.3.4: the new root must be signed by a threshold of its own keys.
    signed::check::<Root>(&file, Authority::of_root(&root, "root"))?;
    let _lock = p.mirror.lock()?;
    let publication = Publication {
        root: Some(file.clone()),
        ..Default::default()
    };
    publish::write(p.mirror, &publication, true, &|| {})?;
    Ok(file)
}
