//! `verify` and `status`: reading a published repository back.
//!
//! [`verify`] audits a repository the way a client that trusts one root
//! would see it, but exhaustively: every root version in the chain, every
//! role in the snapshot, every signature (with [`cpantuf_core::verify`], the same
//! threshold code the client runs), every target path against the
//! delegations that lead to it, and every file's length and hash on disk,
//! plus its hash-named twin. It lists problems instead of stopping at the
//! first.

use super::mirror::{twin_path, Mirror};
use super::state::read_role;
use super::RepoError;
use chrono::{DateTime, Utc};
use cpantuf_core::cpan::{CpanPath, PauseId};
use cpantuf_core::delegation::PathIndex;
use cpantuf_core::metadata::{Delegations, Envelope, RoleMeta, Root, Snapshot, Targets, Timestamp};
use cpantuf_core::verify::{check_threshold, Authority};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

/// One thing wrong with a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file or role concerned.
    pub subject: String,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.subject, self.what)
    }
}

/// What the audit covered.
#[derive(Clone, Debug, Default)]
pub struct AuditReport {
    /// The problems found; empty means the repository is sound.
    pub problems: Vec<Problem>,
    /// Root version trusted at the end of the chain.
    pub root_version: u64,
    /// Roles whose signatures were checked.
    pub roles_checked: usize,
    /// Target files checked on disk.
    pub files_checked: usize,
    /// Empty hash bins no longer delegated to (kept in the snapshot).
    pub roles_retired: usize,
}

struct Audit {
    problems: Vec<Problem>,
}

impl Audit {
    fn problem(&mut self, subject: impl Into<String>, what: impl Into<String>) {
        self.problems.push(Problem {
            subject: subject.into(),
            what: what.into(),
        });
    }

    fn expiry<T: RoleMeta>(&mut self, name: &str, t: &T, now: DateTime<Utc>) {
        // Spec 5.3.10, 5.4.4, 5.5.6, 5.6.6: expired metadata is refused.
        if t.is_expired(now) {
            self.problem(name, format!("expired at {}", t.expires()));
        }
    }
}

fn load<T: RoleMeta + for<'de> serde::Deserialize<'de>>(
    a: &mut Audit,
    path: &Path,
) -> Option<(Envelope<T>, Vec<u8>)> {
    match read_role::<T>(path) {
        Ok(x) => Some(x),
        Err(e) => {
            a.problem(
                path.file_name()
                    .map_or("?".into(), |n| n.to_string_lossy().into_owned()),
                e.to_string(),
            );
            None
        }
    }
}

/// Audits the repository in `mirror` from `trusted_root` (the bytes of a
/// root the auditor trusts, normally `1.root.json` kept offline).
pub fn verify(
    mirror: &Mirror,
    trusted_root: &[u8],
    now: DateTime<Utc>,
) -> Result<AuditReport, RepoError> {
    let tuf = mirror.tuf_dir();
    let mut a = Audit {
        problems: Vec::new(),
    };
    let mut report = AuditReport::default();
    let root: Envelope<Root> =
        Envelope::from_bytes(trusted_root).map_err(|source| RepoError::Metadata {
            file: "trusted root".into(),
            source,
        })?;
    let root = walk_root_chain(&mut a, &tuf, root);
    report.root_version = root.unverified().version.get();
    // The chain walk above may have reported a root file already.
    for p in check_retained_metadata(&tuf, report.root_version)? {
        if !a.problems.contains(&p) {
            a.problems.push(p);
        }
    }
    report.roles_checked += 1;
    a.expiry("root", root.unverified(), now);
    let root = root.unverified().clone();
    let Some(versions) = snapshot_versions(&mut a, &tuf, &root, now, &mut report) else {
        report.problems = a.problems;
        return Ok(report);
    };
    let walk = walk_delegations(&mut a, &tuf, &root, &versions, now, &mut report);
    check_unreached_roles(&mut a, &tuf, &versions, &walk.seen, &mut report);
    check_mirror_files(&mut a, mirror, &walk, &mut report)?;
    report.problems = a.problems;
    Ok(report)
}

