//! `author`: a claimed author's own key (export a proposal, import the
//! role they signed, revoke back to PAUSE's key).

use super::author_upload;
use super::context::Ctx;
use super::publish_full::{prepared_targets, TargetsSigning};
use super::roles::{
    claimed_authors, pause_author_payloads, retired_bins, top_targets_payload_with,
};
use super::snapshot::{publish_incremental, AddReport};
use crate::build::{self, AuthorDelegation};
use crate::mirror::FileEntry;
use crate::signed::{self, SignedFile};
use crate::state::PublishedState;
use crate::RepoError;
use cpantuf_core::cpan::{owner, CpanRole, Owner, PauseId};
use cpantuf_core::crypto::compute_keyid;
use cpantuf_core::metadata::{Key, Targets};
use cpantuf_core::verify::Authority;
use std::collections::BTreeMap;

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

/// Checks the roles an author signed (their role, or for a role split into hash bins the
/// role and bins that changed; [`author_upload`]) and publishes them unchanged, with
/// snapshot and timestamp. With `claim_key` the author's key is (re)registered first
/// (claim, or rotation to a new key): top-level targets delegates claimed authors, so that
/// needs the offline targets keys. Without it the author must already be claimed and the
/// roles must be signed by the registered key. A rotation away from an author's own key
/// needs their role signed by the old key too, unless `recover` (PAUSE authenticated an
/// author who lost it).
///
/// Refused, with nothing published: a role of another name, a target outside the author's
/// directory or owned by the index role (CHECKSUMS, `.meta`, `.readme`), a target whose
/// bytes on the mirror differ, a signature not from the author's key, any version but the
/// next one, an expiry already past or beyond PAUSE's maximum, a bin listing a file that
/// hashes into another bin.
pub fn author_import(
    ctx: &Ctx,
    id: &PauseId,
    bytes: Vec<u8>,
    claim_key: Option<Key>,
    recover: bool,
    how: TargetsSigning,
) -> Result<AuthorChange, RepoError> {
    let _lock = ctx.mirror.lock()?;
    let state = ctx.state()?;
    state.current()?;
    let upload = author_upload::parse(id, &bytes)?;
    let role = CpanRole::Author(id.clone()).name();
    // Where the author is delegated now: by top-level targets (claimed), else by their
    // prefix role (unclaimed, or claimed before claims moved to top-level targets).
    let in_top = build::authors_of_prefix(state.current()?.targets()?.unverified());
    let in_prefix = prefix_authors(&state, id)?;
    let registered = in_top
        .iter()
        .chain(&in_prefix)
        .find(|a| &a.id == id)
        .cloned();
    let key = match (&claim_key, &registered) {
        (Some(k), _) => k.clone(),
        (None, Some(a)) if compute_keyid(&a.key) != ctx.authors_key => a.key.clone(),
        (None, Some(_)) => return Err(RepoError::AuthorNotClaimed { author: id.clone() }),
        (None, None) => return Err(RepoError::UnknownAuthor { author: id.clone() }),
    };
    if let (Some(new), Some(a)) = (&claim_key, &registered) {
        let was_claimed = compute_keyid(&a.key) != ctx.authors_key;
        if was_claimed && a.key != *new && !recover {
            let signed_by_old = upload
                .get(&role)
                .is_some_and(|b| author_upload::check_signed_by(&role, b, &a.key).is_ok());
            if !signed_by_old {
                return Err(RepoError::RotationNotSigned {
                    author: id.clone(),
                    old: compute_keyid(&a.key).to_string(),
                });
            }
        }
    }
    let checked = author_upload::check(ctx, &state, id, &upload, &key)?;
    let depth = build::depth_of(&checked.entries);
    if depth > ctx.cfg.prefix_depth {
        return Err(RepoError::TooDeep {
            path: checked.entries[0].path.to_string(),
            depth,
            max: ctx.cfg.prefix_depth,
        });
    }
    let mut roles = checked.files;
    // Bins no longer delegated to (PAUSE's bins of an author who now signs one role, or a
    // layout with another number of bins) are emptied.
    let bin_prefix = format!("{}-", CpanRole::author_bin_prefix(id));
    let retire = |r: &str| r.starts_with(&bin_prefix) && !checked.bins.contains(r);
    for (_, out) in retired_bins(ctx, &state, retire)? {
        roles.extend(out.ok());
    }
    let top_has_it = in_top
        .iter()
        .any(|a| &a.id == id && a.key == key && a.depth >= depth);
    if !top_has_it {
        // A claim, a rotation, a deeper directory, or a claim of the older layout moving to
        // top-level targets: the offline targets keys delegate claimed authors (all of them,
        // those still in prefix roles included: reading every prefix role is for this
        // offline session only, not for each release).
        let mut claimed = claimed_authors(&state, &ctx.authors_key)?;
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
        match signed_top(ctx, &state, &claimed, prefixes, what, &how)? {
            Ok(top) => roles.push(top),
            Err(prepared) => return Ok(AuthorChange::Prepared(prepared)),
        }
    } else {
        nothing_to_prepare(&how, &format!("this upload of {id}'s roles"))?;
    }
    if in_prefix.iter().any(|a| &a.id == id) {
        roles.push(prefix_without(ctx, &state, id, in_prefix)?);
    }
    publish_incremental(ctx, state, roles, checked.entries).map(AuthorChange::Published)
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

/// What a claim, rotation or revocation did: published, or (in the first step of an offline
/// ceremony) prepared the top-level targets role for the targets key holders.
#[derive(Debug)]
pub enum AuthorChange {
    /// Published, in one incremental step.
    Published(AddReport),
    /// [`TargetsSigning::Prepare`]: the new top-level targets role, unsigned; nothing was
    /// published. Each key holder signs it (`targets sign`), then the same command runs
    /// again with [`TargetsSigning::Signed`].
    Prepared(SignedFile),
}

/// Top-level targets delegating to the claimed authors `claimed` and to `prefixes`: signed
/// with the targets keys given to this run, or prepared for (or taken from) an offline
/// ceremony, as `how` says. None of PAUSE's online keys may change a claimed author's
/// delegation. `what` names the change when the keys are missing. `Err(file)`: prepared.
fn signed_top(
    ctx: &Ctx,
    state: &PublishedState,
    claimed: &BTreeMap<PauseId, AuthorDelegation>,
    prefixes: Vec<cpantuf_core::cpan::AuthorPrefix>,
    what: String,
    how: &TargetsSigning,
) -> Result<Result<SignedFile, SignedFile>, RepoError> {
    let root = state.root.unverified();
    let list: Vec<AuthorDelegation> = claimed.values().cloned().collect();
    let top = top_targets_payload_with(ctx, state, &list, prefixes)?;
    match how {
        TargetsSigning::Prepare => return Ok(Err(signed::sign("targets", &top, &[]))),
        TargetsSigning::Signed(bytes) => return prepared_targets(ctx, root, &top, bytes).map(Ok),
        TargetsSigning::Keys => {}
    }
    let signers = ctx
        .top_signers(root, "targets")
        .map_err(|_| RepoError::NeedsTargetsKeys {
            what: format!(
                "{what} (claimed authors are delegated by the top-level targets role, signed \
                 offline)"
            ),
        })?;
    let f = signed::sign("targets", &top, &signers);
    signed::check::<Targets>(&f, Authority::of_root(root, "targets"))?;
    Ok(Ok(f))
}

/// A ceremony asked for a change that leaves top-level targets as it is.
fn nothing_to_prepare(how: &TargetsSigning, what: &str) -> Result<(), RepoError> {
    match how {
        TargetsSigning::Keys => Ok(()),
        _ => Err(RepoError::NoTargetsChange { what: what.into() }),
    }
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

/// Takes a claimed author back to PAUSE's key (lost or compromised author
/// key): the prefix role delegates to PAUSE's key again and PAUSE re-signs
/// the author's role over the files now in the directory.
pub fn author_revoke(
    ctx: &Ctx,
    id: &PauseId,
    how: TargetsSigning,
) -> Result<AuthorChange, RepoError> {
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
        match signed_top(ctx, &state, &claimed, prefixes, what, &how)? {
            Ok(top) => roles.push(top),
            Err(prepared) => return Ok(AuthorChange::Prepared(prepared)),
        }
    } else {
        nothing_to_prepare(
            &how,
            &format!("revoking {id}'s key (delegated by its prefix role)"),
        )?;
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
    publish_incremental(ctx, state, roles, entries).map(AuthorChange::Published)
}
