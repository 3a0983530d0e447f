//! The client's trusted metadata: a state machine that takes metadata bytes
//! in the order of the TUF client workflow (spec 5.2 – 5.7) and keeps only
//! what verified.
//!
//! Security invariants:
//! * Every value held here came out of [`crate::verify::verify_role`]; the
//!   fields are private and there is no way to insert unverified metadata.
//! * Loads are accepted only in workflow order: root (any number of times)
//!   before timestamp, timestamp before snapshot, snapshot before any
//!   targets role. An out-of-order call is an error, never a silent skip.
//! * One reference time, fixed when the set is created (spec 5.1 "fixed
//!   update start time"), is used for every expiry check of an update.
//! * A failed load changes nothing, with one deliberate exception that
//!   mirrors python-tuf: a *local* timestamp or snapshot that verifies but is
//!   expired (or, for snapshot, does not match the timestamp) is kept as the
//!   rollback reference for the remote one, and the error is reported. The
//!   remote one must then pass in full before anything else can load.
//!
//! This module does no I/O. [`crate::workflow`] drives it with bytes from a
//! [`crate::workflow::MetadataSource`].

use crate::delegation::{Candidate, PathIndex};
use crate::metadata::{
    Envelope, MetaFile, MetadataError, RoleMeta, Root, Snapshot, Targets, Timestamp,
};
use crate::target::{HashError, StreamVerifier};
use crate::verify::{self, Authority, ThresholdError, Verified};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU64;

/// Why the client refused metadata or could not complete an update.
///
/// Variants up to [`UpdateError::OutOfOrder`] mean the repository (or a
/// mirror or network in between) served something that must not be trusted;
/// [`UpdateError::Fetch`] and [`UpdateError::Store`] are I/O failures.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The document is malformed or breaks the metadata rules.
    #[error("{role} metadata refused: {source}")]
    Metadata {
        /// Role being loaded.
        role: String,
        /// What was wrong.
        source: MetadataError,
    },
    /// Not enough valid signatures. (Transparent: the message says it all,
    /// and a printed error chain does not repeat it.)
    #[error(transparent)]
    Signature(#[from] ThresholdError),
    /// A version went backwards (spec 5.3.5, 5.4.3, 5.5.5).
    #[error("{role} version {new} is older than trusted version {trusted}: rollback refused")]
    Rollback {
        /// Role whose version went down.
        role: String,
        /// Trusted version.
        trusted: u64,
        /// Offered version.
        new: u64,
    },
    /// A version is not the one the signed metadata above it announces.
    #[error("{role} version {got} is not the expected version {expected}: mix-and-match refused")]
    VersionMismatch {
        /// Role.
        role: String,
        /// What the delegating metadata says.
        expected: u64,
        /// What was served.
        got: u64,
    },
    /// A new root is not exactly one version above the trusted one.
    #[error("root version {got} does not follow trusted version {trusted}: roots must go up one version at a time")]
    RootVersion {
        /// Trusted root version.
        trusted: u64,
        /// Offered version.
        got: u64,
    },
    /// Expired metadata (freeze attack, spec 5.3.10, 5.4.4, 5.5.6, 5.6.5).
    #[error(
        "{role} metadata expired at {expires} (now {now}): freeze attack or stale mirror refused"
    )]
    Expired {
        /// Role.
        role: String,
        /// Its expiry.
        expires: String,
        /// The update's reference time.
        now: String,
    },
    /// Length or hashes do not match the signed values.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// Metadata bytes differ from the length or hashes that the metadata
    /// above them signed (spec 5.5.2, 5.6.2).
    #[error("{}", signed_meta_message(.by, .mismatch))]
    SignedMeta {
        /// The metadata that signed the length and hashes, e.g.
        /// "timestamp version 7".
        by: String,
        /// What differed (in the message, so not also an error source).
        mismatch: HashError,
    },
    /// The snapshot does not list a role, or dropped one it listed before.
    #[error("{role}: {why}")]
    MissingMeta {
        /// Role.
        role: String,
        /// Explanation.
        why: String,
    },
    /// A role was loaded through a delegator that does not delegate to it.
    #[error("{delegator} does not delegate to {role}")]
    NotDelegated {
        /// Role.
        role: String,
        /// Claimed delegator.
        delegator: String,
    },
    /// A workflow step was attempted out of order (a bug in the caller).
    #[error("workflow order: {0}")]
    OutOfOrder(&'static str),
    /// Fetching failed (network, HTTP status, size limit, timeout).
    #[error("fetching {what}: {source}")]
    Fetch {
        /// What was being fetched.
        what: String,
        /// The transport's error.
        source: crate::fetch::FetchError,
    },
    /// Writing trusted state failed.
    #[error("storing {what}: {source}")]
    Store {
        /// What was being written.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl UpdateError {
    /// Whether this error means the repository or a mirror served data that
    /// failed verification (as opposed to a network or local I/O failure).
    pub fn is_attack_or_corruption(&self) -> bool {
        !matches!(
            self,
            UpdateError::Fetch { .. } | UpdateError::Store { .. } | UpdateError::OutOfOrder(_)
        )
    }
}

/// Says which signed metadata fixed the length or hash that the served bytes
/// break, and what that means: the served file is another version of the
/// role (a rollback or mix-and-match) or was altered.
fn signed_meta_message(by: &str, e: &HashError) -> String {
    let short = |h: &str| h.get(..16).unwrap_or(h).to_owned();
    match e {
        HashError::Length {
            what,
            expected,
            actual,
        } => format!(
            "{what} is {actual} bytes, but {by} says it is {expected} bytes: a rollback or \
             mix-and-match refused"
        ),
        HashError::TooLong { what, expected, .. } => format!(
            "{what} is larger than the {expected} bytes {by} says it is: a rollback, \
             mix-and-match or endless-data attack refused"
        ),
        HashError::Mismatch {
            what,
            algorithm,
            expected,
            actual,
        } => format!(
            "{what}: {algorithm} hash mismatch: {by} says {}..., the file has {}...: a \
             rollback, mix-and-match or tampered file refused",
            short(expected),
            short(actual)
        ),
        HashError::Unsupported { what, algorithm } => format!(
            "{what}: {by} gives its hash in the unsupported algorithm {algorithm:?}, which \
             cannot be checked: refused"
        ),
    }
}

fn meta_err(role: &str) -> impl FnOnce(MetadataError) -> UpdateError + '_ {
    move |source| UpdateError::Metadata {
        role: role.to_owned(),
        source,
    }
}