/// Spec 5.3: walks N+1.root.json from `root` while it exists; each must be
/// signed by a threshold of the previous root's root keys and of its own,
/// and carry exactly version N+1. Returns the last root trusted.
fn walk_root_chain(a: &mut Audit, tuf: &Path, mut root: Envelope<Root>) -> Envelope<Root> {
    while let Some(next) = root.unverified().version.get().checked_add(1) {
        let path = tuf.join(format!("{next}.root.json"));
        if !path.exists() {
            break;
        }
        let Some((new, _)) = load::<Root>(a, &path) else {
            break;
        };
        let name = format!("{next}.root.json");
        if let Err(e) = check_threshold(&name, &new, Authority::of_root(root.unverified(), "root"))
        {
            a.problem(
                &name,
                format!("not signed by the previous root's keys: {e}"),
            );
            break;
        }
        if let Err(e) = check_threshold(&name, &new, Authority::of_root(new.unverified(), "root")) {
            a.problem(&name, format!("not signed by its own root keys: {e}"));
            break;
        }
        if new.unverified().version.get() != next {
            a.problem(
                &name,
                format!("claims version {}", new.unverified().version),
            );
            break;
        }
        root = new;
    }
    root
}

/// Timestamp and the snapshot it names, checked; the role versions that
/// snapshot lists, or `None` if either file could not be read.
fn snapshot_versions(
    a: &mut Audit,
    tuf: &Path,
    root: &Root,
    now: DateTime<Utc>,
    report: &mut AuditReport,
) -> Option<BTreeMap<String, u64>> {
    let (ts, _) = load::<Timestamp>(a, &tuf.join("timestamp.json"))?;
    if let Err(e) = check_threshold("timestamp", &ts, Authority::of_root(root, "timestamp")) {
        a.problem("timestamp.json", e.to_string());
    }
    a.expiry("timestamp", ts.unverified(), now);
    report.roles_checked += 1;
    let sm = ts.unverified().snapshot_meta().clone();
    let snap_name = format!("{}.snapshot.json", sm.version);
    let (snap, snap_bytes) = load::<Snapshot>(a, &tuf.join(&snap_name))?;
    // Spec 5.5.2: the snapshot must match the timestamp's length and hashes.
    if sm.length.is_some_and(|l| l != snap_bytes.len() as u64) {
        a.problem(&snap_name, "length differs from the timestamp's");
    }
    if let Some(h) = sm.hashes.as_ref().and_then(|h| h.get("sha256")) {
        if *h != hex::encode(Sha256::digest(&snap_bytes)) {
            a.problem(&snap_name, "sha256 differs from the timestamp's");
        }
    }
    if let Err(e) = check_threshold("snapshot", &snap, Authority::of_root(root, "snapshot")) {
        a.problem(&snap_name, e.to_string());
    }
    if snap.unverified().version != sm.version {
        a.problem(&snap_name, "version differs from the timestamp's");
    }
    a.expiry("snapshot", snap.unverified(), now);
    report.roles_checked += 1;
    Some(
        snap.unverified()
            .meta
            .iter()
            .filter_map(|(k, v)| Some((k.strip_suffix(".json")?.to_owned(), v.version.get())))
            .collect(),
    )
}

/// What the walk of the delegation tree found.
struct Walk {
    /// Roles reached.
    seen: BTreeSet<String>,
    /// Every target listed by a role that a client would look it up in.
    targets_found: Vec<(CpanPath, cpantuf_core::metadata::TargetFile)>,
    /// The paths of those targets.
    listed_paths: BTreeSet<CpanPath>,
}

/// A role queued in the walk, with the chain of delegations that leads to
/// it: to check that a client's search for each of its targets really
/// reaches it.
struct Node {
    name: String,
    chain: Vec<(Arc<DelegIndex>, String)>,
}

