//! The operations `cpantuf-sign` exposes, over [`Ctx`].
//!
//! Every operation follows the same shape: take the lock, read the
//! published state, build and sign the whole change in memory, check it,
//! then hand one [`Publication`] to [`publish::write`]. An error anywhere
//! before the write leaves the disk untouched.

use super::audit::ClaimedExpiry;
use super::build::{self, AuthorDelegation};
use super::ceremony::RootReview;
use super::config::{hours, KeyRing, SignerConfig};
use super::mirror::{FileEntry, Inventory, Mirror};
use super::publish::{self, Publication, WriteStats};
use super::signed::{self, SignedFile};
use super::state::{version_after, PublishedState};
use super::RepoError;
use chrono::{DateTime, Utc};
use cpantuf_core::cpan::{owner, AuthorPrefix, CpanPath, CpanRole, Owner, PauseId};
use cpantuf_core::crypto::{compute_keyid, Ed25519Signer};
use cpantuf_core::metadata::{Key, KeyId, MetaFile, Root, Targets, Timestamp};
use cpantuf_core::verify::Authority;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroU64;
use std::time::Instant;

/// Progress reporting for long work; the CLI drives a progress bar with it.
pub trait Progress: Sync {
    /// A new phase of `total` steps begins.
    fn phase(&self, name: &str, total: u64);
    /// One step of the current phase is done.
    fn step(&self);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _: &str, _: u64) {}
    fn step(&self) {}
}

/// What a run works with: the mirror, the configuration, the keys it holds
/// and the one "now" every expiry of the run is computed from.
pub struct Ctx {
    /// The mirror.
    pub mirror: Mirror,
    /// The configuration.
    pub cfg: SignerConfig,
    /// Every key loaded for this run (online keys plus any `--key`).
    pub keys: KeyRing,
    /// Key id of the index key.
    pub index_key: KeyId,
    /// Key id of the registry (prefix roles) key.
    pub registry_key: KeyId,
    /// Key id of PAUSE's author key.
    pub authors_key: KeyId,
    /// The reference time of this run.
    pub now: DateTime<Utc>,
}

impl Ctx {
    /// Opens the mirror, loads the online keys and adds `extra` keys
    /// (offline keys given for this run).
    pub fn new(
        cfg: SignerConfig,
        extra: Vec<Ed25519Signer>,
        now: DateTime<Utc>,
    ) -> Result<Self, RepoError> {
        let mirror = Mirror::open(&cfg.mirror)?;
        let load = |p: &std::path::Path| super::config::load_signer(p, None);
        let index = load(&cfg.online_keys.index)?;
        let registry = load(&cfg.online_keys.registry)?;
        let authors = load(&cfg.online_keys.authors)?;
        let mut keys = KeyRing::new();
        let index_key = keys.add(index).clone();
        let registry_key = keys.add(registry).clone();
        let authors_key = keys.add(authors).clone();
        keys.add(load(&cfg.online_keys.timestamp)?);
        keys.add(load(&cfg.online_keys.snapshot)?);
        for k in extra {
            keys.add(k);
        }
        Ok(Ctx {
            mirror,
            cfg,
            keys,
            index_key,
            registry_key,
            authors_key,
            now,
        })
    }

    fn key(&self, id: &KeyId) -> &Ed25519Signer {
        self.keys.get(id).expect("online keys are loaded in new()")
    }

    fn state(&self) -> Result<PublishedState, RepoError> {
        PublishedState::load(&self.mirror.tuf_dir(), self.mirror.root())
    }

    /// Signers for a top-level role, as many as its threshold needs.
    fn top_signers(&self, root: &Root, role: &str) -> Result<Vec<&Ed25519Signer>, RepoError> {
        let r = &root.roles[role];
        let signers = self.keys.signers_for(&r.keyids);
        if (signers.len() as u64) < r.threshold.get() {
            return Err(RepoError::MissingKey {
                role: role.to_owned(),
                needed: r.threshold.get(),
                keyids: r.keyids.iter().map(|k| short(&k.0)).collect(),
            });
        }
        Ok(signers)
    }