/// Trust bootstrap by pin: whether `root_bytes` are exactly the root whose
/// sha256 the user pinned. A root fetched from a mirror is trusted only
/// when this holds (it must then still pass [`TrustedSet::new`]).
pub fn root_matches_pin(root_bytes: &[u8], pinned_sha256_hex: &str) -> bool {
    crate::target::sha256_hex(root_bytes).eq_ignore_ascii_case(pinned_sha256_hex.trim())
}

/// Result of offering a new timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUpdate {
    /// A newer timestamp was accepted: persist it.
    Updated,
    /// The same version as the trusted one: nothing changed (spec 5.4.3.1
    /// allows equal versions; nothing needs persisting).
    Unchanged,
}

struct TrustedTargets {
    verified: Verified<Targets>,
    delegator: String,
    /// Its delegations indexed for the search (spec 5.7.2).
    index: PathIndex,
}

/// The trusted metadata of one update.
pub struct TrustedSet {
    reference_time: DateTime<Utc>,
    root: Verified<Root>,
    timestamp: Option<Verified<Timestamp>>,
    snapshot: Option<Verified<Snapshot>>,
    targets: HashMap<String, TrustedTargets>,
}

/// A role that a new snapshot drops or lists at a lower version than an
/// older one (spec 5.5.5).
#[derive(Debug, PartialEq, Eq)]
pub struct SnapshotRollback<'a> {
    /// The role's file name as the snapshot lists it (`ROLE.json`).
    pub name: &'a str,
    /// Its version in the older snapshot.
    pub old: NonZeroU64,
    /// Its version in the new one, if listed.
    pub new: Option<NonZeroU64>,
}

/// Spec 5.5.5: the first role of `old` that `new` drops or lowers, if any.
/// Clients refuse such a snapshot; the signer refuses to publish one.
pub fn snapshot_rollback<'a>(
    old: &'a BTreeMap<String, MetaFile>,
    new: &BTreeMap<String, MetaFile>,
) -> Option<SnapshotRollback<'a>> {
    old.iter().find_map(|(name, o)| match new.get(name) {
        Some(n) if n.version >= o.version => None,
        n => Some(SnapshotRollback {
            name,
            old: o.version,
            new: n.map(|n| n.version),
        }),
    })
}