/// Walks the delegation tree breadth first from top-level targets,
/// checking each role's signatures, version and expiry and each target's
/// path.
fn walk_delegations(
    a: &mut Audit,
    tuf: &Path,
    root: &Root,
    versions: &BTreeMap<String, u64>,
    now: DateTime<Utc>,
    report: &mut AuditReport,
) -> Walk {
    let mut queue = VecDeque::from([Node {
        name: "targets".into(),
        chain: Vec::new(),
    }]);
    let mut walk = Walk {
        seen: BTreeSet::new(),
        targets_found: Vec::new(),
        listed_paths: BTreeSet::new(),
    };
    while let Some(node) = queue.pop_front() {
        if !walk.seen.insert(node.name.clone()) {
            continue;
        }
        let Some(&v) = versions.get(&node.name) else {
            a.problem(&node.name, "delegated but not listed in snapshot");
            continue;
        };
        let file = format!("{v}.{}.json", node.name);
        let Some((env, _)) = load::<Targets>(a, &tuf.join(&file)) else {
            continue;
        };
        check_delegated_role(a, root, &node, &file, &env, v, now);
        report.roles_checked += 1;
        let t = env.unverified();
        check_role_targets(a, &node, &file, t, &mut walk);
        queue.extend(children(&node, t));
    }
    walk
}

/// One role's signatures (against the delegation that leads to it), the
/// version snapshot lists (`v`, spec 5.6.3 / 5.7) and its expiry.
fn check_delegated_role(
    a: &mut Audit,
    root: &Root,
    node: &Node,
    file: &str,
    env: &Envelope<Targets>,
    v: u64,
    now: DateTime<Utc>,
) {
    let auth = match node.chain.last() {
        None => Some(Authority::of_root(root, "targets")),
        Some((parent, _)) => parent
            .delegations
            .as_ref()
            .and_then(|d| d.authority_for(&node.name)),
    };
    match auth {
        Some(auth) => {
            if let Err(e) = check_threshold(&node.name, env, auth) {
                a.problem(file, e.to_string());
            }
        }
        None => a.problem(file, "no delegation to this role"),
    }
    if env.unverified().version.get() != v {
        a.problem(
            file,
            format!(
                "claims version {}, snapshot says {v}",
                env.unverified().version
            ),
        );
    }
    a.expiry(&node.name, env.unverified(), now);
}

/// Each target a role lists: one a client would look up in this role, a
/// CPAN path, listed by no other role.
fn check_role_targets(a: &mut Audit, node: &Node, file: &str, t: &Targets, walk: &mut Walk) {
    for (path, info) in &t.targets {
        if !reachable(&node.name, &node.chain, path) {
            a.problem(
                file,
                format!("lists {path:?}, which a client would not look up in this role"),
            );
            continue;
        }
        match CpanPath::new(path) {
            Ok(p) => {
                if !walk.listed_paths.insert(p.clone()) {
                    a.problem(path.as_str(), "listed by more than one role");
                }
                walk.targets_found.push((p, info.clone()));
            }
            Err(e) => a.problem(path.as_str(), format!("not a CPAN path: {e}")),
        }
    }
}

/// The roles `t` (the role of `node`) delegates to: its ordered
/// delegations, or every succinct hash bin (ADR 0006).
fn children(node: &Node, t: &Targets) -> Vec<Node> {
    let Some(d) = &t.delegations else {
        return Vec::new();
    };
    let index = Arc::new(DelegIndex::new(t));
    let names: Vec<String> = match (&d.roles, &d.succinct_roles) {
        (Some(roles), _) => roles.iter().map(|r| r.name.clone()).collect(),
        (None, Some(s)) => s.bin_names().collect(),
        (None, None) => Vec::new(),
    };
    names
        .into_iter()
        .map(|name| {
            let mut chain = node.chain.clone();
            chain.push((index.clone(), name.clone()));
            Node { name, chain }
        })
        .collect()
}

/// Roles the snapshot lists that the walk did not reach. A retired hash
/// bin (its author was claimed or re-binned) stays listed, empty, because a
/// snapshot may never drop a role (spec 5.5.5). No client reaches it;
/// anything else unreached is a fault.
fn check_unreached_roles(
    a: &mut Audit,
    tuf: &Path,
    versions: &BTreeMap<String, u64>,
    seen: &BTreeSet<String>,
    report: &mut AuditReport,
) {
    for (name, v) in versions {
        if seen.contains(name) {
            continue;
        }
        let retired = matches!(
            cpantuf_core::cpan::CpanRole::from_name(name),
            Ok(cpantuf_core::cpan::CpanRole::AuthorBin(..))
        ) && read_role::<Targets>(&tuf.join(format!("{v}.{name}.json")))
            .is_ok_and(|(env, _)| super::build::is_empty_role(env.unverified()));
        if retired {
            report.roles_retired += 1;
        } else {
            a.problem(name, "listed in snapshot but not delegated");
        }
    }
}

