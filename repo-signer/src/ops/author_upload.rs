//! What PAUSE accepts from a claimed author: the signed roles they upload with their
//! tarballs, checked against the published repository and the bytes on the mirror.
//!
//! An author with one role uploads it alone (`ID.role.json`, a TUF envelope). An author
//! whose role is split into hash bins (ADR 0006) uploads `{"roles": {NAME: envelope, ...}}`:
//! their role `author-ID` when it changes (a claim, a rotation, a renewal), and each bin
//! that changes, all signed by their key, so that a release re-signs one bin.

use super::context::Ctx;
use crate::build;
use crate::config::hours;
use crate::mirror::FileEntry;
use crate::signed::{self, SignedFile};
use crate::state::PublishedState;
use crate::RepoError;
use chrono::{DateTime, Utc};
use cpantuf_core::cpan::{owner, CpanPath, CpanRole, Owner, PauseId, MAX_AUTHOR_BIN_BITS};
use cpantuf_core::crypto::compute_keyid;
use cpantuf_core::metadata::{Key, KeyId, SuccinctRoles, Targets};
use cpantuf_core::verify::Authority;
use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU64;

/// The signed roles of one upload, by role name, as uploaded.
pub(super) type Upload = BTreeMap<String, Vec<u8>>;

/// An upload's roles, checked: ready to publish.
pub(super) struct Checked {
    /// The roles, as the author signed them.
    pub files: Vec<SignedFile>,
    /// The files they list, hashed from the mirror (what a publish links).
    pub entries: Vec<FileEntry>,
    /// The hash bins the author's role delegates to after this upload (none: one role).
    pub bins: BTreeSet<String>,
}

/// The roles in `bytes`: one envelope is `author-ID`; `{"roles": {...}}` names each role,
/// which must be `author-ID` or one of its bins.
pub(super) fn parse(id: &PauseId, bytes: &[u8]) -> Result<Upload, RepoError> {
    let bad = |why: String| RepoError::AuthorUpload {
        author: id.clone(),
        why,
    };
    let role = CpanRole::Author(id.clone()).name();
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        bad(format!(
            "not JSON ({e}): upload the file `cpantuf author` wrote"
        ))
    })?;
    let Some(roles) = value.get("roles") else {
        return Ok(Upload::from([(role, bytes.to_vec())]));
    };
    let roles = roles
        .as_object()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| bad("\"roles\" must map role names to signed roles".into()))?;
    let mut out = Upload::new();
    for (name, env) in roles {
        let yours = name == &role
            || matches!(CpanRole::from_name(name), Ok(CpanRole::AuthorBin(a, _)) if &a == id);
        if !yours {
            return Err(bad(format!("{name} is not {role} or one of its hash bins")));
        }
        let bytes = cpantuf_core::canonical::encode(env)
            .map_err(|e| bad(format!("{name} is not canonical JSON: {e}")))?;
        out.insert(name.clone(), bytes);
    }
    Ok(out)
}

/// Checks every role of `upload` for `id`, whose key is `key`: each signed by `key`, at
/// exactly its next version, expiring within PAUSE's bounds, listing only the author's own
/// files with the bytes now on the mirror. A split role delegates only to bins signed by
/// `key`; each bin lists only files that hash into it; a new delegation (a claim, a new key,
/// another number of bins) comes with every bin signed again. A single role above
/// `author_bins_above` files is refused: it must be split.
pub(super) fn check(
    ctx: &Ctx,
    state: &PublishedState,
    id: &PauseId,
    upload: &Upload,
    key: &Key,
) -> Result<Checked, RepoError> {
    let role = CpanRole::Author(id.clone()).name();
    let bad = |why: String| RepoError::AuthorUpload {
        author: id.clone(),
        why,
    };
    let published = state
        .load_role(&role)?
        .and_then(|(env, _)| build::bins_of(env.unverified()).cloned());
    let mut out = Checked {
        files: Vec::new(),
        entries: Vec::new(),
        bins: BTreeSet::new(),
    };
    let bins = match upload.get(&role) {
        Some(bytes) => {
            let (file, t) = checked_role(ctx, state, &role, bytes.clone(), key)?;
            let bins = checked_delegation(id, key, &t)?;
            if bins.is_none() && too_many(ctx, &t) {
                return Err(bad(split_hint(ctx, &role, t.targets.len())));
            }
            out.entries.extend(role_entries(ctx, id, &role, &t, None)?);
            out.files.push(file);
            bins
        }
        None => Some(
            published
                .clone()
                .filter(|s| s.keyids == [compute_keyid(key)])
                .ok_or_else(|| {
                    bad(format!(
                        "{role} is missing: only the hash bins of a role you split with your \
                         own key may be uploaded without it"
                    ))
                })?,
        ),
    };
    out.bins = bins.iter().flat_map(|s| s.bin_names()).collect();
    for (name, bytes) in upload.iter().filter(|(n, _)| **n != role) {
        let s = bins
            .as_ref()
            .filter(|_| out.bins.contains(name))
            .ok_or_else(|| RepoError::OutsideDelegation {
                role: role.clone(),
                path: format!("{name} (not one of its hash bins)"),
            })?;
        let (file, t) = checked_role(ctx, state, name, bytes.clone(), key)?;
        if t.delegations.is_some() {
            return Err(bad(format!(
                "{name} delegates: a hash bin lists files only"
            )));
        }
        out.entries
            .extend(role_entries(ctx, id, name, &t, Some(s))?);
        out.files.push(file);
    }
    if bins.is_some() && bins != published {
        let missing: Vec<&String> = out
            .bins
            .iter()
            .filter(|b| !upload.contains_key(*b))
            .collect();
        if let Some(first) = missing.first() {
            return Err(bad(format!(
                "{role} delegates to its {} hash bins with a new key or layout, and {} of them \
                 ({first}, ...) are not in the upload: sign every bin again",
                out.bins.len(),
                missing.len()
            )));
        }
    }
    Ok(out)
}

