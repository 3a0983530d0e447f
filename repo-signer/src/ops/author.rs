//! `author`: a claimed author's own key (export a proposal, import the
//! role they signed, revoke back to PAUSE's key).

use super::context::Ctx;
use super::roles::{
    claimed_authors, pause_author_payloads, retired_bins, top_targets_payload_with,
};
use super::snapshot::{publish_incremental, AddReport};
use crate::build::{self, AuthorDelegation};
use crate::config::hours;
use crate::mirror::FileEntry;
use crate::signed::{self, SignedFile};
use crate::state::PublishedState;
use crate::RepoError;
use chrono::{DateTime, Utc};
use cpantuf_core::cpan::{owner, CpanPath, CpanRole, Owner, PauseId};
use cpantuf_core::crypto::compute_keyid;
use cpantuf_core::metadata::{Key, KeyId, Targets};
use cpantuf_core::verify::Authority;
use std::collections::BTreeMap;
use std::num::NonZeroU64;

/// The files `id` owns now, hashed (PAUSE-generated files in the author
/// directory belong to the index role and are left out).
fn author_files(ctx: &Ctx, id: &PauseId) -> Result<Vec<FileEntry>, RepoError> {
    let mut entries = Vec::new();
    for p in ctx.mirror.scan_dir(&id.author_dir())? {
        if owner(&p)? == Owner::Author(id.clone()) {
            entries.push(ctx.mirror.hash_file(p)?);
        }
    }
    Ok(entries)
}

/// An unsigned proposal of `id`'s role: every file now in the author's
/// directory, the next version, the claimed-author lifetime. PAUSE hands it
/// to the author, who checks and signs it offline ([`signed::add_signature`]).
pub fn author_export(ctx: &Ctx, id: &PauseId) -> Result<SignedFile, RepoError> {
    let state = ctx.state()?;
    state.current()?;
    let entries = author_files(ctx, id)?;
    let role = CpanRole::Author(id.clone()).name();
    let payload = build::leaf_targets(
        state.next_version(&role)?,
        ctx.expires(ctx.cfg.expiry.claimed_author_hours),
        &entries,
    );
    Ok(signed::sign(&role, &payload, &[]))
}

