//! The end of every operation: the next snapshot (the full list, the
//! published list updated, or the published bytes spliced) and timestamp,
//! added to the changed roles.

use super::context::Ctx;
use crate::build;
use crate::mirror::FileEntry;
use crate::publish::{self, Publication, WriteStats};
use crate::signed::{self, SignedFile};
use crate::state::{version_after, PublishedState};
use crate::RepoError;
use cpantuf_core::metadata::{MetaFile, Root};
use cpantuf_core::verify::Authority;
use std::collections::BTreeMap;
use std::num::NonZeroU64;

/// What an incremental run did.
#[derive(Clone, Debug, Default)]
pub struct AddReport {
    /// Files (re)signed.
    pub files: usize,
    /// Roles re-signed, by name.
    pub roles: Vec<String>,
    /// What was written.
    pub write: WriteStats,
}

/// The role list of the next snapshot, for [`finish`].
pub(super) enum SnapshotRoles {
    /// Full publish: every role and its version.
    Full(BTreeMap<String, NonZeroU64>),
    /// Incremental: the published list (moved out of the state: at CPAN
    /// scale it has ~15,000 entries), to be updated with the re-signed
    /// roles' versions.
    Published(BTreeMap<String, MetaFile>),
    /// Incremental, the published snapshot having this signer's shape: the
    /// re-signed roles' versions are spliced into its bytes
    /// ([`crate::snapindex`]), which are never parsed in full.
    Splice,
}

impl SnapshotRoles {
    /// The incremental list: spliced when the published snapshot is
    /// indexed, else taken out of `state` (whose parsed snapshot is left
    /// with an empty list).
    pub(super) fn published(state: &mut PublishedState) -> Result<Self, RepoError> {
        let cur = state.current.as_mut().ok_or(RepoError::NotPublished)?;
        if cur.snapshot_index.is_some() {
            return Ok(Self::Splice);
        }
        Ok(Self::Published(cur.take_snapshot_meta()?))
    }
}

/// Adds snapshot and timestamp to a set of changed roles.
pub(super) fn finish(
    ctx: &Ctx,
    state: &PublishedState,
    roles: Vec<SignedFile>,
    twins: Vec<FileEntry>,
    new_root: Option<SignedFile>,
    list: SnapshotRoles,
) -> Result<Publication, RepoError> {
    let root_env = match &new_root {
        Some(f) => f.envelope::<Root>()?,
        None => state.root.clone(),
    };
    let root = root_env.unverified();
    let snap_version = match &state.current {
        Some(c) => version_after("snapshot", c.snapshot_version())?,
        None => NonZeroU64::MIN,
    };
    let snap_file = signed_snapshot(ctx, state, root, &roles, list, snap_version)?;
    let ts_file = signed_timestamp(ctx, state, root, snap_version, &snap_file)?;
    Ok(Publication {
        twins,
        existing_twins: None,
        roles,
        root: new_root,
        snapshot: Some(snap_file),
        timestamp: Some(ts_file),
    })
}

/// A snapshot entry as this signer writes it: version only.
fn entry(version: NonZeroU64) -> MetaFile {
    MetaFile {
        version,
        length: None,
        hashes: None,
    }
}

/// Spec 5.5.5 on the signing side: clients refuse a snapshot that drops a
/// role the previous one lists, or lowers its version; never publish one.
fn refuse(r: cpantuf_core::trusted::SnapshotRollback<'_>) -> RepoError {
    RepoError::SnapshotRollback {
        role: r.name.strip_suffix(".json").unwrap_or(r.name).to_owned(),
        published: r.old,
        new: r.new,
    }
}

/// The next snapshot (version `snap_version`) over `list` with the
/// re-signed `roles`, signed and checked against `root`.
fn signed_snapshot(
    ctx: &Ctx,
    state: &PublishedState,
    root: &Root,
    roles: &[SignedFile],
    list: SnapshotRoles,
    snap_version: NonZeroU64,
) -> Result<SignedFile, RepoError> {
    let snap_expires = ctx.expires(ctx.cfg.expiry.snapshot_hours);
    // The list is checked for rollbacks before the keys are asked for.
    let meta = match list {
        SnapshotRoles::Splice => None,
        SnapshotRoles::Full(m) => Some(full_meta(state, m)?),
        SnapshotRoles::Published(meta) => Some(updated_meta(roles, meta)?),
    };
    let snap_signers = ctx.top_signers(root, "snapshot")?;
    let snap_authority = Authority::of_root(root, "snapshot");
    match meta {
        None => signed::sign_checked_canonical(
            "snapshot",
            snap_version,
            spliced_snapshot(state, roles, snap_version, snap_expires)?,
            &snap_signers,
            snap_authority,
        ),
        Some(meta) => {
            let snap = build::snapshot(snap_version, snap_expires, meta);
            signed::sign_checked("snapshot", &snap, &snap_signers, snap_authority)
        }
    }
}