/// Every target's bytes, and its twin (spec 5.7.3: clients fetch the
/// hash-named file under consistent snapshots); files nobody signed; every
/// other twin on disk (retained versions, twins of removed files) against
/// the hash in its name: clients on a previous snapshot fetch them.
fn check_mirror_files(
    a: &mut Audit,
    mirror: &Mirror,
    walk: &Walk,
    report: &mut AuditReport,
) -> Result<(), RepoError> {
    let file_problems: Vec<Problem> = walk
        .targets_found
        .par_iter()
        .flat_map_iter(|(p, info)| check_file(mirror, p, info))
        .collect();
    report.files_checked = walk.targets_found.len();
    a.problems.extend(file_problems);
    let (files, twins) = mirror.scan_with_twins()?;
    for p in &files {
        if !walk.listed_paths.contains(p) {
            a.problem(p.as_str(), "on the mirror but listed by no role");
        }
    }
    let checked: std::collections::HashSet<CpanPath> = walk
        .targets_found
        .iter()
        .filter_map(|(p, info)| Some(twin_path(p, info.hashes.get("sha256")?)))
        .collect();
    let on_disk: std::collections::HashSet<&CpanPath> = files.iter().collect();
    let twin_problems: Vec<Problem> = twins
        .par_iter()
        .filter(|t| !checked.contains(*t))
        .filter_map(|t| check_twin(mirror, t, &on_disk))
        .collect();
    a.problems.extend(twin_problems);
    Ok(())
}

/// What a metadata file's name promises: version and type.
#[derive(serde::Deserialize)]
struct Head {
    signed: HeadSigned,
}

#[derive(serde::Deserialize)]
struct HeadSigned {
    #[serde(rename = "_type")]
    kind: String,
    version: u64,
}

/// Every `N.ROLE.json` in `tuf/`, current or retained, is version N of a
/// role of that type: the signer never rewrites a published file, so a
/// file whose content disagrees with its name was written by something
/// else, and a client or mirror fetching that name gets what the name does
/// not promise. And `root.json` is the newest root (`root_version`), byte
/// for byte. Signatures of retained versions are not checked: they may be
/// by keys since rotated out.
fn check_retained_metadata(tuf: &Path, root_version: u64) -> Result<Vec<Problem>, RepoError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(tuf).map_err(RepoError::io(tuf))? {
        let entry = entry.map_err(RepoError::io(tuf))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((v, role)) = name.strip_suffix(".json").and_then(|s| s.split_once('.')) else {
            continue;
        };
        if let Ok(v) = v.parse::<u64>() {
            files.push((name.clone(), v, role.to_owned()));
        }
    }
    let mut out: Vec<Problem> = files
        .par_iter()
        .filter_map(|(name, v, role)| {
            let what = retained_file_problem(&tuf.join(name), *v, role)?;
            Some(Problem {
                subject: name.clone(),
                what,
            })
        })
        .collect();
    out.sort_by(|a, b| a.subject.cmp(&b.subject));
    let newest = format!("{root_version}.root.json");
    if std::fs::read(tuf.join("root.json")).ok() != std::fs::read(tuf.join(&newest)).ok() {
        out.push(Problem {
            subject: "root.json".into(),
            what: format!("not a copy of {newest}, the newest root"),
        });
    }
    Ok(out)
}

/// What is wrong with the file `path`, named version `v` of `role`.
fn retained_file_problem(path: &Path, v: u64, role: &str) -> Option<String> {
    let head = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<Head>(&b).map_err(|e| e.to_string()));
    let head = match head {
        Ok(h) => h.signed,
        Err(e) => return Some(format!("unreadable: {e}")),
    };
    let kind = match role {
        "root" | "snapshot" | "timestamp" => role,
        _ => "targets",
    };
    if head.kind != kind {
        return Some(format!("is {} metadata, not {kind}", head.kind));
    }
    (head.version != v).then(|| format!("claims version {}", head.version))
}