/// Checks an author-signed role and publishes it unchanged, with snapshot
/// and timestamp. With `claim_key` the author's key is (re)registered in the
/// prefix role first (claim, or rotation to a new key); without it the
/// author must already be claimed and the role must be signed by the
/// registered key. A rotation away from an author's own key needs the role
/// signed by the old key too, unless `recover` (PAUSE authenticated an
/// author who lost it).
///
/// Refused, with nothing published: a role of another name, a target
/// outside the author's directory or owned by the index role (CHECKSUMS,
/// `.meta`, `.readme`), a target whose bytes on the mirror differ, a
/// signature not from the author's key, any version but the next one, an
/// expiry already past.
pub fn author_import(
    ctx: &Ctx,
    id: &PauseId,
    bytes: Vec<u8>,
    claim_key: Option<Key>,
    recover: bool,
) -> Result<AddReport, RepoError> {
    let _lock = ctx.mirror.lock()?;
    let state = ctx.state()?;
    state.current()?;
    let role = CpanRole::Author(id.clone()).name();
    let mut claimed = claimed_authors(&state, &ctx.authors_key)?;
    let in_prefix = prefix_authors(&state, id)?;
    let registered = claimed
        .get(id)
        .cloned()
        .or_else(|| in_prefix.iter().find(|a| &a.id == id).cloned());
    let key = match (&claim_key, &registered) {
        (Some(k), _) => k.clone(),
        (None, Some(a)) if compute_keyid(&a.key) != ctx.authors_key => a.key.clone(),
        (None, Some(_)) => return Err(RepoError::AuthorNotClaimed { author: id.clone() }),
        (None, None) => return Err(RepoError::UnknownAuthor { author: id.clone() }),
    };
    if let (Some(new), Some(a)) = (&claim_key, &registered) {
        let was_claimed = compute_keyid(&a.key) != ctx.authors_key;
        if was_claimed && a.key != *new && !recover {
            check_signed_by(&role, &bytes, &a.key).map_err(|_| RepoError::RotationNotSigned {
                author: id.clone(),
                old: compute_keyid(&a.key).to_string(),
            })?;
        }
    }
    let (file, t) = checked_author_role(ctx, &state, &role, bytes, &key)?;
    let entries = author_role_entries(ctx, id, &role, &t)?;
    let depth = build::depth_of(&entries);
    if depth > ctx.cfg.prefix_depth {
        return Err(RepoError::TooDeep {
            path: entries[0].path.to_string(),
            depth,
            max: ctx.cfg.prefix_depth,
        });
    }
    let mut roles = vec![file];
    // A PAUSE-binned author who claims their role: the bins are no longer
    // delegated to, and are emptied.
    let bin_prefix = format!("{}-", CpanRole::author_bin_prefix(id));
    for (_, out) in retired_bins(ctx, &state, |r| r.starts_with(&bin_prefix))? {
        roles.extend(out.ok());
    }
    let top_has_it = build::authors_of_prefix(state.current()?.targets()?.unverified())
        .into_iter()
        .any(|a| &a.id == id && a.key == key && a.depth >= depth);
    if !top_has_it {
        // A claim, a rotation, a deeper directory, or a claim of the older layout moving to
        // top-level targets: the offline targets keys delegate claimed authors.
        let d = claimed
            .entry(id.clone())
            .or_insert_with(|| AuthorDelegation {
                id: id.clone(),
                key: key.clone(),
                depth,
            });
        d.key = key.clone();
        d.depth = d.depth.max(depth);
        let prefixes = build::prefixes_of_top(state.current()?.targets()?.unverified());
        let what = format!("{id}'s delegation");
        roles.push(signed_top(ctx, &state, &claimed, prefixes, what)?);
    }
    if in_prefix.iter().any(|a| &a.id == id) {
        roles.push(prefix_without(ctx, &state, id, in_prefix)?);
    }
    publish_incremental(ctx, state, roles, entries)
}

/// The authors `id`'s prefix role delegates to, as published.
fn prefix_authors(
    state: &PublishedState,
    id: &PauseId,
) -> Result<Vec<AuthorDelegation>, RepoError> {
    Ok(state
        .load_role(&CpanRole::Prefix(id.prefix()).name())?
        .map(|(e, _)| build::authors_of_prefix(e.unverified()))
        .unwrap_or_default())
}

/// `id`'s prefix role re-signed without `id` (a claimed author is delegated by top-level
/// targets).
fn prefix_without(
    ctx: &Ctx,
    state: &PublishedState,
    id: &PauseId,
    mut authors: Vec<AuthorDelegation>,
) -> Result<SignedFile, RepoError> {
    authors.retain(|a| &a.id != id);
    let prefix_role = CpanRole::Prefix(id.prefix()).name();
    let payload = build::prefix_targets(
        state.next_version(&prefix_role)?,
        ctx.expires(ctx.cfg.expiry.prefix_hours),
        &authors,
    );
    Ok(signed::sign(
        &prefix_role,
        &payload,
        &[ctx.key(&ctx.registry_key)],
    ))
}

/// Top-level targets delegating to the claimed authors `claimed` and to `prefixes`, signed
/// with the targets keys given to this run: none of PAUSE's online keys may change a claimed
/// author's delegation. `what` names the change when the keys are missing.
fn signed_top(
    ctx: &Ctx,
    state: &PublishedState,
    claimed: &BTreeMap<PauseId, AuthorDelegation>,
    prefixes: Vec<cpantuf_core::cpan::AuthorPrefix>,
    what: String,
) -> Result<SignedFile, RepoError> {
    let root = state.root.unverified();
    let list: Vec<AuthorDelegation> = claimed.values().cloned().collect();
    let top = top_targets_payload_with(ctx, state, &list, prefixes)?;
    let signers = ctx
        .top_signers(root, "targets")
        .map_err(|_| RepoError::NeedsTargetsKeys {
            what: format!(
            "{what} (claimed authors are delegated by the top-level targets role, signed offline)"
        ),
        })?;
    let f = signed::sign("targets", &top, &signers);
    signed::check::<Targets>(&f, Authority::of_root(root, "targets"))?;
    Ok(f)
}

