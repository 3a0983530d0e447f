//! `root`: preparing and publishing a new root version (the offline
//! ceremony).

use super::context::Ctx;
use super::snapshot::{finish, SnapshotRoles};
use crate::build;
use crate::ceremony::RootReview;
use crate::publish::{self, Publication};
use crate::signed::{self, SignedFile};
use crate::state::version_after;
use crate::RepoError;
use cpantuf_core::metadata::{Key, Root, Targets};
use cpantuf_core::verify::Authority;
use std::num::NonZeroU64;

/// Replacements for a new root version; `None` keeps what the current root
/// has. A threshold left out keeps the current one, also when the keys
/// change: a rotation never weakens root by default.
#[derive(Clone, Debug, Default)]
pub struct RootChange {
    /// New root keys.
    pub root_keys: Option<Vec<Key>>,
    /// New root threshold.
    pub root_threshold: Option<NonZeroU64>,
    /// New targets keys.
    pub targets_keys: Option<Vec<Key>>,
    /// New targets threshold.
    pub targets_threshold: Option<NonZeroU64>,
    /// New snapshot key.
    pub snapshot: Option<Key>,
    /// New timestamp key.
    pub timestamp: Option<Key>,
    /// Whether a threshold may go down (asked for explicitly).
    pub allow_lower_threshold: bool,
}

/// Prepares root version N+1, unsigned, for the key holders to sign one by
/// one ([`signed::add_signature`]) before [`root_publish`]; with the review
/// of what it changes. Refused: a threshold above the role's number of
/// keys (nobody could sign the role again), and a lowered threshold unless
/// [`RootChange::allow_lower_threshold`].
pub fn root_prepare(ctx: &Ctx, change: RootChange) -> Result<(SignedFile, RootReview), RepoError> {
    let state = ctx.state()?;
    let old = state.root.unverified();
    let mut keys = build::top_level_keys(old);
    let replace = |slot: &mut (Vec<Key>, NonZeroU64), k: Option<Vec<Key>>, t| {
        if let Some(k) = k {
            slot.0 = k;
        }
        if let Some(t) = t {
            slot.1 = t;
        }
    };
    replace(&mut keys.root, change.root_keys, change.root_threshold);
    replace(
        &mut keys.targets,
        change.targets_keys,
        change.targets_threshold,
    );
    replace(&mut keys.snapshot, change.snapshot.map(|k| vec![k]), None);
    replace(&mut keys.timestamp, change.timestamp.map(|k| vec![k]), None);
    let root = build::root(
        version_after("root", old.version)?,
        ctx.expires(ctx.cfg.expiry.root_hours),
        &keys,
    );
    let review = RootReview::between(Some(old), &root);
    for r in &review.roles {
        if r.new.threshold.get() > r.new.keyids.len() as u64 {
            return Err(RepoError::ThresholdAboveKeys {
                role: r.role.to_owned(),
                threshold: r.new.threshold.get(),
                keys: r.new.keyids.len(),
            });
        }
    }
    if let Some(r) = review.lowered().next() {
        if !change.allow_lower_threshold {
            return Err(RepoError::LowersThreshold {
                role: r.role.to_owned(),
                old: r.old.as_ref().map_or(0, |o| o.threshold.get()),
                new: r.new.threshold.get(),
            });
        }
    }
    Ok((signed::sign("root", &root, &[]), review))
}

/// Publishes a prepared root once it carries a threshold of the old root's
/// root keys and of its own (spec 5.3.4), then re-signs whatever the new
/// root's keys require (targets with `--key`s if the targets keys changed;
/// snapshot and timestamp always, so clients move to the new root at once).
pub fn root_publish(ctx: &Ctx, bytes: Vec<u8>) -> Result<SignedFile, RepoError> {
    let _lock = ctx.mirror.lock()?;
    let mut state = ctx.state()?;
    let old = state.root.unverified();
    let next = version_after("root", old.version)?;
    let file = SignedFile {
        role: "root".into(),
        version: next,
        bytes,
    };
    let env = file.envelope::<Root>()?;
    let new = env.unverified();
    if new.version != next {
        return Err(RepoError::VersionNotIncreased {
            role: "root".into(),
            new: new.version.get(),
            published: old.version.get(),
        });
    }
    for (who, authority) in [
        ("the current root's", Authority::of_root(old, "root")),
        ("its own", Authority::of_root(new, "root")),
    ] {
        let have = signed::valid_signatures::<Root>(&file, authority)?;
        if have < authority.threshold.get() {
            return Err(RepoError::PendingBelowThreshold {
                role: format!("root (threshold of {who} root keys)"),
                version: new.version.get(),
                have,
                needed: authority.threshold.get(),
            });
        }
    }
    let mut roles = Vec::new();
    if let Some(cur) = &state.current {
        let t = cur.targets()?;
        if cpantuf_core::verify::check_threshold("targets", t, Authority::of_root(new, "targets"))
            .is_err()
        {
            // The targets keys changed: the current targets must be signed
            // by the new ones, or clients would stop at it.
            let mut payload = t.unverified().clone();
            payload.version = state.next_version("targets")?;
            let signers = ctx.top_signers(new, "targets")?;
            let f = signed::sign("targets", &payload, &signers);
            signed::check::<Targets>(&f, Authority::of_root(new, "targets"))?;
            roles.push(f);
        }
        let meta = SnapshotRoles::published(&mut state)?;
        let publication = finish(ctx, &state, roles, Vec::new(), Some(file.clone()), meta)?;
        publish::write(&ctx.mirror, &publication, ctx.cfg.fsync, &|| {})?;
    } else {
        let publication = Publication {
            root: Some(file.clone()),
            ..Default::default()
        };
        publish::write(&ctx.mirror, &publication, ctx.cfg.fsync, &|| {})?;
    }
    Ok(file)
}