impl TrustedSet {
    /// Spec 5.2: loads the trusted root from local storage. It must be
    /// signed by a threshold of its own root keys; its expiry is not
    /// checked here (5.3.10 checks the final root).
    pub fn new(root_bytes: &[u8], reference_time: DateTime<Utc>) -> Result<Self, UpdateError> {
        let env = Envelope::<Root>::from_bytes(root_bytes).map_err(meta_err("root"))?;
        let auth = Authority::of_root(&env.signed, "root");
        verify::check_threshold("root", &env, auth)?;
        let keys = env.signed.keys.clone();
        let role = env.signed.roles["root"].clone();
        let root = verify::verify_role(
            "root",
            env,
            Authority {
                keys: &keys,
                keyids: &role.keyids,
                threshold: role.threshold,
            },
        )?;
        Ok(TrustedSet {
            reference_time,
            root,
            timestamp: None,
            snapshot: None,
            targets: HashMap::new(),
        })
    }

    /// The fixed reference time of this update.
    pub fn reference_time(&self) -> DateTime<Utc> {
        self.reference_time
    }
    /// The trusted root.
    pub fn root(&self) -> &Verified<Root> {
        &self.root
    }
    /// The trusted timestamp, once loaded.
    pub fn timestamp(&self) -> Option<&Verified<Timestamp>> {
        self.timestamp.as_ref()
    }
    /// The trusted snapshot, once loaded.
    pub fn snapshot(&self) -> Option<&Verified<Snapshot>> {
        self.snapshot.as_ref()
    }
    /// A trusted targets role (top-level `targets` or delegated), once loaded.
    pub fn targets(&self, role: &str) -> Option<&Verified<Targets>> {
        self.targets.get(role).map(|t| &t.verified)
    }

    fn expired<T: RoleMeta>(&self, role: &str, m: &T) -> Result<(), UpdateError> {
        if m.is_expired(self.reference_time) {
            return Err(UpdateError::Expired {
                role: role.to_owned(),
                expires: crate::metadata::expiry::format(&m.expires()),
                now: crate::metadata::expiry::format(&self.reference_time),
            });
        }
        Ok(())
    }

    /// Spec 5.3: offers root version N+1.
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<(), UpdateError> {
        if self.timestamp.is_some() {
            return Err(UpdateError::OutOfOrder(
                "root cannot change after timestamp was loaded",
            ));
        }
        let new = Envelope::<Root>::from_bytes(bytes).map_err(meta_err("root"))?;
        // 5.3.4: signed by a threshold of keys of the trusted root ...
        verify::check_threshold(
            "new root (by the trusted root's keys)",
            &new,
            Authority::of_root(&self.root, "root"),
        )?;
        // 5.3.5: ... exactly one version above it (rollback and skips refused) ...
        let trusted = self.root.version.get();
        let got = new.signed.version.get();
        if trusted.checked_add(1) != Some(got) {
            return Err(UpdateError::RootVersion { trusted, got });
        }
        // 5.3.4: ... and by a threshold of its own keys.
        let keys = new.signed.keys.clone();
        let role = new.signed.roles["root"].clone();
        let verified = verify::verify_role(
            "new root (by its own keys)",
            new,
            Authority {
                keys: &keys,
                keyids: &role.keyids,
                threshold: role.threshold,
            },
        )?;
        // 5.3.11 (fast-forward recovery): no explicit deletion is needed: a
        // timestamp or snapshot signed with rotated-out keys no longer
        // verifies against this root, so it cannot serve as a rollback
        // reference in the steps that follow.
        self.root = verified;
        Ok(())
    }