/// Sets `id`'s key (and at least `depth`) in a prefix role's author list.
fn register_author(authors: &mut Vec<AuthorDelegation>, id: &PauseId, key: &Key, depth: usize) {
    match authors.iter_mut().find(|a| &a.id == id) {
        Some(a) => {
            a.key = key.clone();
            a.depth = a.depth.max(depth);
        }
        None => authors.push(AuthorDelegation {
            id: id.clone(),
            key: key.clone(),
            depth,
        }),
    }
    authors.sort_by(|a, b| a.id.cmp(&b.id));
}

/// An author-signed `role` as PAUSE accepts it: signed by `key` alone,
/// exactly the next version, not expired, expiring no later than the
/// configured maximum, delegating nothing.
fn checked_author_role(
    ctx: &Ctx,
    state: &PublishedState,
    role: &str,
    bytes: Vec<u8>,
    key: &Key,
) -> Result<(SignedFile, Targets), RepoError> {
    let file = SignedFile {
        role: role.to_owned(),
        version: NonZeroU64::MIN,
        bytes,
    };
    let t = file.envelope::<Targets>()?.unverified().clone();
    let file = SignedFile {
        version: t.version,
        ..file
    };
    // The author's key, and only it, counts (spec 5.7.x: a delegated role is
    // verified with the keys its delegator lists).
    check_signed_by(role, &file.bytes, key)?;
    check_imported_version(state, role, t.version)?;
    check_imported_expiry(ctx, role, t.expires)?;
    if t.delegations.is_some() {
        return Err(RepoError::OutsideDelegation {
            role: role.to_owned(),
            path: "(delegations)".into(),
        });
    }
    Ok((file, t))
}

/// Whether `bytes` carry a valid signature by `key` (others may sign too).
fn check_signed_by(role: &str, bytes: &[u8], key: &Key) -> Result<(), RepoError> {
    let file = SignedFile {
        role: role.to_owned(),
        version: NonZeroU64::MIN,
        bytes: bytes.to_vec(),
    };
    let keyid = compute_keyid(key);
    let keys: BTreeMap<KeyId, Key> = [(keyid.clone(), key.clone())].into();
    let ids = [keyid];
    signed::check::<Targets>(
        &file,
        Authority {
            keys: &keys,
            keyids: &ids,
            threshold: NonZeroU64::MIN,
        },
    )
    .map(drop)
}

/// The author chooses the expiry of their own role. One already past is
/// useless; one beyond `claimed_author_max_hours` would outlive any key
/// or policy change PAUSE could make through the role itself, so it is
/// refused.
fn check_imported_expiry(ctx: &Ctx, role: &str, expires: DateTime<Utc>) -> Result<(), RepoError> {
    if expires <= ctx.now {
        return Err(RepoError::Metadata {
            file: role.to_owned(),
            source: cpantuf_core::metadata::MetadataError::Invalid {
                role: "targets",
                reason: format!("expired at {expires}"),
            },
        });
    }
    let max_hours = ctx.cfg.expiry.claimed_author_max_hours;
    if expires - ctx.now > hours(max_hours) {
        return Err(RepoError::ExpiryTooFar {
            role: role.to_owned(),
            expires: cpantuf_core::metadata::expiry::format(&expires),
            max: crate::config::hours_in_words(max_hours),
        });
    }
    Ok(())
}