/// A delegating role's delegations with the core's index
/// ([`cpantuf_core::delegation::PathIndex`]), so that the client's search (spec 5.7.2) can
/// be replayed for 300,000 targets without trying every one of ~700 top-level delegations
/// on each.
struct DelegIndex {
    delegations: Option<Delegations>,
    index: PathIndex,
}

impl DelegIndex {
    fn new(t: &Targets) -> Self {
        let index = t
            .delegations
            .as_ref()
            .map(PathIndex::new)
            .unwrap_or_default();
        DelegIndex {
            delegations: t.delegations.clone(),
            index,
        }
    }

    /// Names the client's search for `path` visits, in order.
    fn search(&self, path: &str) -> Vec<String> {
        let Some(d) = &self.delegations else {
            return Vec::new();
        };
        self.index
            .roles_for_target(d, path)
            .into_iter()
            .map(|c| c.name)
            .collect()
    }
}

/// Whether the client's search for `path` passes through every delegation
/// of `chain` and ends in `role`.
fn reachable(role: &str, chain: &[(Arc<DelegIndex>, String)], path: &str) -> bool {
    chain
        .iter()
        .all(|(parent, edge)| parent.search(path).contains(edge))
        && chain.last().is_none_or(|(_, e)| e == role)
}

fn check_file(
    mirror: &Mirror,
    p: &CpanPath,
    info: &cpantuf_core::metadata::TargetFile,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let Some(want) = info.hashes.get("sha256") else {
        return vec![Problem {
            subject: p.to_string(),
            what: "no sha256 hash".into(),
        }];
    };
    for (label, path) in [("file", p.clone()), ("hash-named twin", twin_path(p, want))] {
        match mirror.hash_file(path) {
            Ok(e) => {
                if e.length != info.length {
                    out.push(Problem {
                        subject: p.to_string(),
                        what: format!(
                            "{label} is {} bytes, metadata says {}",
                            e.length, info.length
                        ),
                    });
                } else if e.sha256_hex() != *want {
                    out.push(Problem {
                        subject: p.to_string(),
                        what: format!("{label} sha256 differs from the metadata"),
                    });
                }
            }
            Err(e) => out.push(Problem {
                subject: p.to_string(),
                what: format!("{label}: {e}"),
            }),
        }
    }
    out
}

/// What is wrong with a file named like a twin (`<64 hex>.<name>`) that
/// no current target accounts for: its bytes must match the hash in its
/// name. `plain_files`: the mirror's other files, to tell a corrupted twin
/// of a file still there from a file that only looks like a twin.
fn check_twin(
    mirror: &Mirror,
    twin: &CpanPath,
    plain_files: &std::collections::HashSet<&CpanPath>,
) -> Option<Problem> {
    let (plain, hash) = super::publish::plain_of_twin(twin)?;
    let what = match mirror.hash_file(twin.clone()) {
        Ok(e) if e.sha256_hex() == hash => return None,
        Ok(_) if plain_files.contains(&plain) => format!(
            "hash-named twin of {plain}: sha256 differs from the hash in its name (corrupted; \
             a client fetching that version gets other bytes)"
        ),
        Ok(_) => "named like a hash-named twin, but its sha256 differs from the hash in its \
                  name: the signer never signs such a name (rename the file, or delete it \
                  if it is a corrupted twin)"
            .to_owned(),
        Err(e) => format!("hash-named twin: {e}"),
    };
    Some(Problem {
        subject: twin.to_string(),
        what,
    })
}

/// One line of `status`.
#[derive(Clone, Debug)]
pub struct StatusLine {
    /// Role, or a group of roles.
    pub role: String,
    /// Version (of the role, or the highest in the group).
    pub version: u64,
    /// Expiry (the earliest in a group).
    pub expires: DateTime<Utc>,
    /// Roles in the group (1 for a single role).
    pub count: usize,
}