    /// Spec 5.4: offers a timestamp (local or remote).
    pub fn update_timestamp(&mut self, bytes: &[u8]) -> Result<TimestampUpdate, UpdateError> {
        if self.snapshot.is_some() {
            return Err(UpdateError::OutOfOrder(
                "timestamp cannot change after snapshot was loaded",
            ));
        }
        // 5.3.10: the final root must not be expired.
        self.expired("root", &*self.root)?;
        let env = Envelope::<Timestamp>::from_bytes(bytes).map_err(meta_err("timestamp"))?;
        // 5.4.2: signed by a threshold of the root's timestamp keys.
        let new = verify::verify_role(
            "timestamp",
            env,
            Authority::of_root(&self.root, "timestamp"),
        )?;
        if let Some(old) = &self.timestamp {
            // 5.4.3.1: version must not go down; equal means unchanged.
            let (o, n) = (old.version.get(), new.version.get());
            if n < o {
                return Err(UpdateError::Rollback {
                    role: "timestamp".into(),
                    trusted: o,
                    new: n,
                });
            }
            if n == o {
                return Ok(TimestampUpdate::Unchanged);
            }
            // 5.4.3.2: the snapshot version it names must not go down.
            let (os, ns) = (
                old.snapshot_meta().version.get(),
                new.snapshot_meta().version.get(),
            );
            if ns < os {
                return Err(UpdateError::Rollback {
                    role: "snapshot (as listed in timestamp)".into(),
                    trusted: os,
                    new: ns,
                });
            }
        }
        // Kept even if expired: see the module docs.
        self.timestamp = Some(new);
        // 5.4.4: freeze check.
        self.check_final_timestamp()?;
        Ok(TimestampUpdate::Updated)
    }

    /// Spec 5.4.4: a timestamp is trusted and not expired.
    pub fn check_timestamp_final(&self) -> Result<(), UpdateError> {
        self.check_final_timestamp().map(|_| ())
    }

    fn check_final_timestamp(&self) -> Result<&Verified<Timestamp>, UpdateError> {
        let ts = self
            .timestamp
            .as_ref()
            .ok_or(UpdateError::OutOfOrder("snapshot needs a timestamp first"))?;
        self.expired("timestamp", &**ts)?;
        Ok(ts)
    }

    /// Spec 5.5: offers a snapshot. `from_local_store` skips the length and
    /// hash check against the timestamp (the bytes were verified when they
    /// were stored, and python-tuf does the same), everything else applies.
    pub fn update_snapshot(
        &mut self,
        bytes: &[u8],
        from_local_store: bool,
    ) -> Result<(), UpdateError> {
        if !self.targets.is_empty() {
            return Err(UpdateError::OutOfOrder(
                "snapshot cannot change after targets were loaded",
            ));
        }
        let ts = self.check_final_timestamp()?;
        let meta = ts.snapshot_meta().clone();
        if !from_local_store {
            // 5.5.2: hashes and length from timestamp, when present.
            StreamVerifier::for_meta("snapshot.json", &meta, u64::MAX)
                .and_then(|v| v.check_all(bytes))
                .map_err(|mismatch| UpdateError::SignedMeta {
                    by: format!("timestamp version {}", ts.version),
                    mismatch,
                })?;
        }
        let env = Envelope::<Snapshot>::from_bytes(bytes).map_err(meta_err("snapshot"))?;
        // 5.5.3: signed by a threshold of the root's snapshot keys.
        let new = verify::verify_role("snapshot", env, Authority::of_root(&self.root, "snapshot"))?;
        if let Some(old) = &self.snapshot {
            // 5.5.5: no targets role may disappear or go back in version.
            match snapshot_rollback(&old.meta, &new.meta) {
                None => {}
                Some(SnapshotRollback {
                    name, new: None, ..
                }) => {
                    return Err(UpdateError::MissingMeta {
                        role: name.to_owned(),
                        why: "new snapshot drops a role the trusted snapshot lists (rollback refused)".into(),
                    });
                }
                Some(SnapshotRollback {
                    name,
                    old,
                    new: Some(new),
                }) => {
                    return Err(UpdateError::Rollback {
                        role: format!("{name} (as listed in snapshot)"),
                        trusted: old.get(),
                        new: new.get(),
                    });
                }
            }
        }
        // Kept even if not final: see the module docs.
        self.snapshot = Some(new);
        self.check_final_snapshot()?;
        Ok(())
    }

    fn check_final_snapshot(&self) -> Result<&Verified<Snapshot>, UpdateError> {
        let snap = self
            .snapshot
            .as_ref()
            .ok_or(UpdateError::OutOfOrder("targets need a snapshot first"))?;
        // 5.5.6: freeze check.
        self.expired("snapshot", &**snap)?;
        // 5.5.4: the version the timestamp announces (mix-and-match).
        let want = self.check_final_timestamp()?.snapshot_meta().version.get();
        if snap.version.get() != want {
            return Err(UpdateError::VersionMismatch {
                role: "snapshot".into(),
                expected: want,
                got: snap.version.get(),
            });
        }
        Ok(snap)
    }