/// Whether a single role lists more files than PAUSE lets one role hold.
fn too_many(ctx: &Ctx, t: &Targets) -> bool {
    let above = ctx.cfg.author_bins_above;
    above > 0 && t.targets.len() > above
}

/// What to do about a single role above `author_bins_above` files.
fn split_hint(ctx: &Ctx, role: &str, files: usize) -> String {
    let bits = build::author_bin_bits(files, ctx.cfg.author_bins_above).unwrap_or(1);
    format!(
        "{role} lists {files} files, more than the {} one role may hold here (a new client \
         would fetch all of it): sign it split into hash bins, `cpantuf author claim|release|renew \
         ... --bins {bits}`",
        ctx.cfg.author_bins_above
    )
}

/// The hash bins an author's own role delegates to, if any: only a succinct delegation of
/// `author-ID-bin-*` to `key` alone, threshold one, at most [`MAX_AUTHOR_BIN_BITS`] bits,
/// with no files of its own (clients would look there first).
fn checked_delegation(
    id: &PauseId,
    key: &Key,
    t: &Targets,
) -> Result<Option<SuccinctRoles>, RepoError> {
    let Some(d) = &t.delegations else {
        return Ok(None);
    };
    let keyid = compute_keyid(key);
    let ok = |s: &SuccinctRoles| {
        d.roles.is_none()
            && d.keys.len() == 1
            && d.keys.get(&keyid) == Some(key)
            && s.keyids == [keyid.clone()]
            && s.threshold == NonZeroU64::MIN
            && (1..=MAX_AUTHOR_BIN_BITS).contains(&s.bit_length)
            && s.name_prefix == CpanRole::author_bin_prefix(id)
            && t.targets.is_empty()
    };
    match &d.succinct_roles {
        Some(s) if ok(s) => Ok(Some(s.clone())),
        _ => Err(RepoError::OutsideDelegation {
            role: CpanRole::Author(id.clone()).name(),
            path: format!(
                "(delegations: only hash bins {}-*, to your key alone, up to {MAX_AUTHOR_BIN_BITS} \
                 bits, with no files in the role itself)",
                CpanRole::author_bin_prefix(id)
            ),
        }),
    }
}

/// An author-signed `role` as PAUSE accepts it: signed by `key` (spec 5.7.x: a delegated
/// role is verified with the keys its delegator lists), exactly the next version, not
/// expired, expiring no later than the configured maximum.
pub(super) fn checked_role(
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
    check_signed_by(role, &file.bytes, key).map_err(|_| RepoError::AuthorUpload {
        author: owner_of(role),
        why: format!(
            "{role} is not signed by the author's key {} (registered, or given with \
             --claim-key): sign it with that key",
            compute_keyid(key)
        ),
    })?;
    check_version(state, role, t.version)?;
    check_expiry(ctx, role, t.expires)?;
    Ok((file, t))
}

/// The author whose role (or bin) `role` is; `parse` admitted only such names.
fn owner_of(role: &str) -> PauseId {
    CpanRole::from_name(role)
        .ok()
        .and_then(|r| r.author().cloned())
        .expect("parse admits only the author's role and its bins")
}

/// Whether `bytes` carry a valid signature by `key` (others may sign too).
pub(super) fn check_signed_by(role: &str, bytes: &[u8], key: &Key) -> Result<(), RepoError> {
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
fn check_expiry(ctx: &Ctx, role: &str, expires: DateTime<Utc>) -> Result<(), RepoError> {
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
/// must be in the author's own directory, not owned by the index role,
/// in the bin `bins` sends it to (for a hash bin), and the bytes on the
/// mirror must be the ones the author signed.
fn role_entries(
    ctx: &Ctx,
    id: &PauseId,
    role: &str,
    t: &Targets,
    bins: Option<&SuccinctRoles>,
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
        if let Some(s) = bins.map(|s| s.role_for_target(path)).filter(|b| b != role) {
            return Err(outside(format!("{path} (it hashes into {s})")));
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
fn check_version(state: &PublishedState, role: &str, version: NonZeroU64) -> Result<(), RepoError> {
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