/// What expires when.
pub fn status(mirror: &Mirror) -> Result<Vec<StatusLine>, RepoError> {
    let state = super::state::PublishedState::load(&mirror.tuf_dir(), mirror.root())?;
    let r = state.root.unverified();
    let mut out = vec![StatusLine {
        role: "root".into(),
        version: r.version.get(),
        expires: r.expires,
        count: 1,
    }];
    let Some(cur) = &state.current else {
        return Ok(out);
    };
    let one = |role: &str, v: u64, e| StatusLine {
        role: role.into(),
        version: v,
        expires: e,
        count: 1,
    };
    let t = cur.timestamp.unverified();
    out.push(one("timestamp", t.version.get(), t.expires));
    let s = cur.snapshot()?.unverified();
    out.push(one("snapshot", s.version.get(), s.expires));
    let tg = cur.targets()?.unverified();
    out.push(one("targets", tg.version.get(), tg.expires));
    let mut groups: BTreeMap<&str, StatusLine> = BTreeMap::new();
    let names: Vec<String> = s
        .meta
        .keys()
        .filter_map(|k| k.strip_suffix(".json").map(str::to_owned))
        .filter(|k| k != "targets")
        .collect();
    let loaded: Vec<(String, u64, DateTime<Utc>)> = names
        .par_iter()
        .map(|n| {
            let (env, _) = state.load_role(n)?.expect("listed in snapshot");
            Ok((
                n.clone(),
                env.unverified().version.get(),
                env.unverified().expires,
            ))
        })
        .collect::<Result<_, RepoError>>()?;
    for (name, v, e) in loaded {
        let group = match cpantuf_core::cpan::CpanRole::from_name(&name) {
            Ok(cpantuf_core::cpan::CpanRole::AuthorBin(..)) => "author-*-bin-*",
            Ok(cpantuf_core::cpan::CpanRole::Author(_)) => "author-*",
            Ok(cpantuf_core::cpan::CpanRole::Prefix(_)) => "prefix-*",
            _ => "index",
        };
        let g = groups.entry(group).or_insert(StatusLine {
            role: group.into(),
            version: v,
            expires: e,
            count: 0,
        });
        g.count += 1;
        g.version = g.version.max(v);
        g.expires = g.expires.min(e);
    }
    out.extend(groups.into_values());
    Ok(out)
}

/// A claimed author's role that expires soon or has expired. The author
/// chose its expiry and only the author can renew it (`cpantuf author
/// renew`, then `cpantuf-sign author import`); once it passes, clients
/// refuse the author's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedExpiry {
    /// The author.
    pub author: PauseId,
    /// Their role, or one of its hash bins.
    pub role: String,
    /// Its published version.
    pub version: u64,
    /// Its expiry.
    pub expires: DateTime<Utc>,
    /// Whether it has passed.
    pub expired: bool,
}

impl ClaimedExpiry {
    /// `Some` when `expires` is less than `window` after `now`.
    pub fn check(
        author: &PauseId,
        role: &str,
        version: u64,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Option<Self> {
        (expires - now < window).then(|| ClaimedExpiry {
            author: author.clone(),
            role: role.to_owned(),
            version,
            expires,
            expired: expires <= now,
        })
    }
}

impl std::fmt::Display for ClaimedExpiry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (id, role, at) = (
            &self.author,
            &self.role,
            cpantuf_core::metadata::expiry::format(&self.expires),
        );
        if self.expired {
            write!(
                f,
                "claimed author {id}: {role} version {} expired at {at}; clients refuse \
                 {id}'s files until {id} signs a renewal (`cpantuf author renew`)",
                self.version
            )
        } else {
            write!(
                f,
                "claimed author {id}: {role} version {} expires at {at}; {id} must sign a \
                 renewal (`cpantuf author renew`) before then",
                self.version
            )
        }
    }
}