    /// Whether `role` is already trusted in this update.
    pub fn has_targets(&self, role: &str) -> bool {
        self.targets.contains_key(role)
    }

    /// The roles trusted role `role` delegates `target` to, in search order
    /// ([`crate::metadata::Delegations::roles_for_target`], by an index built
    /// when the role was trusted); none when it is not loaded or delegates nothing.
    pub fn roles_for_target(&self, role: &str, target: &str) -> Vec<Candidate> {
        self.targets
            .get(role)
            .and_then(|t| {
                Some(
                    t.index
                        .roles_for_target(t.verified.delegations.as_ref()?, target),
                )
            })
            .unwrap_or_default()
    }

    /// The role whose keys `role` was verified with in this update (`"root"`
    /// for the top-level targets role), if it is loaded.
    pub fn delegator_of(&self, role: &str) -> Option<&str> {
        self.targets.get(role).map(|t| t.delegator.as_str())
    }

    fn delegator_authority<'a>(
        &'a self,
        role: &str,
        delegator: &str,
    ) -> Result<Authority<'a>, UpdateError> {
        if delegator == "root" {
            if role != "targets" {
                return Err(UpdateError::NotDelegated {
                    role: role.into(),
                    delegator: delegator.into(),
                });
            }
            return Ok(Authority::of_root(&self.root, "targets"));
        }
        let parent = self.targets.get(delegator).ok_or(UpdateError::OutOfOrder(
            "a delegated role needs its delegator loaded first",
        ))?;
        parent
            .verified
            .delegations
            .as_ref()
            .and_then(|d| d.authority_for(role))
            .ok_or_else(|| UpdateError::NotDelegated {
                role: role.into(),
                delegator: delegator.into(),
            })
    }

    /// A role already trusted in this update, reached again through
    /// `delegator`: re-verified against that delegator, because trust in a
    /// role comes from the path that reached it (python-tuf and go-tuf skip
    /// this and fail the conformance suite's diamond test).
    pub fn reverify_cached(&mut self, role: &str, delegator: &str) -> Result<(), UpdateError> {
        let cached = self.targets.get(role).ok_or(UpdateError::OutOfOrder(
            "reverify_cached on a role that is not loaded",
        ))?;
        if cached.delegator == delegator {
            return Ok(());
        }
        let auth = self.delegator_authority(role, delegator)?;
        verify::check_threshold(
            &format!("{role} (delegated by {delegator})"),
            cached.verified.envelope(),
            auth,
        )?;
        Ok(())
    }

    /// Spec 5.6 (top-level targets, `delegator = "root"`) and 5.7 (delegated
    /// targets): offers the metadata of `role` as delegated by `delegator`.
    pub fn update_targets(
        &mut self,
        bytes: &[u8],
        role: &str,
        delegator: &str,
    ) -> Result<(), UpdateError> {
        let snap = self.check_final_snapshot()?;
        let by = format!("snapshot version {}", snap.version);
        let meta = snap
            .meta
            .get(&format!("{role}.json"))
            .ok_or_else(|| UpdateError::MissingMeta {
                role: role.into(),
                why: "the snapshot does not list this role, so it cannot be trusted".into(),
            })?
            .clone();
        // 5.6.2: length and hashes from snapshot, when present.
        StreamVerifier::for_meta(&format!("{role}.json"), &meta, u64::MAX)
            .and_then(|v| v.check_all(bytes))
            .map_err(|mismatch| UpdateError::SignedMeta { by, mismatch })?;
        let env = Envelope::<Targets>::from_bytes(bytes).map_err(meta_err(role))?;
        // 5.6.3 / 5.7: signed by a threshold of the keys its delegator names.
        let auth = self.delegator_authority(role, delegator)?;
        let verified = verify::verify_role(role, env, auth)?;
        // 5.6.4: the version the snapshot announces.
        if verified.version != meta.version {
            return Err(UpdateError::VersionMismatch {
                role: role.into(),
                expected: meta.version.get(),
                got: verified.version.get(),
            });
        }
        // 5.6.5: freeze check.
        self.expired(role, &*verified)?;
        let index = verified
            .delegations
            .as_ref()
            .map(PathIndex::new)
            .unwrap_or_default();
        self.targets.insert(
            role.to_owned(),
            TrustedTargets {
                verified,
                delegator: delegator.to_owned(),
                index,
            },
        );
        Ok(())
    }
}
