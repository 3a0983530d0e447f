//! `add` and `remove`: re-signing the roles that own uploaded or deleted
//! files, without a full build.

use super::context::Ctx;
use super::index::index_update;
use super::roles::{inv_entries, is_claimed, pause_author_payloads, top_targets_payload};
use super::snapshot::{publish_incremental, AddReport};
use crate::build::{self, AuthorDelegation};
use crate::mirror::{FileEntry, Inventory};
use crate::signed::{self, SignedFile};
use crate::state::PublishedState;
use crate::RepoError;
use cpantuf_core::cpan::{owner, AuthorPrefix, CpanPath, CpanRole, Owner, PauseId};
use cpantuf_core::metadata::Targets;
use cpantuf_core::verify::Authority;
use std::collections::{BTreeMap, BTreeSet};

/// Re-signs the roles owning `paths` (uploads or PAUSE files): the author
/// role (and its prefix role for a new author or a deeper directory), or
/// the index role; then snapshot and timestamp.
pub fn add(ctx: &Ctx, paths: &[CpanPath]) -> Result<AddReport, RepoError> {
    let _lock = ctx.mirror.lock()?;
    let state = ctx.state()?;
    let cur = state.current()?;
    let entries: Vec<FileEntry> = paths
        .iter()
        .map(|p| ctx.mirror.hash_file(p.clone()))
        .collect::<Result<_, _>>()?;
    let inv = Inventory::from_entries(entries)?;
    let mut roles = Vec::new();
    let mut prefix_changes: BTreeMap<AuthorPrefix, PrefixChange> = BTreeMap::new();
    for (id, files) in &inv.authors {
        let prefix = id.prefix();
        if let std::collections::btree_map::Entry::Vacant(slot) = prefix_changes.entry(prefix) {
            let old = state
                .load_role(&CpanRole::Prefix(prefix).name())?
                .map(|(e, _)| e.unverified().clone());
            slot.insert((old, Vec::new()));
        }
        let (old_prefix, changed) = prefix_changes.get_mut(&prefix).expect("inserted above");
        let delegation = upload_author(ctx, &state, id, files, old_prefix.as_ref(), &mut roles)?;
        changed.extend(delegation);
    }
    let mut new_prefixes = Vec::new();
    for (prefix, change) in prefix_changes {
        let Some(f) = changed_prefix_role(ctx, &state, prefix, change)? else {
            continue;
        };
        roles.push(f);
        // Only a prefix role that changes needs the top-level targets read.
        if !build::prefixes_of_top(cur.targets()?.unverified()).contains(&prefix) {
            new_prefixes.push(prefix);
        }
    }
    if !new_prefixes.is_empty() {
        roles.push(top_targets_with(ctx, &state, &new_prefixes)?);
    }
    if !inv.index.is_empty() {
        roles.push(index_update(ctx, &state, &inv.index, &[])?);
    }
    publish_incremental(ctx, state, roles, inv_entries(&inv))
}

/// A prefix role as published, and the author delegations in it that an
/// upload changes (new authors, deeper directories).
type PrefixChange = (Option<Targets>, Vec<AuthorDelegation>);

