//! Role-building pieces more than one operation uses: which authors hold
//! their own key, PAUSE's payloads for an author, roles kept unchanged,
//! retired hash bins.

use super::context::Ctx;
use crate::build::{self, AuthorDelegation};
use crate::mirror::{FileEntry, Inventory};
use crate::signed::{self, SignedFile};
use crate::state::PublishedState;
use crate::RepoError;
use cpantuf_core::cpan::{CpanRole, PauseId};
use cpantuf_core::crypto::compute_keyid;
use cpantuf_core::metadata::{KeyId, Targets};
use std::collections::BTreeMap;
use std::num::NonZeroU64;

/// The authors that hold their own key, from the published prefix roles.
pub(crate) fn claimed_authors(
    state: &PublishedState,
    authors_key: &KeyId,
) -> Result<BTreeMap<PauseId, AuthorDelegation>, RepoError> {
    let mut out = BTreeMap::new();
    let Some(cur) = &state.current else {
        return Ok(out);
    };
    let top = cur.targets()?;
    // Repositories published before claimed authors moved to top-level targets delegate
    // them from their prefix role; the next publish with the targets keys moves them.
    for prefix in build::prefixes_of_top(top.unverified()) {
        let Some((env, _)) = state.load_role(&CpanRole::Prefix(prefix).name())? else {
            continue;
        };
        for a in build::authors_of_prefix(env.unverified()) {
            if &compute_keyid(&a.key) != authors_key {
                out.insert(a.id.clone(), a);
            }
        }
    }
    for a in build::authors_of_prefix(top.unverified()) {
        out.insert(a.id.clone(), a);
    }
    Ok(out)
}

/// A claimed author's roles as published: `author-ID` first and, when the author splits it
/// into hash bins, each bin it delegates to. Empty when the author has no role yet.
pub(crate) fn claimed_roles(
    state: &PublishedState,
    id: &PauseId,
) -> Result<Vec<(cpantuf_core::metadata::Envelope<Targets>, SignedFile)>, RepoError> {
    let Some((env, file)) = state.load_role(&CpanRole::Author(id.clone()).name())? else {
        return Ok(Vec::new());
    };
    let bins: Vec<String> = build::bins_of(env.unverified())
        .map(|s| s.bin_names().collect())
        .unwrap_or_default();
    let mut out = vec![(env, file)];
    for bin in bins {
        out.extend(state.load_role(&bin)?);
    }
    Ok(out)
}

/// Every file a claimed author's published roles list (their role and its bins).
pub(crate) fn claimed_listed(
    state: &PublishedState,
    id: &PauseId,
) -> Result<BTreeMap<String, cpantuf_core::metadata::TargetFile>, RepoError> {
    Ok(claimed_roles(state, id)?
        .into_iter()
        .flat_map(|(env, _)| env.unverified().targets.clone())
        .collect())
}

/// The published version of a PAUSE-signed role (`published`, as loaded)
/// when re-signing it would change nothing: the published file says the
/// same as `payload` (targets and delegations), is signed by `signer` (the
/// key its delegation names now), and has more than half of `lifetime` left.
/// A full publish keeps such roles, so that clients and mirrors fetch only
/// the roles that changed.
pub(super) fn kept_version(
    ctx: &Ctx,
    published: Option<(cpantuf_core::metadata::Envelope<Targets>, SignedFile)>,
    payload: &Targets,
    lifetime: chrono::Duration,
    signer: &KeyId,
) -> Option<NonZeroU64> {
    let (old, file) = published?;
    let signed_by_signer = old.signatures().iter().any(|s| &s.keyid == signer);
    let old = old.unverified();
    let keep = signed_by_signer
        && build::same_content(old, payload)
        && old.expires - ctx.now > lifetime / 2;
    keep.then_some(file.version)
}