/// A full publish's list, keyed `ROLE.json` as written, checked against the
/// published snapshot.
fn full_meta(
    state: &PublishedState,
    m: BTreeMap<String, NonZeroU64>,
) -> Result<BTreeMap<String, MetaFile>, RepoError> {
    let meta = m
        .into_iter()
        .map(|(role, v)| (format!("{role}.json"), entry(v)))
        .collect();
    if let Some(cur) = &state.current {
        if let Some(r) =
            cpantuf_core::trusted::snapshot_rollback(&cur.snapshot()?.unverified().meta, &meta)
        {
            return Err(refuse(r));
        }
    }
    Ok(meta)
}

/// The published list with the re-signed `roles`' new versions. Every
/// other entry is copied unchanged, so checking the changed ones against
/// what they replace checks the whole.
fn updated_meta(
    roles: &[SignedFile],
    mut meta: BTreeMap<String, MetaFile>,
) -> Result<BTreeMap<String, MetaFile>, RepoError> {
    let changed: BTreeMap<String, MetaFile> = roles
        .iter()
        .map(|f| (format!("{}.json", f.role), entry(f.version)))
        .collect();
    let replaced: BTreeMap<String, MetaFile> = changed
        .keys()
        .filter_map(|k| Some((k.clone(), meta.get(k)?.clone())))
        .collect();
    if let Some(r) = cpantuf_core::trusted::snapshot_rollback(&replaced, &changed) {
        return Err(refuse(r));
    }
    meta.extend(changed);
    Ok(meta)
}

/// The published snapshot's canonical bytes with the re-signed `roles`'
/// versions spliced in ([`crate::snapindex`]).
fn spliced_snapshot(
    state: &PublishedState,
    roles: &[SignedFile],
    snap_version: NonZeroU64,
    snap_expires: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<u8>, RepoError> {
    let ix = state
        .current
        .as_ref()
        .and_then(|c| c.snapshot_index.as_ref())
        .expect("SnapshotRoles::Splice is made only for an indexed snapshot");
    let changed: BTreeMap<String, NonZeroU64> = roles
        .iter()
        .map(|f| (format!("{}.json", f.role), f.version))
        .collect();
    // Spec 5.5.5: the splice keeps every entry and refuses to lower one.
    ix.splice(&changed, snap_version, snap_expires)
        .map_err(|l| RepoError::SnapshotRollback {
            role: l.name.strip_suffix(".json").unwrap_or(&l.name).to_owned(),
            published: l.old,
            new: Some(l.new),
        })
}

/// The next timestamp, naming `snap_file`, signed and checked.
fn signed_timestamp(
    ctx: &Ctx,
    state: &PublishedState,
    root: &Root,
    snap_version: NonZeroU64,
    snap_file: &SignedFile,
) -> Result<SignedFile, RepoError> {
    let ts_version = match &state.current {
        Some(c) => version_after("timestamp", c.timestamp.unverified().version)?,
        None => NonZeroU64::MIN,
    };
    let ts = build::timestamp(
        ts_version,
        ctx.expires(ctx.cfg.expiry.timestamp_hours),
        snap_version,
        &snap_file.bytes,
    );
    signed::sign_checked(
        "timestamp",
        &ts,
        &ctx.top_signers(root, "timestamp")?,
        Authority::of_root(root, "timestamp"),
    )
}

/// Publishes re-signed `roles` over the published snapshot (their new
/// versions replace the old), with the twins of `entries`, then a new
/// snapshot and timestamp: the end of every incremental operation.
pub(super) fn publish_incremental(
    ctx: &Ctx,
    mut state: PublishedState,
    roles: Vec<SignedFile>,
    entries: Vec<FileEntry>,
) -> Result<AddReport, RepoError> {
    let names = roles.iter().map(|f| f.role.clone()).collect();
    let files = entries.len();
    let list = SnapshotRoles::published(&mut state)?;
    let publication = finish(ctx, &state, roles, entries, None, list)?;
    let write = publish::write(&ctx.mirror, &publication, ctx.cfg.fsync, &|| {})?;
    Ok(AddReport {
        files,
        roles: names,
        write,
    })
}