/// Re-signs `id`'s roles over the uploaded `files` (pushed to `roles`);
/// returns the author's delegation if the prefix role (`old_prefix`, as
/// published) must change for it: a new author, or a deeper directory.
fn upload_author(
    ctx: &Ctx,
    state: &PublishedState,
    id: &PauseId,
    files: &[FileEntry],
    old_prefix: Option<&Targets>,
    roles: &mut Vec<SignedFile>,
) -> Result<Option<AuthorDelegation>, RepoError> {
    if is_claimed(ctx, state, old_prefix, id)? {
        return Err(RepoError::AuthorClaimed { author: id.clone() });
    }
    let depth = build::depth_of(files);
    if depth > ctx.cfg.prefix_depth {
        return Err(RepoError::TooDeep {
            path: files[0].path.to_string(),
            depth,
            max: ctx.cfg.prefix_depth,
        });
    }
    let role = CpanRole::Author(id.clone()).name();
    let old = state
        .load_role(&role)?
        .map(|(env, _)| env.unverified().clone());
    let old_depth = uploaded_author_roles(ctx, state, id, old, build::targets_of(files), roles)?;
    let known = old_prefix
        .map(build::authors_of_prefix)
        .unwrap_or_default()
        .into_iter()
        .find(|a| &a.id == id);
    let needed_depth = depth.max(old_depth.unwrap_or(1));
    Ok(known
        .as_ref()
        .is_none_or(|a| a.depth < needed_depth)
        .then(|| AuthorDelegation {
            id: id.clone(),
            key: ctx.key(&ctx.authors_key).public_key().clone(),
            depth: needed_depth,
        }))
}

/// Signs `id`'s roles with `uploads` added to `old` (the published author
/// role), pushed to `roles`; returns the depth of the deepest file the
/// unbinned role listed before.
fn uploaded_author_roles(
    ctx: &Ctx,
    state: &PublishedState,
    id: &PauseId,
    old: Option<Targets>,
    uploads: BTreeMap<String, cpantuf_core::metadata::TargetFile>,
    roles: &mut Vec<SignedFile>,
) -> Result<Option<usize>, RepoError> {
    let author_signer = [ctx.key(&ctx.authors_key)];
    match old.as_ref().and_then(build::bins_of) {
        // Binned (ADR 0006): only the bins the uploads hash into are
        // re-signed; the author role and the other bins stay.
        Some(bins) => {
            for (bin, new) in build::split_into_bins(bins, uploads) {
                if new.is_empty() {
                    continue;
                }
                let mut listed = state
                    .load_role(&bin)?
                    .map(|(env, _)| env.unverified().targets.clone())
                    .unwrap_or_default();
                listed.extend(new);
                let payload = build::leaf_of(
                    state.next_version(&bin)?,
                    ctx.expires(ctx.cfg.expiry.author_hours),
                    listed,
                );
                roles.push(signed::sign(&bin, &payload, &author_signer));
            }
            Ok(None)
        }
        // One leaf role, which this upload may take over the binning
        // threshold.
        None => {
            let mut listed = old.map(|t| t.targets).unwrap_or_default();
            let old_depth = listed
                .keys()
                .filter_map(|p| CpanPath::new(p).ok())
                .filter_map(|p| cpantuf_core::cpan::author_depth(&p))
                .max();
            listed.extend(uploads);
            for (name, payload) in pause_author_payloads(ctx, state, id, listed, None)? {
                roles.push(signed::sign(&name, &payload, &author_signer));
            }
            Ok(old_depth)
        }
    }
}

/// The prefix role with the `changed` author delegations, signed by the
/// registry key; `None` if nothing changed.
fn changed_prefix_role(
    ctx: &Ctx,
    state: &PublishedState,
    prefix: AuthorPrefix,
    (old, changed): PrefixChange,
) -> Result<Option<SignedFile>, RepoError> {
    if changed.is_empty() {
        return Ok(None);
    }
    let mut authors = old
        .as_ref()
        .map(build::authors_of_prefix)
        .unwrap_or_default();
    for c in changed {
        match authors.iter_mut().find(|a| a.id == c.id) {
            Some(a) => a.depth = c.depth,
            None => authors.push(c),
        }
    }
    authors.sort_by(|a, b| a.id.cmp(&b.id));
    let role = CpanRole::Prefix(prefix).name();
    let payload = build::prefix_targets(
        state.next_version(&role)?,
        ctx.expires(ctx.cfg.expiry.prefix_hours),
        &authors,
    );
    Ok(Some(signed::sign(
        &role,
        &payload,
        &[ctx.key(&ctx.registry_key)],
    )))
}

