//! `publish`: the full build. Every file is hashed, every role built, and
//! what changed is signed and published, in named phases: scan, hash,
//! build and sign (author, prefix, index and top-level targets roles),
//! snapshot list, write, prune.

use super::context::{Ctx, Progress};
use super::roles::{
    claimed_authors, claimed_roles, inv_entries, kept_version, pause_author_payloads, retired_bins,
    top_targets_payload_with,
};
use super::snapshot::{finish, SnapshotRoles};
use crate::audit::ClaimedExpiry;
use crate::build::{self, AuthorDelegation};
use crate::config::hours;
use crate::mirror::{FileEntry, Inventory};
use crate::publish::{self, Publication, WriteStats};
use crate::signed::{self, SignedFile};
use crate::state::PublishedState;
use crate::RepoError;
use cpantuf_core::cpan::{AuthorPrefix, CpanPath, CpanRole, PauseId};
use cpantuf_core::metadata::{Root, Targets};
use cpantuf_core::verify::Authority;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroU64;
use std::time::Instant;

/// What a full publish did.
#[derive(Clone, Debug, Default)]
pub struct PublishReport {
    /// Files signed.
    pub files: usize,
    /// Authors with a role.
    pub authors: usize,
    /// Authors whose own (claimed) role was kept as published.
    pub claimed_kept: usize,
    /// Prefix roles.
    pub prefixes: usize,
    /// Roles signed in this run.
    pub roles_signed: usize,
    /// PAUSE-signed roles whose content did not change, kept at their
    /// published version (not re-signed, not fetched again by clients).
    pub roles_unchanged: usize,
    /// Whether top-level targets was re-signed.
    pub targets_resigned: bool,
    /// Things the operator should know about (not errors).
    pub warnings: Vec<String>,
    /// What was written.
    pub write: WriteStats,
    /// What was pruned.
    pub pruned: publish::PruneStats,
    /// Seconds spent: scan, hash, build+sign, write, prune.
    pub timings: Vec<(&'static str, f64)>,
    /// With [`TargetsSigning::Prepare`]: the new top-level targets role,
    /// unsigned (nothing was published).
    pub prepared_targets: Option<SignedFile>,
}

struct Timer(Instant, Vec<(&'static str, f64)>);

impl Timer {
    fn lap(&mut self, what: &'static str) {
        let now = Instant::now();
        self.1.push((what, (now - self.0).as_secs_f64()));
        self.0 = now;
    }
}

/// How a full publish gets the top-level targets role signed when it has to
/// change (a new author prefix, a delegated key change, near expiry).
#[derive(Clone, Debug, Default)]
pub enum TargetsSigning {
    /// With the targets keys given to this run.
    #[default]
    Keys,
    /// Multi-party, step 1: build the new targets role unsigned and return
    /// it in [`PublishReport::prepared_targets`]; publish nothing. Each
    /// targets key holder then adds a signature on their own machine
    /// ([`signed::add_signature`]).
    Prepare,
    /// Multi-party, step 3: a prepared targets file that has reached its
    /// threshold. Used only if it still says exactly what the repository
    /// needs now.
    Signed(Vec<u8>),
}

/// [`publish_full_with`] with the targets keys given to this run.
pub fn publish_full(ctx: &Ctx, progress: &dyn Progress) -> Result<PublishReport, RepoError> {
    publish_full_with(ctx, progress, TargetsSigning::Keys)
}

/// Hashes every file, builds every role, signs what changed, and publishes
/// (unless `targets` is [`TargetsSigning::Prepare`] and the top-level
/// targets role has to change).
pub fn publish_full_with(
    ctx: &Ctx,
    progress: &dyn Progress,
    targets: TargetsSigning,
) -> Result<PublishReport, RepoError> {
    let _lock = ctx.mirror.lock()?;
    let mut timer = Timer(Instant::now(), Vec::new());
    let state = ctx.state()?;
    let mut report = PublishReport::default();
    let (inv, twins) = scan_and_hash(ctx, progress, &mut timer)?;
    report.files = inv.len();
    let Some(meta) = build_and_sign(ctx, &state, &inv, progress, targets, &mut report)? else {
        report.timings = timer.1;
        return Ok(report);
    };
    report.roles_signed = meta.roles.len();
    timer.lap("build+sign");
    let publication = write_all(ctx, &state, &inv, twins, meta, progress, &mut report)?;
    timer.lap("write");
    report.pruned = prune(ctx, &inv, publication)?;
    timer.lap("prune");
    report.timings = timer.1;
    Ok(report)
}

/// Phases "scan" and "hash": every file of the mirror, hashed, and the
/// hash-named twins already on disk.
fn scan_and_hash(
    ctx: &Ctx,
    progress: &dyn Progress,
    timer: &mut Timer,
) -> Result<(Inventory, Vec<CpanPath>), RepoError> {
    progress.phase("scanning", 0);
    let (paths, twins) = ctx.mirror.scan_with_twins()?;
    timer.lap("scan");
    progress.phase("hashing", paths.len() as u64);
    let entries = ctx.mirror.hash_files(paths, &|| progress.step())?;
    let inv = Inventory::from_entries(entries)?;
    timer.lap("hash");
    Ok((inv, twins))
}

/// The roles of the next snapshot: those signed in this run, and those kept
/// at their published version.
#[derive(Default)]
struct Roles {
    /// Signed in this run.
    roles: Vec<SignedFile>,
    /// Kept at their published version (not re-signed).
    unchanged: BTreeMap<String, NonZeroU64>,
}

impl Roles {
    /// A role signed now (`Ok`) or kept at its published version (`Err`).
    fn add(&mut self, role: String, out: Result<SignedFile, NonZeroU64>) {
        match out {
            Ok(f) => self.roles.push(f),
            Err(v) => {
                self.unchanged.insert(role, v);
            }
        }
    }
}

/// Phase "build+sign": every role built, and signed where it changed.
/// `None` for a [`TargetsSigning::Prepare`] run, which publishes nothing.
fn build_and_sign(
    ctx: &Ctx,
    state: &PublishedState,
    inv: &Inventory,
    progress: &dyn Progress,
    targets: TargetsSigning,
    report: &mut PublishReport,
) -> Result<Option<SnapshotList>, RepoError> {
    let claimed = claimed_authors(state, &ctx.authors_key)?;
    let outs = author_roles(ctx, state, inv, &claimed, progress)?;
    report.authors = outs.len();
    report.claimed_kept = outs.iter().filter(|o| o.claimed).count();
    let mut roles = Roles {
        roles: Vec::with_capacity(outs.len() + 1000),
        unchanged: BTreeMap::new(),
    };
    let mut by_prefix: BTreeMap<AuthorPrefix, Vec<AuthorDelegation>> = BTreeMap::new();
    // Claimed authors are delegated by top-level targets (signed offline), not by their
    // prefix role (PAUSE's online registry key); their prefix is still delegated.
    let mut claimed_list: Vec<AuthorDelegation> = Vec::new();
    for o in outs {
        report.warnings.extend(o.warnings);
        roles.unchanged.extend(o.unchanged);
        let in_prefix = by_prefix.entry(o.delegation.id.prefix()).or_default();
        if o.claimed {
            claimed_list.push(o.delegation);
        } else {
            in_prefix.push(o.delegation);
        }
        roles.roles.extend(o.files);
    }
    report.prefixes = by_prefix.len();
    for (role, out) in prefix_roles(ctx, state, &by_prefix)? {
        roles.add(role, out);
    }
    let (index_role, index_out) = index_role(ctx, state, inv)?;
    roles.add(index_role, index_out);
    let prefixes = by_prefix.keys().copied();
    let Some(top) = top_targets_role(ctx, state, &claimed_list, prefixes, &targets, report)? else {
        return Ok(None);
    };
    Ok(Some(snapshot_list(
        ctx, state, &claimed, roles, top, report,
    )?))
}

/// Every author on disk, plus claimed authors whose directory is empty
/// (their delegation stays until revoked), plus every author with a
/// published role: an author whose files were all deleted keeps an empty
/// role, because a snapshot may never drop a role the previous one listed
/// (clients refuse that as a rollback, spec 5.5.5). Built in parallel.
fn author_roles(
    ctx: &Ctx,
    state: &PublishedState,
    inv: &Inventory,
    claimed: &BTreeMap<PauseId, AuthorDelegation>,
    progress: &dyn Progress,
) -> Result<Vec<AuthorOut>, RepoError> {
    let mut ids: BTreeSet<PauseId> = inv.authors.keys().cloned().collect();
    ids.extend(claimed.keys().cloned());
    ids.extend(state.published_authors());
    let empty = Vec::new();
    progress.phase("signing author roles", ids.len() as u64);
    let ids: Vec<PauseId> = ids.into_iter().collect();
    ids.par_iter()
        .map(|id| {
            let files = inv.authors.get(id).unwrap_or(&empty);
            let depth = checked_depth(ctx, files)?;
            progress.step();
            match claimed.get(id) {
                Some(c) => claimed_author_out(ctx, state, c, files, depth),
                None => pause_author_out(ctx, state, id, files, depth),
            }
        })
        .collect()
}

/// The depth of an author's deepest file, refused above the configured
/// prefix depth.
fn checked_depth(ctx: &Ctx, files: &[FileEntry]) -> Result<usize, RepoError> {
    let depth = build::depth_of(files);
    if depth > ctx.cfg.prefix_depth {
        let deepest = files
            .iter()
            .max_by_key(|e| cpantuf_core::cpan::author_depth(&e.path))
            .expect("depth > 1 means files");
        return Err(RepoError::TooDeep {
            path: deepest.path.to_string(),
            depth,
            max: ctx.cfg.prefix_depth,
        });
    }
    Ok(depth)
}

/// An unclaimed author in a full publish: PAUSE's role (and bins) over
/// `files`, each re-signed only if it changed.
fn pause_author_out(
    ctx: &Ctx,
    state: &PublishedState,
    id: &PauseId,
    files: &[FileEntry],
    depth: usize,
) -> Result<AuthorOut, RepoError> {
    let role = CpanRole::Author(id.clone()).name();
    let mut old = state.load_role(&role)?;
    let targets = build::targets_of(files);
    let payloads = pause_author_payloads(
        ctx,
        state,
        id,
        targets,
        old.as_ref().map(|(e, _)| e.unverified()),
    )?;
    let lifetime = hours(ctx.cfg.expiry.author_hours);
    let mut out = AuthorOut {
        delegation: AuthorDelegation {
            id: id.clone(),
            key: ctx.key(&ctx.authors_key).public_key().clone(),
            depth,
        },
        files: Vec::new(),
        unchanged: Vec::new(),
        claimed: false,
        warnings: Vec::new(),
    };
    for (name, payload) in payloads {
        let published = match old.take() {
            Some(o) if name == role => Some(o),
            _ => state.load_role(&name)?,
        };
        match kept_version(ctx, published, &payload, lifetime, &ctx.authors_key) {
            Some(v) => out.unchanged.push((name, v)),
            None => out
                .files
                .push(signed::sign(&name, &payload, &[ctx.key(&ctx.authors_key)])),
        }
    }
    Ok(out)
}

/// One prefix role per author prefix, signed by the registry key where it
/// changed (`Err(version)`: kept as published). Built in parallel.
#[allow(clippy::type_complexity)]
fn prefix_roles(
    ctx: &Ctx,
    state: &PublishedState,
    by_prefix: &BTreeMap<AuthorPrefix, Vec<AuthorDelegation>>,
) -> Result<Vec<(String, Result<SignedFile, NonZeroU64>)>, RepoError> {
    let prefix_exp = ctx.expires(ctx.cfg.expiry.prefix_hours);
    let prefix_lifetime = hours(ctx.cfg.expiry.prefix_hours);
    by_prefix
        .par_iter()
        .map(|(prefix, authors)| {
            let role = CpanRole::Prefix(*prefix).name();
            let payload = build::prefix_targets(state.next_version(&role)?, prefix_exp, authors);
            let kept = kept_version(
                ctx,
                state.load_role(&role)?,
                &payload,
                prefix_lifetime,
                &ctx.registry_key,
            );
            let out = match kept {
                Some(v) => Err(v),
                None => Ok(signed::sign(&role, &payload, &[ctx.key(&ctx.registry_key)])),
            };
            Ok((role, out))
        })
        .collect()
}

/// The index role over PAUSE's files, signed by the index key if it
/// changed (`Err(version)`: kept as published).
#[allow(clippy::type_complexity)]
fn index_role(
    ctx: &Ctx,
    state: &PublishedState,
    inv: &Inventory,
) -> Result<(String, Result<SignedFile, NonZeroU64>), RepoError> {
    let index_role = CpanRole::Index.name();
    let index_payload = build::leaf_targets(
        state.next_version(&index_role)?,
        ctx.expires(ctx.cfg.expiry.index_hours),
        &inv.index,
    );
    let index_lifetime = hours(ctx.cfg.expiry.index_hours);
    let out = match kept_version(
        ctx,
        state.load_role(&index_role)?,
        &index_payload,
        index_lifetime,
        &ctx.index_key,
    ) {
        Some(v) => Err(v),
        None => Ok(signed::sign(
            &index_role,
            &index_payload,
            &[ctx.key(&ctx.index_key)],
        )),
    };
    Ok((index_role, out))
}

/// Top-level targets: kept (`Err(version)`) or re-signed (`Ok`).
type TopTargets = Result<SignedFile, NonZeroU64>;

/// Top-level targets changes only when the set of prefixes or a delegated
/// key changes, or when it nears expiry; only then does the run need the
/// offline keys. `None` for a [`TargetsSigning::Prepare`] run (the prepared
/// file, if one was needed, is in the report).
fn top_targets_role(
    ctx: &Ctx,
    state: &PublishedState,
    claimed: &[AuthorDelegation],
    prefixes: impl IntoIterator<Item = AuthorPrefix>,
    targets: &TargetsSigning,
    report: &mut PublishReport,
) -> Result<Option<TopTargets>, RepoError> {
    let top = top_targets_payload_with(ctx, state, claimed, prefixes)?;
    let keep_top = match &state.current {
        Some(cur) => {
            let old = cur.targets()?.unverified();
            let half = hours(ctx.cfg.expiry.targets_hours) / 2;
            (build::same_content(old, &top) && old.expires - ctx.now > half).then_some(old.version)
        }
        None => None,
    };
    let Some(v) = keep_top else {
        let root = state.root.unverified();
        let f = match targets {
            TargetsSigning::Keys => signed_top_targets(ctx, state, root, &top)?,
            TargetsSigning::Prepare => {
                report.prepared_targets = Some(signed::sign("targets", &top, &[]));
                return Ok(None);
            }
            TargetsSigning::Signed(bytes) => prepared_targets(ctx, root, &top, bytes)?,
        };
        report.targets_resigned = true;
        return Ok(Some(Ok(f)));
    };
    match targets {
        // Nothing to prepare, and a prepare run never publishes.
        TargetsSigning::Prepare => {
            report.warnings.push(
                "the top-level targets role needs no change: nothing to prepare (run `publish` \
                 without --prepare-targets)"
                    .into(),
            );
            return Ok(None);
        }
        TargetsSigning::Signed(_) => report.warnings.push(
            "the top-level targets role needs no change: the prepared targets file was not used"
                .into(),
        ),
        TargetsSigning::Keys => {}
    }
    Ok(Some(Err(v)))
}

/// Top-level targets signed with the targets keys given to this run.
fn signed_top_targets(
    ctx: &Ctx,
    state: &PublishedState,
    root: &Root,
    top: &Targets,
) -> Result<SignedFile, RepoError> {
    let signers = ctx
        .top_signers(root, "targets")
        .map_err(|e| match (&state.current, e) {
            (Some(_), RepoError::MissingKey { .. }) => RepoError::NeedsTargetsKeys {
                what: "the prefix delegations, the claimed authors or delegated keys changed, or \
                       targets nears expiry"
                    .into(),
            },
            (_, e) => e,
        })?;
    let f = signed::sign("targets", top, &signers);
    signed::check::<Targets>(&f, Authority::of_root(root, "targets"))?;
    Ok(f)
}

/// The next snapshot's list, and the roles signed for it.
struct SnapshotList {
    /// Every role and its version.
    meta: BTreeMap<String, NonZeroU64>,
    /// Signed in this run (including top-level targets and retired bins).
    roles: Vec<SignedFile>,
}

/// Every role with its version: those signed now, those kept, claimed
/// authors' own roles as published, and retired bins. Bins no longer
/// delegated (the author was claimed, or re-binned with more bits) stay in
/// the snapshot, emptied (spec 5.5.5).
fn snapshot_list(
    ctx: &Ctx,
    state: &PublishedState,
    claimed: &BTreeMap<PauseId, AuthorDelegation>,
    mut roles: Roles,
    top: TopTargets,
    report: &mut PublishReport,
) -> Result<SnapshotList, RepoError> {
    let mut meta: BTreeMap<String, NonZeroU64> = BTreeMap::new();
    match top {
        Ok(f) => {
            meta.insert("targets".into(), f.version);
            roles.roles.push(f);
        }
        Err(v) => {
            meta.insert("targets".into(), v);
        }
    }
    for f in &roles.roles {
        meta.insert(f.role.clone(), f.version);
    }
    report.roles_unchanged = roles.unchanged.len();
    meta.extend(roles.unchanged);
    for id in claimed.keys() {
        for (_, f) in claimed_roles(state, id)? {
            meta.insert(f.role, f.version);
        }
    }
    let mut roles = roles.roles;
    for (role, out) in retired_bins(ctx, state, |r| !meta.contains_key(r))? {
        match out {
            Ok(f) => {
                meta.insert(role, f.version);
                roles.push(f);
            }
            Err(v) => {
                meta.insert(role, v);
            }
        }
    }
    Ok(SnapshotList { meta, roles })
}

/// Phase "write": snapshot and timestamp added, then everything written in
/// the crash-safe order ([`publish::write`]).
fn write_all(
    ctx: &Ctx,
    state: &PublishedState,
    inv: &Inventory,
    twins: Vec<CpanPath>,
    list: SnapshotList,
    progress: &dyn Progress,
    report: &mut PublishReport,
) -> Result<Publication, RepoError> {
    let mut publication = finish(
        ctx,
        state,
        list.roles,
        inv_entries(inv),
        None,
        SnapshotRoles::Full(list.meta),
    )?;
    publication.existing_twins = Some(twins.into_iter().collect());
    progress.phase(
        "writing",
        (publication.twins.len() + publication.roles.len()) as u64,
    );
    report.write = publish::write(&ctx.mirror, &publication, ctx.cfg.fsync, &|| {
        progress.step()
    })?;
    Ok(publication)
}

/// Phase "prune": metadata versions and twins the new timestamp no longer
/// names, once past the retention time.
fn prune(
    ctx: &Ctx,
    inv: &Inventory,
    mut publication: Publication,
) -> Result<publish::PruneStats, RepoError> {
    let retention = std::time::Duration::from_secs(u64::from(ctx.cfg.retention_hours) * 3600);
    let current: HashMap<CpanPath, String> = inv_entries(inv)
        .into_iter()
        .map(|e| {
            let h = e.sha256_hex();
            (e.path, h)
        })
        .collect();
    // What the new timestamp names: its snapshot, and that snapshot's roles.
    let snap = publication
        .snapshot
        .as_ref()
        .expect("a publish writes a snapshot")
        .envelope::<cpantuf_core::metadata::Snapshot>()?;
    let mut named: BTreeMap<String, u64> = snap
        .unverified()
        .meta
        .iter()
        .filter_map(|(k, m)| Some((k.strip_suffix(".json")?.to_owned(), m.version.get())))
        .collect();
    named.insert("snapshot".into(), snap.unverified().version.get());
    let metadata = publish::prune_metadata(&ctx.mirror.tuf_dir(), retention, &named)?;
    let twins = publication.existing_twins.take().unwrap_or_default();
    let twins = publish::prune_twins(&ctx.mirror, &current, &twins, retention)?;
    Ok(publish::PruneStats { metadata, twins })
}

/// One author's part of a full publish.
struct AuthorOut {
    delegation: AuthorDelegation,
    /// Roles re-signed: the author role and, if binned, its bins.
    files: Vec<SignedFile>,
    /// Roles kept at their published version because nothing changed.
    unchanged: Vec<(String, NonZeroU64)>,
    claimed: bool,
    warnings: Vec<String>,
}

/// A claimed author in a full publish: PAUSE cannot sign, so the author's
/// own file is kept; the warnings say when it expires soon (or has) and
/// which uploads (`files`, now on disk) it does not cover yet.
fn claimed_author_out(
    ctx: &Ctx,
    state: &PublishedState,
    c: &AuthorDelegation,
    files: &[FileEntry],
    depth: usize,
) -> Result<AuthorOut, RepoError> {
    let id = &c.id;
    let published = claimed_roles(state, id)?;
    let window = hours(ctx.cfg.expiry.claimed_author_warn_hours);
    let mut warnings: Vec<String> = published
        .iter()
        .filter_map(|(env, f)| {
            let expires = env.unverified().expires;
            ClaimedExpiry::check(id, &f.role, f.version.get(), expires, ctx.now, window)
        })
        .map(|w| w.to_string())
        .collect();
    let listed: BTreeMap<String, cpantuf_core::metadata::TargetFile> = published
        .iter()
        .flat_map(|(env, _)| env.unverified().targets.clone())
        .collect();
    let unsigned = files
        .iter()
        .filter(|e| listed.get(e.path.as_str()) != Some(&build::target_file(e)))
        .count();
    if unsigned > 0 {
        warnings.push(format!(
            "claimed author {id}: {unsigned} file(s) not (yet) signed by the author"
        ));
    }
    Ok(AuthorOut {
        delegation: AuthorDelegation {
            id: id.clone(),
            key: c.key.clone(),
            depth: depth.max(c.depth),
        },
        files: Vec::new(),
        unchanged: Vec::new(),
        claimed: true,
        warnings,
    })
}

/// Checks a prepared, co-signed top-level targets file against what this
/// run needs (`top`): the same delegations and targets, the next version,
/// not expired, and the threshold of the root's targets keys.
pub(super) fn prepared_targets(
    ctx: &Ctx,
    root: &Root,
    top: &Targets,
    bytes: &[u8],
) -> Result<SignedFile, RepoError> {
    let file = SignedFile {
        role: "targets".into(),
        version: top.version,
        bytes: bytes.to_vec(),
    };
    let env = file.envelope::<Targets>()?;
    let t = env.unverified();
    let stale = |why: String| RepoError::PreparedTargetsStale { why };
    if t.version != top.version {
        return Err(stale(format!(
            "it is version {}, the repository needs version {}",
            t.version, top.version
        )));
    }
    if !build::same_content(t, top) {
        return Err(stale(
            "its delegations differ from what the mirror needs now (authors or keys changed \
             since it was prepared)"
                .into(),
        ));
    }
    if t.expires <= ctx.now {
        return Err(stale(format!("it expired at {}", t.expires)));
    }
    let authority = Authority::of_root(root, "targets");
    let have = signed::valid_signatures::<Targets>(&file, authority)?;
    if have < authority.threshold.get() {
        return Err(RepoError::PendingBelowThreshold {
            role: "targets".into(),
            version: t.version.get(),
            have,
            needed: authority.threshold.get(),
        });
    }
    signed::check::<Targets>(&file, authority)?;
    Ok(file)
}