    fn expires(&self, h: u32) -> DateTime<Utc> {
        build::expires_in(self.now, hours(h))
    }
}

fn short(s: &str) -> String {
    s.chars().take(12).collect()
}

// ---------------------------------------------------------------- init

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

// ---------------------------------------------------------------- publish

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

/// The authors that hold their own key, from the published prefix roles.
pub(crate) fn claimed_authors(
    state: &PublishedState,
    authors_key: &KeyId,
) -> Result<BTreeMap<PauseId, AuthorDelegation>, RepoError> {
    let mut out = BTreeMap::new();
    let Some(cur) = &state.current else {
        return Ok(out);
    };
    for prefix in build::prefixes_of_top(cur.targets()?.unverified()) {
        let Some((env, _)) = state.load_role(&CpanRole::Prefix(prefix).name())? else {
            continue;
        };
        for a in build::authors_of_prefix(env.unverified()) {
            if &compute_keyid(&a.key) != authors_key {
                out.insert(a.id.clone(), a);
            }
        }
    }
    Ok(out)
}

/// Hash every file, build every role, sign, write (the full build).
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

    progress.phase("scanning", 0);
    let (paths, twins) = ctx.mirror.scan_with_twins()?;
    timer.lap("scan");
    progress.phase("hashing", paths.len() as u64);
    let entries = ctx.mirror.hash_files(paths, &|| progress.step())?;
    let inv = Inventory::from_entries(entries)?;
    timer.lap("hash");
    report.files = inv.len();

    let claimed = claimed_authors(&state, &ctx.authors_key)?;
    let authors_pub = ctx.key(&ctx.authors_key).public_key().clone();

    // Every author on disk, plus claimed authors whose directory is empty
    // (their delegation stays until revoked), plus every author with a
    // published role: an author whose files were all deleted keeps an empty
    // role, because a snapshot may never drop a role the previous one listed
    // (clients refuse that as a rollback, spec 5.5.5).
    let mut ids: BTreeSet<PauseId> = inv.authors.keys().cloned().collect();
    ids.extend(claimed.keys().cloned());
    ids.extend(state.published_authors());
    let empty = Vec::new();
    progress.phase("signing author roles", ids.len() as u64);
    let ids: Vec<PauseId> = ids.into_iter().collect();
    let outs: Vec<AuthorOut> = ids
        .par_iter()
        .map(|id| -> Result<AuthorOut, RepoError> {
            let files = inv.authors.get(id).unwrap_or(&empty);
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
            let role = CpanRole::Author(id.clone()).name();
            progress.step();
            if let Some(c) = claimed.get(id) {
                return claimed_author_out(ctx, &state, c, files, depth);
            }
            let mut old = state.load_role(&role)?;
            let targets = build::targets_of(files);
            let payloads = pause_author_payloads(
                ctx,
                &state,
                id,
                targets,
                old.as_ref().map(|(e, _)| e.unverified()),
            )?;
            let lifetime = hours(ctx.cfg.expiry.author_hours);
            let mut out = AuthorOut {
                delegation: AuthorDelegation {
                    id: id.clone(),
                    key: authors_pub.clone(),
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
                    None => {
                        out.files
                            .push(signed::sign(&name, &payload, &[ctx.key(&ctx.authors_key)]))
                    }
                }
            }
            Ok(out)
        })
        .collect::<Result<_, _>>()?;
    report.authors = outs.len();
    report.claimed_kept = outs.iter().filter(|o| o.claimed).count();

    let mut roles: Vec<SignedFile> = Vec::with_capacity(outs.len() + 1000);
    // Roles kept at their published version, for the snapshot.
    let mut unchanged: BTreeMap<String, NonZeroU64> = BTreeMap::new();
    let mut by_prefix: BTreeMap<AuthorPrefix, Vec<AuthorDelegation>> = BTreeMap::new();
    for o in outs {
        report.warnings.extend(o.warnings);
        unchanged.extend(o.unchanged);
        by_prefix
            .entry(o.delegation.id.prefix())
            .or_default()
            .push(o.delegation);
        roles.extend(o.files);
    }
    let prefix_exp = ctx.expires(ctx.cfg.expiry.prefix_hours);
    let prefix_lifetime = hours(ctx.cfg.expiry.prefix_hours);
    let prefix_files: Vec<(String, Result<SignedFile, NonZeroU64>)> = by_prefix
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
        .collect::<Result<_, RepoError>>()?;
    report.prefixes = prefix_files.len();
    for (role, out) in prefix_files {
        match out {
            Ok(f) => roles.push(f),
            Err(v) => {
                unchanged.insert(role, v);
            }
        }
    }

    let index_role = CpanRole::Index.name();
    let index_payload = build::leaf_targets(
        state.next_version(&index_role)?,
        ctx.expires(ctx.cfg.expiry.index_hours),
        &inv.index,
    );
    let index_lifetime = hours(ctx.cfg.expiry.index_hours);
    match kept_version(
        ctx,
        state.load_role(&index_role)?,
        &index_payload,
        index_lifetime,
        &ctx.index_key,
    ) {
        Some(v) => {
            unchanged.insert(index_role, v);
        }
        None => roles.push(signed::sign(
            &index_role,
            &index_payload,
            &[ctx.key(&ctx.index_key)],
        )),
    }

    // Top-level targets changes only when the set of prefixes or a
    // delegated key changes, or when it nears expiry; only then does the
    // run need the offline keys.
    let top = build::top_targets(
        state.next_version("targets")?,
        ctx.expires(ctx.cfg.expiry.targets_hours),
        ctx.key(&ctx.index_key).public_key(),
        ctx.key(&ctx.registry_key).public_key(),
        by_prefix.keys().copied(),
        ctx.cfg.prefix_depth,
    );
    let root = state.root.unverified();
    let mut meta: BTreeMap<String, NonZeroU64> = BTreeMap::new();
    let keep_top = match &state.current {
        Some(cur) => {
            let old = cur.targets()?.unverified();
            let half = hours(ctx.cfg.expiry.targets_hours) / 2;
            (build::same_content(old, &top) && old.expires - ctx.now > half).then_some(old.version)
        }
        None => None,
    };
    match keep_top {
        Some(v) => {
            meta.insert("targets".into(), v);
        }
        None => {
            let f = match &targets {
                TargetsSigning::Keys => {
                    let signers = ctx.top_signers(root, "targets").map_err(|e| {
                        match (&state.current, e) {
                            (Some(_), RepoError::MissingKey { .. }) => {
                                RepoError::NeedsTargetsKeys {
                                    what: "the prefix delegations or delegated keys changed, or \
                                           targets nears expiry"
                                        .into(),
                                }
                            }
                            (_, e) => e,
                        }
                    })?;
                    let f = signed::sign("targets", &top, &signers);
                    signed::check::<Targets>(&f, Authority::of_root(root, "targets"))?;
                    f
                }
                TargetsSigning::Prepare => {
                    report.prepared_targets = Some(signed::sign("targets", &top, &[]));
                    report.timings = timer.1;
                    return Ok(report);
                }
                TargetsSigning::Signed(bytes) => prepared_targets(ctx, root, &top, bytes)?,
            };
            meta.insert("targets".into(), f.version);
            roles.push(f);
            report.targets_resigned = true;
        }
    }
    match targets {
        // Reached only when targets needs no change: nothing to prepare, and
        // a prepare run never publishes.
        TargetsSigning::Prepare => {
            report.warnings.push(
                "the top-level targets role needs no change: nothing to prepare (run `publish` \
                 without --prepare-targets)"
                    .into(),
            );
            report.timings = timer.1;
            return Ok(report);
        }
        TargetsSigning::Signed(_) if keep_top.is_some() => report.warnings.push(
            "the top-level targets role needs no change: the prepared targets file was not used"
                .into(),
        ),
        _ => {}
    }
    for f in &roles {
        meta.insert(f.role.clone(), f.version);
    }
    report.roles_unchanged = unchanged.len();
    meta.extend(unchanged);
    for id in claimed.keys() {
        let role = CpanRole::Author(id.clone()).name();
        if let Some(v) = state.role_version(&role) {
            meta.insert(role, v);
        }
    }
    // Bins no longer delegated (the author was claimed, or re-binned with
    // more bits) stay in the snapshot, emptied (spec 5.5.5).
    for (role, out) in retired_bins(ctx, &state, |r| !meta.contains_key(r))? {
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
    report.roles_signed = roles.len();
    timer.lap("build+sign");

    let mut publication = finish(
        ctx,
        &state,
        roles,
        inv_entries(&inv),
        None,
        SnapshotRoles::Full(meta),
    )?;
    publication.existing_twins = Some(twins.into_iter().collect());
    progress.phase(
        "writing",
        (publication.twins.len() + publication.roles.len()) as u64,
    );
    report.write = publish::write(&ctx.mirror, &publication, ctx.cfg.fsync, &|| {
        progress.step()
    })?;
    timer.lap("write");

    let retention = std::time::Duration::from_secs(u64::from(ctx.cfg.retention_hours) * 3600);
    let current: HashMap<CpanPath, String> = inv_entries(&inv)
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
    report.pruned.metadata = publish::prune_metadata(&ctx.mirror.tuf_dir(), retention, &named)?;
    let twins = publication.existing_twins.take().unwrap_or_default();
    report.pruned.twins = publish::prune_twins(&ctx.mirror, &current, &twins, retention)?;
    timer.lap("prune");
    report.timings = timer.1;
    Ok(report)
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
    let published = state.load_role(&CpanRole::Author(id.clone()).name())?;
    let window = hours(ctx.cfg.expiry.claimed_author_warn_hours);
    let mut warnings: Vec<String> = published
        .iter()
        .filter_map(|(env, f)| {
            let expires = env.unverified().expires;
            ClaimedExpiry::check(id, f.version.get(), expires, ctx.now, window)
        })
        .map(|w| w.to_string())
        .collect();
    let listed = published
        .map(|(env, _)| env.unverified().targets.clone())
        .unwrap_or_default();
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
fn prepared_targets(
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

/// The published version of a PAUSE-signed role (`published`, as loaded)
/// when re-signing it would change nothing: the published file says the
/// same as `payload` (targets and delegations), is signed by `signer` (the
/// key its delegation names now), and has more than half of `lifetime` left.
/// A full publish keeps such roles, so that clients and mirrors fetch only
/// the roles that changed.
fn kept_version(
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
fn pause_author_payloads(
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
fn retired_bins(
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

fn inv_entries(inv: &Inventory) -> Vec<FileEntry> {
    inv.index
        .iter()
        .chain(inv.authors.values().flatten())
        .cloned()
        .collect()
}

/// The role list of the next snapshot, for [`finish`].
enum SnapshotRoles {
    /// Full publish: every role and its version.
    Full(BTreeMap<String, NonZeroU64>),
    /// Incremental: the published list (moved out of the state: at CPAN
    /// scale it has ~15,000 entries), to be updated with the re-signed
    /// roles' versions.
    Published(BTreeMap<String, MetaFile>),
    /// Incremental, the published snapshot having this signer's shape: the
    /// re-signed roles' versions are spliced into its bytes
    /// ([`super::snapindex`]), which are never parsed in full.
    Splice,
}

impl SnapshotRoles {
    /// The incremental list: spliced when the published snapshot is
    /// indexed, else taken out of `state` (whose parsed snapshot is left
    /// with an empty list).
    fn published(state: &mut PublishedState) -> Result<Self, RepoError> {
        let cur = state.current.as_mut().ok_or(RepoError::NotPublished)?;
        if cur.snapshot_index.is_some() {
            return Ok(Self::Splice);
        }
        Ok(Self::Published(cur.take_snapshot_meta()?))
    }
}

/// Adds snapshot and timestamp to a set of changed roles.
fn finish(
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
    // The snapshot's entries, keyed `ROLE.json` as written.
    let entry = |v: NonZeroU64| MetaFile {
        version: v,
        length: None,
        hashes: None,
    };
    // Spec 5.5.5 on the signing side: clients refuse a snapshot that drops a
    // role the previous one lists, or lowers its version; never publish one.
    let refuse = |r: cpantuf_core::trusted::SnapshotRollback<'_>| RepoError::SnapshotRollback {
        role: r.name.strip_suffix(".json").unwrap_or(r.name).to_owned(),
        published: r.old,
        new: r.new,
    };
    let snap_version = match &state.current {
        Some(c) => version_after("snapshot", c.snapshot_version())?,
        None => NonZeroU64::MIN,
    };
    let snap_expires = ctx.expires(ctx.cfg.expiry.snapshot_hours);
    let splice = matches!(list, SnapshotRoles::Splice);
    let meta: BTreeMap<String, MetaFile> = match list {
        SnapshotRoles::Splice => BTreeMap::new(),
        SnapshotRoles::Full(m) => {
            let meta = m
                .into_iter()
                .map(|(role, v)| (format!("{role}.json"), entry(v)))
                .collect();
            if let Some(cur) = &state.current {
                if let Some(r) = cpantuf_core::trusted::snapshot_rollback(
                    &cur.snapshot()?.unverified().meta,
                    &meta,
                ) {
                    return Err(refuse(r));
                }
            }
            meta
        }
        SnapshotRoles::Published(mut meta) => {
            // Every other entry is copied unchanged, so checking the
            // changed ones against what they replace checks the whole.
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
            meta
        }
    };
    let snap_signers = ctx.top_signers(root, "snapshot")?;
    let snap_authority = Authority::of_root(root, "snapshot");
    let snap_file = if splice {
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
        let canonical = ix
            .splice(&changed, snap_version, snap_expires)
            .map_err(|l| RepoError::SnapshotRollback {
                role: l.name.strip_suffix(".json").unwrap_or(&l.name).to_owned(),
                published: l.old,
                new: Some(l.new),
            })?;
        signed::sign_checked_canonical(
            "snapshot",
            snap_version,
            canonical,
            &snap_signers,
            snap_authority,
        )?
    } else {
        let snap = build::snapshot(snap_version, snap_expires, meta);
        signed::sign_checked("snapshot", &snap, &snap_signers, snap_authority)?
    };
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
    let ts_file = signed::sign_checked(
        "timestamp",
        &ts,
        &ctx.top_signers(root, "timestamp")?,
        Authority::of_root(root, "timestamp"),
    )?;
    Ok(Publication {
        twins,
        existing_twins: None,
        roles,
        root: new_root,
        snapshot: Some(snap_file),
        timestamp: Some(ts_file),
    })
}

/// Publishes re-signed `roles` over the published snapshot (their new
/// versions replace the old), with the twins of `entries`, then a new
/// snapshot and timestamp: the end of every incremental operation.
fn publish_incremental(
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

// ---------------------------------------------------------------- add

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
    let mut prefix_changes: BTreeMap<AuthorPrefix, (Option<Targets>, Vec<AuthorDelegation>)> =
        BTreeMap::new();
    for (id, files) in &inv.authors {
        let prefix = id.prefix();
        let prefix_name = CpanRole::Prefix(prefix).name();
        if let std::collections::btree_map::Entry::Vacant(slot) = prefix_changes.entry(prefix) {
            let old = state
                .load_role(&prefix_name)?
                .map(|(e, _)| e.unverified().clone());
            slot.insert((old, Vec::new()));
        }
        let (old_prefix, _) = &prefix_changes[&prefix];
        if is_claimed(ctx, old_prefix.as_ref(), id) {
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
        let uploads = build::targets_of(files);
        let author_signer = [ctx.key(&ctx.authors_key)];
        let mut old_depth = None;
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
            }
            // One leaf role, which this upload may take over the binning
            // threshold.
            None => {
                let mut listed = old.map(|t| t.targets).unwrap_or_default();
                old_depth = listed
                    .keys()
                    .filter_map(|p| CpanPath::new(p).ok())
                    .filter_map(|p| cpantuf_core::cpan::author_depth(&p))
                    .max();
                listed.extend(uploads);
                for (name, payload) in pause_author_payloads(ctx, &state, id, listed, None)? {
                    roles.push(signed::sign(&name, &payload, &author_signer));
                }
            }
        }
        let known = old_prefix
            .as_ref()
            .map(build::authors_of_prefix)
            .unwrap_or_default()
            .into_iter()
            .find(|a| &a.id == id);
        let needed_depth = depth.max(old_depth.unwrap_or(1));
        if known.as_ref().is_none_or(|a| a.depth < needed_depth) {
            prefix_changes
                .get_mut(&prefix)
                .expect("inserted above")
                .1
                .push(AuthorDelegation {
                    id: id.clone(),
                    key: ctx.key(&ctx.authors_key).public_key().clone(),
                    depth: needed_depth,
                });
        }
    }
    let mut new_prefixes = Vec::new();
    for (prefix, (old, changed)) in prefix_changes {
        if changed.is_empty() {
            continue;
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
        roles.push(signed::sign(&role, &payload, &[ctx.key(&ctx.registry_key)]));
        // Only a prefix role that changes needs the top-level targets read.
        if !build::prefixes_of_top(cur.targets()?.unverified()).contains(&prefix) {
            new_prefixes.push(prefix);
        }
    }
    if !new_prefixes.is_empty() {
        let root = state.root.unverified();
        let mut all: BTreeSet<AuthorPrefix> = build::prefixes_of_top(cur.targets()?.unverified())
            .into_iter()
            .collect();
        all.extend(new_prefixes.iter().copied());
        let top = build::top_targets(
            state.next_version("targets")?,
            ctx.expires(ctx.cfg.expiry.targets_hours),
            ctx.key(&ctx.index_key).public_key(),
            ctx.key(&ctx.registry_key).public_key(),
            all,
            ctx.cfg.prefix_depth,
        );
        let signers =
            ctx.top_signers(root, "targets")
                .map_err(|_| RepoError::NeedsTargetsKeys {
                    what: format!("new author prefix {}", new_prefixes[0]),
                })?;
        let f = signed::sign("targets", &top, &signers);
        signed::check::<Targets>(&f, Authority::of_root(root, "targets"))?;
        roles.push(f);
    }
    if !inv.index.is_empty() {
        roles.push(index_update(ctx, &state, &inv.index, &[])?);
    }
    publish_incremental(ctx, state, roles, inv_entries(&inv))
}

/// Re-signs the roles that list `paths` without them, after the files were
/// deleted from the mirror (an author deleted a release, PAUSE dropped an
/// index file): the author role, or for a binned author the bins that list
/// them, or the index role; then snapshot and timestamp. Refused, with
/// nothing published: a file still on the mirror, a path no role lists, a
/// claimed author's file (their own `author sign` drops it).
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
        if is_claimed(ctx, prefix.as_ref(), &id) {
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

/// Whether `id` holds their own key: `prefix` (their published prefix
/// role) delegates to them with a key other than PAUSE's.
fn is_claimed(ctx: &Ctx, prefix: Option<&Targets>, id: &PauseId) -> bool {
    prefix.is_some_and(|t| {
        build::authors_of_prefix(t)
            .iter()
            .any(|a| &a.id == id && compute_keyid(&a.key) != ctx.authors_key)
    })
}

/// The index role with `updated` entries set and `removed` dropped (each
/// must be listed).
fn index_update(
    ctx: &Ctx,
    state: &PublishedState,
    updated: &[FileEntry],
    removed: &[String],
) -> Result<SignedFile, RepoError> {
    let role = CpanRole::Index.name();
    let mut payload = match state.load_role(&role)? {
        Some((env, _)) => env.unverified().clone(),
        None => build::leaf_targets(NonZeroU64::MIN, ctx.now, []),
    };
    for r in removed {
        payload
            .targets
            .remove(r)
            .ok_or_else(|| RepoError::NotListed {
                path: r.clone(),
                role: role.clone(),
            })?;
    }
    payload.targets.extend(build::targets_of(updated));
    payload.version = state.next_version(&role)?;
    payload.expires = ctx.expires(ctx.cfg.expiry.index_hours);
    Ok(signed::sign(&role, &payload, &[ctx.key(&ctx.index_key)]))
}

/// Re-signs the index role after PAUSE rewrote its files: every file it
/// lists is hashed again (vanished ones are dropped), and new files in
/// `modules/` and directly in `authors/` are added.
pub fn index(ctx: &Ctx) -> Result<AddReport, RepoError> {
    let _lock = ctx.mirror.lock()?;
    let state = ctx.state()?;
    state.current()?;
    let listed: Vec<String> = state
        .load_role(&CpanRole::Index.name())?
        .map(|(e, _)| e.unverified().targets.keys().cloned().collect())
        .unwrap_or_default();
    let mut paths: BTreeSet<CpanPath> = BTreeSet::new();
    let mut removed = Vec::new();
    for p in listed {
        let cp = CpanPath::new(&p).map_err(|source| RepoError::BadPath {
            path: p.clone(),
            source,
        })?;
        if ctx.mirror.file(&cp).exists() {
            paths.insert(cp);
        } else {
            removed.push(p);
        }
    }
    for top in ["modules", "authors"] {
        let dir = ctx.mirror.root().join(top);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd {
            let entry = entry.map_err(RepoError::io(&dir))?;
            let ft = entry.file_type().map_err(RepoError::io(entry.path()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if ft.is_symlink() {
                return Err(RepoError::Symlink { path: entry.path() });
            }
            if ft.is_file() && !super::mirror::is_signer_file(name) {
                let rel = format!("{top}/{name}");
                let cp = CpanPath::new(&rel).map_err(|source| RepoError::BadPath {
                    path: rel.clone(),
                    source,
                })?;
                paths.insert(cp);
            }
        }
    }
    let entries: Vec<FileEntry> = paths
        .into_iter()
        .map(|p| ctx.mirror.hash_file(p))
        .collect::<Result<_, _>>()?;
    for e in &entries {
        if owner(&e.path)? != Owner::Index {
            return Err(RepoError::NotOwnedBy {
                path: e.path.to_string(),
                owner: "an author".into(),
                role: "index".into(),
            });
        }
    }
    let f = index_update(ctx, &state, &entries, &removed)?;
    publish_incremental(ctx, state, vec![f], entries)
}

/// Signs a fresh timestamp for the current snapshot (cron).
pub fn timestamp(ctx: &Ctx) -> Result<SignedFile, RepoError> {
    let _lock = ctx.mirror.lock()?;
    let state = ctx.state()?;
    let cur = state.current()?;
    let root = state.root.unverified();
    let old = cur.timestamp.unverified();
    let ts = build::timestamp(
        version_after("timestamp", old.version)?,
        ctx.expires(ctx.cfg.expiry.timestamp_hours),
        cur.snapshot_version(),
        &cur.snapshot_bytes,
    );
    let f = signed::sign("timestamp", &ts, &ctx.top_signers(root, "timestamp")?);
    signed::check::<Timestamp>(&f, Authority::of_root(root, "timestamp"))?;
    let publication = Publication {
        timestamp: Some(f.clone()),
        ..Default::default()
    };
    publish::write(&ctx.mirror, &publication, ctx.cfg.fsync, &|| {})?;
    Ok(f)
}

// ---------------------------------------------------------------- authors

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
/// registered key.
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
) -> Result<AddReport, RepoError> {
    let _lock = ctx.mirror.lock()?;
    let state = ctx.state()?;
    state.current()?;
    let role = CpanRole::Author(id.clone()).name();
    let prefix_role = CpanRole::Prefix(id.prefix()).name();
    let mut authors = state
        .load_role(&prefix_role)?
        .map(|(e, _)| build::authors_of_prefix(e.unverified()))
        .unwrap_or_default();
    let registered = authors.iter().find(|a| &a.id == id).cloned();
    let key = match (&claim_key, &registered) {
        (Some(k), _) => k.clone(),
        (None, Some(a)) if compute_keyid(&a.key) != ctx.authors_key => a.key.clone(),
        (None, Some(_)) => return Err(RepoError::AuthorNotClaimed { author: id.clone() }),
        (None, None) => return Err(RepoError::UnknownAuthor { author: id.clone() }),
    };
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
    let needs_prefix = match &registered {
        None => true,
        Some(a) => a.key != key || a.depth < depth,
    };
    if needs_prefix {
        if !build::prefixes_of_top(state.current()?.targets()?.unverified()).contains(&id.prefix())
        {
            return Err(RepoError::NeedsTargetsKeys {
                what: format!("new author prefix {}", id.prefix()),
            });
        }
        register_author(&mut authors, id, &key, depth);
        let payload = build::prefix_targets(
            state.next_version(&prefix_role)?,
            ctx.expires(ctx.cfg.expiry.prefix_hours),
            &authors,
        );
        roles.push(signed::sign(
            &prefix_role,
            &payload,
            &[ctx.key(&ctx.registry_key)],
        ));
    }
    publish_incremental(ctx, state, roles, entries)
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
    // The author's key, and only it, must have signed (spec 5.7.x: a
    // delegated role is verified with the keys its delegator lists).
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
    )?;
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
            max: super::config::hours_in_words(max_hours),
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
            return Err(RepoError::VersionNotIncreased {
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
    let prefix_role = CpanRole::Prefix(id.prefix()).name();
    let prefix = state
        .load_role(&prefix_role)?
        .map(|(e, _)| e.unverified().clone())
        .ok_or_else(|| RepoError::UnknownAuthor { author: id.clone() })?;
    let mut authors = build::authors_of_prefix(&prefix);
    let a = authors
        .iter_mut()
        .find(|a| &a.id == id)
        .ok_or_else(|| RepoError::UnknownAuthor { author: id.clone() })?;
    if compute_keyid(&a.key) == ctx.authors_key {
        return Err(RepoError::AuthorNotClaimed { author: id.clone() });
    }
    a.key = ctx.key(&ctx.authors_key).public_key().clone();
    let entries = author_files(ctx, id)?;
    a.depth = a.depth.max(build::depth_of(&entries));
    let targets = build::targets_of(&entries);
    let mut roles: Vec<SignedFile> = pause_author_payloads(ctx, &state, id, targets, None)?
        .into_iter()
        .map(|(name, payload)| signed::sign(&name, &payload, &[ctx.key(&ctx.authors_key)]))
        .collect();
    let prefix_payload = build::prefix_targets(
        state.next_version(&prefix_role)?,
        ctx.expires(ctx.cfg.expiry.prefix_hours),
        &authors,
    );
    let prefix_file = signed::sign(&prefix_role, &prefix_payload, &[ctx.key(&ctx.registry_key)]);
    roles.push(prefix_file);
    publish_incremental(ctx, state, roles, entries)
}

// ---------------------------------------------------------------- root

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