/// Top-level targets delegating to `new_prefixes` too, signed with the
/// targets keys given to this run.
fn top_targets_with(
    ctx: &Ctx,
    state: &PublishedState,
    new_prefixes: &[AuthorPrefix],
) -> Result<SignedFile, RepoError> {
    let root = state.root.unverified();
    let mut all: BTreeSet<AuthorPrefix> =
        build::prefixes_of_top(state.current()?.targets()?.unverified())
            .into_iter()
            .collect();
    all.extend(new_prefixes.iter().copied());
    let top = top_targets_payload(ctx, state, all)?;
    let signers = ctx
        .top_signers(root, "targets")
        .map_err(|_| RepoError::NeedsTargetsKeys {
            what: format!("new author prefix {}", new_prefixes[0]),
        })?;
    let f = signed::sign("targets", &top, &signers);
    signed::check::<Targets>(&f, Authority::of_root(root, "targets"))?;
    Ok(f)
}

/// Re-signs the roles that list `paths` without them, after the files were
/// deleted from the mirror (an author deleted a release, PAUSE dropped an
/// index file): the author role, or for a binned author the bins that list
/// them, or the index role; then snapshot and timestamp. Refused, with
/// nothing published: a file still on the mirror, a path no role lists, a
/// claimed author's file (the author drops it, `cpantuf author release
/// --remove`).
pub fn remove(ctx: &Ctx, paths: &[CpanPath]) -> Result<AddReport, RepoError> {
    let _lock = ctx.mirror.lock()?;
    let state = ctx.state()?;
    state.current()?;
    let mut index_removed = Vec::new();
    let mut by_author: BTreeMap<PauseId, Vec<String>> = BTreeMap::new();
    for p in paths {
        if std::fs::symlink_metadata(ctx.mirror.file(p)).is_ok() {
            return Err(RepoError::StillOnMirror {
                path: p.to_string(),
            });
        }
        match owner(p)? {
            Owner::Index => index_removed.push(p.to_string()),
            Owner::Author(id) => by_author.entry(id).or_default().push(p.to_string()),
        }
    }
    let mut roles = Vec::new();
    for (id, gone) in by_author {
        let prefix = state
            .load_role(&CpanRole::Prefix(id.prefix()).name())?
            .map(|(e, _)| e.unverified().clone());
        if is_claimed(ctx, &state, prefix.as_ref(), &id)? {
            return Err(RepoError::AuthorClaimed { author: id });
        }
        let author = CpanRole::Author(id.clone()).name();
        let not_listed = |path: &str, role: &str| RepoError::NotListed {
            path: path.to_owned(),
            role: role.to_owned(),
        };
        let Some((env, _)) = state.load_role(&author)? else {
            return Err(not_listed(&gone[0], &author));
        };
        let author_role = env.unverified();
        // The role that lists each path: the author's, or one of its bins.
        let mut per_role: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for path in gone {
            let role = build::bins_of(author_role)
                .map_or_else(|| author.clone(), |b| b.role_for_target(&path));
            per_role.entry(role).or_default().push(path);
        }
        for (role, gone) in per_role {
            let mut payload = if role == author {
                author_role.clone()
            } else {
                let (bin, _) = state
                    .load_role(&role)?
                    .ok_or_else(|| not_listed(&gone[0], &role))?;
                bin.unverified().clone()
            };
            for path in &gone {
                payload
                    .targets
                    .remove(path)
                    .ok_or_else(|| not_listed(path, &role))?;
            }
            payload.version = state.next_version(&role)?;
            payload.expires = ctx.expires(ctx.cfg.expiry.author_hours);
            roles.push(signed::sign(&role, &payload, &[ctx.key(&ctx.authors_key)]));
        }
    }
    if !index_removed.is_empty() {
        roles.push(index_update(ctx, &state, &[], &index_removed)?);
    }
    let mut report = publish_incremental(ctx, state, roles, Vec::new())?;
    report.files = paths.len();
    Ok(report)
}