/// The roles PAUSE signs for an unclaimed author who owns `targets`: one
/// leaf role, or, above `author_bins_above` files (and once binned, ever
/// after, so that bin names stay stable), a role delegating to `2^b` hash
/// bins plus every bin (ADR 0006). The author role comes first; versions
/// are the next ones. `old` is the published author role.
pub(super) fn pause_author_payloads(
    ctx: &Ctx,
    state: &PublishedState,
    id: &PauseId,
    targets: BTreeMap<String, cpantuf_core::metadata::TargetFile>,
    old: Option<&Targets>,
) -> Result<Vec<(String, Targets)>, RepoError> {
    let role = CpanRole::Author(id.clone()).name();
    let exp = ctx.expires(ctx.cfg.expiry.author_hours);
    let key = ctx.key(&ctx.authors_key).public_key();
    let old_bits = old.and_then(build::bins_of).map(|s| s.bit_length);
    let bits = old_bits.max(build::author_bin_bits(
        targets.len(),
        ctx.cfg.author_bins_above,
    ));
    let Some(bits) = bits else {
        let payload = build::leaf_of(state.next_version(&role)?, exp, targets);
        return Ok(vec![(role, payload)]);
    };
    let author = build::binned_author(state.next_version(&role)?, exp, id, key, bits);
    let bins = build::split_into_bins(&build::author_succinct(id, key, bits), targets);
    let mut out = Vec::with_capacity(bins.len() + 1);
    out.push((role, author));
    for (bin, t) in bins {
        let payload = build::leaf_of(state.next_version(&bin)?, exp, t);
        out.push((bin, payload));
    }
    Ok(out)
}

/// Published author bins that `retire` selects, each emptied: a bin nobody
/// delegates to any more stays in the snapshot (which may never drop a
/// role, spec 5.5.5), signing nothing. `Err(version)`: already empty, kept.
#[allow(clippy::type_complexity)]
pub(super) fn retired_bins(
    ctx: &Ctx,
    state: &PublishedState,
    retire: impl Fn(&str) -> bool,
) -> Result<Vec<(String, Result<SignedFile, NonZeroU64>)>, RepoError> {
    let Some(cur) = &state.current else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in &cur.listed_names() {
        let Some(role) = name.strip_suffix(".json") else {
            continue;
        };
        if !matches!(CpanRole::from_name(role), Ok(CpanRole::AuthorBin(..))) || !retire(role) {
            continue;
        }
        let Some((old, file)) = state.load_role(role)? else {
            continue;
        };
        if build::is_empty_role(old.unverified()) {
            out.push((role.to_owned(), Err(file.version)));
            continue;
        }
        let payload = build::leaf_of(
            state.next_version(role)?,
            ctx.expires(ctx.cfg.expiry.author_hours),
            BTreeMap::new(),
        );
        let f = signed::sign(role, &payload, &[ctx.key(&ctx.authors_key)]);
        out.push((role.to_owned(), Ok(f)));
    }
    Ok(out)
}

pub(super) fn inv_entries(inv: &Inventory) -> Vec<FileEntry> {
    inv.index
        .iter()
        .chain(inv.authors.values().flatten())
        .cloned()
        .collect()
}

/// Whether `id` holds their own key: top-level targets delegates to them,
/// or (an older layout) `prefix`, their published prefix role, does with a
/// key other than PAUSE's.
pub(super) fn is_claimed(
    ctx: &Ctx,
    state: &PublishedState,
    prefix: Option<&Targets>,
    id: &PauseId,
) -> Result<bool, RepoError> {
    let top = build::authors_of_prefix(state.current()?.targets()?.unverified());
    if top.iter().any(|a| &a.id == id) {
        return Ok(true);
    }
    Ok(prefix.is_some_and(|t| {
        build::authors_of_prefix(t)
            .iter()
            .any(|a| &a.id == id && compute_keyid(&a.key) != ctx.authors_key)
    }))
}

/// The next top-level targets payload: the index and registry keys'
/// delegations, the claimed authors as published, and one prefix delegation
/// per author prefix in `prefixes`.
pub(super) fn top_targets_payload(
    ctx: &Ctx,
    state: &PublishedState,
    prefixes: impl IntoIterator<Item = cpantuf_core::cpan::AuthorPrefix>,
) -> Result<Targets, RepoError> {
    let claimed: Vec<AuthorDelegation> = claimed_authors(state, &ctx.authors_key)?
        .into_values()
        .collect();
    top_targets_payload_with(ctx, state, &claimed, prefixes)
}

/// [`top_targets_payload`] delegating to `claimed` (in PAUSE id order).
pub(super) fn top_targets_payload_with(
    ctx: &Ctx,
    state: &PublishedState,
    claimed: &[AuthorDelegation],
    prefixes: impl IntoIterator<Item = cpantuf_core::cpan::AuthorPrefix>,
) -> Result<Targets, RepoError> {
    Ok(build::top_targets(
        state.next_version("targets")?,
        ctx.expires(ctx.cfg.expiry.targets_hours),
        ctx.key(&ctx.index_key).public_key(),
        ctx.key(&ctx.registry_key).public_key(),
        claimed,
        prefixes,
        ctx.cfg.prefix_depth,
    ))
}