/// Every claimed author's role (a key other than `authors_key`, PAUSE's)
/// that expires within `window` of `now`, or has expired.
pub fn claimed_expiries(
    mirror: &Mirror,
    authors_key: &cpantuf_core::metadata::KeyId,
    now: DateTime<Utc>,
    window: chrono::Duration,
) -> Result<Vec<ClaimedExpiry>, RepoError> {
    let state = super::state::PublishedState::load(&mirror.tuf_dir(), mirror.root())?;
    let mut out = Vec::new();
    for id in super::ops::claimed_authors(&state, authors_key)?.keys() {
        for (env, f) in super::ops::claimed_roles(&state, id)? {
            let expires = env.unverified().expires;
            out.extend(ClaimedExpiry::check(
                id,
                &f.role,
                f.version.get(),
                expires,
                now,
                window,
            ));
        }
    }
    Ok(out)
}

/// A claimed author's file on the mirror that their published role does not list with these
/// bytes: an upload held until the author signs it (`cpantuf author release`, then `author
/// import`), or a file someone else put into their directory. Clients refuse it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldUpload {
    /// The author.
    pub author: PauseId,
    /// The file.
    pub path: CpanPath,
}

impl std::fmt::Display for HeldUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "claimed author {}: {} is held, not published: {}'s role does not list these bytes \
             (the author signs it with `cpantuf author release`)",
            self.author, self.path, self.author
        )
    }
}

/// Every held upload of every claimed author (a key other than `authors_key`, PAUSE's),
/// hashed from the mirror.
pub fn held_uploads(
    mirror: &Mirror,
    authors_key: &cpantuf_core::metadata::KeyId,
) -> Result<Vec<HeldUpload>, RepoError> {
    use cpantuf_core::cpan::{owner, Owner};
    let state = super::state::PublishedState::load(&mirror.tuf_dir(), mirror.root())?;
    let mut out = Vec::new();
    for id in super::ops::claimed_authors(&state, authors_key)?.keys() {
        let listed = super::ops::claimed_listed(&state, id)?;
        for path in mirror.scan_dir(&id.author_dir())? {
            if owner(&path)? != Owner::Author(id.clone()) {
                continue;
            }
            let e = mirror.hash_file(path.clone())?;
            if listed.get(path.as_str()) != Some(&crate::build::target_file(&e)) {
                out.push(HeldUpload {
                    author: id.clone(),
                    path,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build;
    use cpantuf_core::cpan::AuthorPrefix;
    use cpantuf_core::crypto::Ed25519Signer;

    #[test]
    fn indexed_search_equals_the_clients_search() {
        let k = Ed25519Signer::from_seed(&[4; 32]);
        let now = chrono::Utc::now();
        let prefixes = ["E/ET", "H/HA", "N/N-", "A/AB"].map(|p| {
            let (l, x) = p.split_once('/').unwrap();
            AuthorPrefix::new(l, x).unwrap()
        });
        let top = build::top_targets(
            std::num::NonZeroU64::MIN,
            now,
            k.public_key(),
            k.public_key(),
            &[],
            prefixes,
            3,
        );
        let authors = ["ETHER", "ETHERNEW"].map(|a| build::AuthorDelegation {
            id: PauseId::new(a).unwrap(),
            key: k.public_key().clone(),
            depth: 2,
        });
        let prefix = build::prefix_targets(std::num::NonZeroU64::MIN, now, &authors);
        for t in [&top, &prefix] {
            let idx = DelegIndex::new(t);
            for path in [
                "modules/02packages.details.txt.gz",
                "authors/01mailrc.txt.gz",
                "authors/id/E/ET/ETHER/CHECKSUMS",
                "authors/id/E/ET/ETHER/Try-Tiny-0.31.meta",
                "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
                "authors/id/E/ET/ETHER/sub/x.tar.gz",
                "authors/id/E/ET/ETHER/a/b/c/too-deep.tar.gz",
                "authors/id/E/ET/ETHERNEW/x.tar.gz",
                "authors/id/N/N-/N-AB/x.tar.gz",
                "authors/id/Z/ZZ/ZZTOP/x.tar.gz",
                "elsewhere",
            ] {
                let want: Vec<String> = t
                    .delegations
                    .as_ref()
                    .unwrap()
                    .roles_for_target(path)
                    .into_iter()
                    .map(|c| c.name)
                    .collect();
                assert_eq!(idx.search(path), want, "{path}");
            }
        }
    }
}