/// The files an author-signed role lists, hashed from the mirror: each
/// must be in the author's own directory, not owned by the index role, and
/// the bytes on the mirror must be the ones the author signed.
fn author_role_entries(
    ctx: &Ctx,
    id: &PauseId,
    role: &str,
    t: &Targets,
) -> Result<Vec<FileEntry>, RepoError> {
    let outside = |path: String| RepoError::OutsideDelegation {
        role: role.to_owned(),
        path,
    };
    let mut entries = Vec::new();
    for (path, info) in &t.targets {
        let cp = CpanPath::new(path).map_err(|source| RepoError::BadPath {
            path: path.clone(),
            source,
        })?;
        match owner(&cp) {
            Ok(Owner::Author(a)) if &a == id => {}
            Ok(Owner::Index) => {
                return Err(outside(format!(
                    "{path} (owned by {})",
                    CpanRole::Index.name()
                )))
            }
            Ok(Owner::Author(a)) => {
                return Err(outside(format!(
                    "{path} (owned by {})",
                    CpanRole::Author(a).name()
                )))
            }
            Err(_) => return Err(outside(path.clone())),
        }
        let e = ctx.mirror.hash_file(cp)?;
        if build::target_file(&e) != *info {
            return Err(RepoError::NotOwnedBy {
                path: path.clone(),
                owner: "other bytes on the mirror".into(),
                role: role.to_owned(),
            });
        }
        entries.push(e);
    }
    Ok(entries)
}

/// An author-signed role's version must be exactly the next one. Lower or
/// equal: clients refuse it as a rollback (spec 5.6.5 / 5.7.x). Higher: the
/// author could skip to `u64::MAX`, after which the role has no next version
/// and every re-sign by PAUSE (`revoke`, a claim's end) is impossible; one
/// step at a time keeps versions where no run can exhaust them.
fn check_imported_version(
    state: &PublishedState,
    role: &str,
    version: NonZeroU64,
) -> Result<(), RepoError> {
    if let Some(published) = state.role_version(role) {
        if version <= published {
            return Err(RepoError::AuthorRoleStale {
                role: role.to_owned(),
                new: version.get(),
                published: published.get(),
            });
        }
    }
    let next = state.next_version(role)?;
    if version != next {
        return Err(RepoError::VersionNotNext {
            role: role.to_owned(),
            new: version.get(),
            next: next.get(),
        });
    }
    Ok(())
}

/// Takes a claimed author back to PAUSE's key (lost or compromised author
/// key): the prefix role delegates to PAUSE's key again and PAUSE re-signs
/// the author's role over the files now in the directory.
pub fn author_revoke(ctx: &Ctx, id: &PauseId) -> Result<AddReport, RepoError> {
    let _lock = ctx.mirror.lock()?;
    let state = ctx.state()?;
    state.current()?;
    let mut claimed = claimed_authors(&state, &ctx.authors_key)?;
    let Some(c) = claimed.remove(id) else {
        let known = prefix_authors(&state, id)?.iter().any(|a| &a.id == id);
        return Err(if known {
            RepoError::AuthorNotClaimed { author: id.clone() }
        } else {
            RepoError::UnknownAuthor { author: id.clone() }
        });
    };
    let entries = author_files(ctx, id)?;
    let depth = c.depth.max(build::depth_of(&entries));
    let targets = build::targets_of(&entries);
    let mut roles: Vec<SignedFile> = pause_author_payloads(ctx, &state, id, targets, None)?
        .into_iter()
        .map(|(name, payload)| signed::sign(&name, &payload, &[ctx.key(&ctx.authors_key)]))
        .collect();
    let top = build::authors_of_prefix(state.current()?.targets()?.unverified());
    let mut prefixes = build::prefixes_of_top(state.current()?.targets()?.unverified());
    if top.iter().any(|a| &a.id == id) || !prefixes.contains(&id.prefix()) {
        // Taking a claimed author back changes top-level targets: offline keys.
        if !prefixes.contains(&id.prefix()) {
            prefixes.push(id.prefix());
            prefixes.sort();
        }
        let what = format!("revoking {id}'s key");
        roles.push(signed_top(ctx, &state, &claimed, prefixes, what)?);
    }
    let prefix_role = CpanRole::Prefix(id.prefix()).name();
    let mut authors = prefix_authors(&state, id)?;
    register_author(
        &mut authors,
        id,
        ctx.key(&ctx.authors_key).public_key(),
        depth,
    );
    let prefix_payload = build::prefix_targets(
        state.next_version(&prefix_role)?,
        ctx.expires(ctx.cfg.expiry.prefix_hours),
        &authors,
    );
    roles.push(signed::sign(
        &prefix_role,
        &prefix_payload,
        &[ctx.key(&ctx.registry_key)],
    ));
    publish_incremental(ctx, state, roles, entries)
}
