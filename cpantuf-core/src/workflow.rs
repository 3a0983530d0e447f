//! The TUF client workflow (spec 5.3 – 5.7) as a sans-IO driver.
//!
//! [`refresh`] and [`find_target`] decide *what* to load and in which order;
//! a [`MetadataSource`] supplied by the caller does the I/O (HTTP, a local
//! store, or a test simulator). All checks happen in
//! [`crate::trusted::TrustedSet`]; this module only sequences them, the way
//! python-tuf's `Updater` sequences its `TrustedMetadataSet`:
//!
//! 1. root: versions N+1, N+2, ... until the repository answers "not found",
//!    at most [`Limits::max_root_rotations`] (5.3);
//! 2. timestamp: the local copy first (as rollback reference), then the
//!    remote one (5.4);
//! 3. snapshot: the local copy if it is still the final one, else the remote
//!    one at the version the timestamp names (5.5);
//! 4. targets: likewise, at the version the snapshot names (5.6);
//! 5. delegated targets, searched depth-first in delegation order with
//!    terminating delegations cutting the search, at most
//!    [`Limits::max_delegations`] roles visited (5.7).

use crate::metadata::TargetFile;
use crate::target::HashError;
use crate::trusted::{TimestampUpdate, TrustedSet, UpdateError};
use std::collections::HashSet;

pub use crate::fetch::FetchError;

/// Size caps and search bounds (python-tuf's `UpdaterConfig` defaults, with
/// a larger snapshot cap for CPAN's ~15,000 roles).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most root versions fetched in one update.
    pub max_root_rotations: u64,
    /// Most targets roles visited in one target search.
    pub max_delegations: usize,
    /// Byte cap for root.json.
    pub root_max_length: u64,
    /// Byte cap for timestamp.json.
    pub timestamp_max_length: u64,
    /// Byte cap for snapshot.json when timestamp gives no length.
    pub snapshot_max_length: u64,
    /// Byte cap for a targets role when snapshot gives no length.
    pub targets_max_length: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_root_rotations: 256,
            max_delegations: 32,
            root_max_length: 512_000,
            timestamp_max_length: 16_384,
            snapshot_max_length: 4_000_000,
            targets_max_length: 8_000_000,
        }
    }
}

/// Where metadata bytes come from and go to. Role names are passed as
/// declared; implementations encode them for URLs and file names with
/// [`encode_role_name`].
pub trait MetadataSource {
    /// The locally stored copy of `role`, if any (unverified bytes: they are
    /// verified again before use).
    fn load_local(&mut self, role: &str) -> Option<Vec<u8>>;
    /// Fetches `role` (version-prefixed when `version` is given, as
    /// consistent snapshots require), refusing more than `max_len` bytes.
    fn fetch(
        &mut self,
        role: &str,
        version: Option<u64>,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError>;
    /// Stores verified bytes of `role`, atomically.
    fn persist(&mut self, role: &str, bytes: &[u8]) -> std::io::Result<()>;
    /// Called when a local copy was not usable as final, with the reason
    /// (for logs).
    fn local_rejected(&mut self, _role: &str, _why: &UpdateError) {}
}

/// Percent-encodes a role name for use in a URL path segment or a file
/// name, as Python's `urllib.parse.quote(name, safe="")` does (python-tuf
/// and the conformance suite use that encoding): `/` and `..` can never
/// escape a directory.
pub fn encode_role_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn fetch_err(what: &str) -> impl FnOnce(FetchError) -> UpdateError + '_ {
    move |source| UpdateError::Fetch {
        what: what.to_owned(),
        source,
    }
}

/// 5.5.2 / 5.6.2: a response longer than the length `by` signed for it is
/// that metadata's mismatch (another version, or endless data), not a network
/// failure.
fn meta_fetch_err(
    what: String,
    signed_len: Option<u64>,
    by: String,
) -> impl FnOnce(FetchError) -> UpdateError {
    move |source| match (source, signed_len) {
        (FetchError::TooLarge { .. }, Some(expected)) => UpdateError::SignedMeta {
            by,
            mismatch: HashError::TooLong {
                what,
                expected,
                signed: true,
            },
        },
        (source, _) => UpdateError::Fetch { what, source },
    }
}

/// The error for a failed download of target `path`, signed as `info`, from
/// `url`. 5.7.4: a response longer than the signed length is a substituted
/// (or endless) file and is reported as that, not as a network failure.
pub fn target_fetch_error(
    path: &str,
    info: &TargetFile,
    url: &str,
    source: FetchError,
) -> UpdateError {
    match source {
        FetchError::TooLarge { .. } => UpdateError::Hash(HashError::TooLong {
            what: format!("target {path}"),
            expected: info.length,
            signed: true,
        }),
        source => UpdateError::Fetch {
            what: url.to_owned(),
            source,
        },
    }
}

fn persist<S: MetadataSource>(src: &mut S, role: &str, bytes: &[u8]) -> Result<(), UpdateError> {
    src.persist(role, bytes)
        .map_err(|source| UpdateError::Store {
            what: format!("{role}.json"),
            source,
        })
}

/// Updates root, timestamp, snapshot and top-level targets (spec 5.3–5.6).
pub fn refresh<S: MetadataSource>(
    trusted: &mut TrustedSet,
    src: &mut S,
    limits: &Limits,
) -> Result<(), UpdateError> {
    refresh_timestamp(trusted, src, limits)?;
    refresh_snapshot(trusted, src, limits)
}

/// The first half of [`refresh`]: root (5.3) and timestamp (5.4), ending
/// with a timestamp that is final, also when the upstream's is the version
/// already trusted (a caller may stop here when it names a snapshot it has).
pub fn refresh_timestamp<S: MetadataSource>(
    trusted: &mut TrustedSet,
    src: &mut S,
    limits: &Limits,
) -> Result<(), UpdateError> {
    // 5.3: walk root versions one at a time.
    // A root at u64::MAX has no successor: the loop is then empty.
    let first = trusted.root().version.get().saturating_add(1);
    let last = first.saturating_add(limits.max_root_rotations);
    let versions = if trusted.root().version.get() == u64::MAX {
        0..0
    } else {
        first..last
    };
    for version in versions {
        match src.fetch("root", Some(version), limits.root_max_length) {
            Ok(bytes) => {
                trusted.update_root(&bytes)?;
                persist(src, "root", &bytes)?;
            }
            // 5.3.3: "not found" means the trusted root is the newest.
            Err(FetchError::NotFound) => break,
            Err(e) => return Err(fetch_err(&format!("{version}.root.json"))(e)),
        }
    }

    // 5.4: timestamp, the local copy first as rollback reference.
    if let Some(local) = src.load_local("timestamp") {
        if let Err(e) = trusted.update_timestamp(&local) {
            src.local_rejected("timestamp", &e);
        }
    }
    let bytes = src
        .fetch("timestamp", None, limits.timestamp_max_length)
        .map_err(fetch_err("timestamp.json"))?;
    if trusted.update_timestamp(&bytes)? == TimestampUpdate::Updated {
        persist(src, "timestamp", &bytes)?;
    }
    // 5.4.4 again: an unchanged version skips it in `update_timestamp`.
    trusted.check_timestamp_final()
}

/// The second half of [`refresh`], after [`refresh_timestamp`]: snapshot
/// (5.5) and top-level targets (5.6).
pub fn refresh_snapshot<S: MetadataSource>(
    trusted: &mut TrustedSet,
    src: &mut S,
    limits: &Limits,
) -> Result<(), UpdateError> {
    // 5.5: snapshot; a local copy that is still final needs no download.
    if let Some(local) = src.load_local("snapshot") {
        match trusted.update_snapshot(&local, true) {
            Ok(()) => return load_targets(trusted, src, limits, "targets", "root"),
            Err(e) => src.local_rejected("snapshot", &e),
        }
    }
    let ts = trusted
        .timestamp()
        .ok_or(UpdateError::OutOfOrder("timestamp missing after update"))?;
    let meta = ts.snapshot_meta();
    let cap = meta.length.unwrap_or(limits.snapshot_max_length);
    let version = trusted
        .root()
        .consistent_snapshot
        .then_some(meta.version.get());
    let by = format!("timestamp version {}", ts.version);
    let bytes = src.fetch("snapshot", version, cap).map_err(meta_fetch_err(
        "snapshot.json".into(),
        meta.length,
        by,
    ))?;
    trusted.update_snapshot(&bytes, false)?;
    persist(src, "snapshot", &bytes)?;

    // 5.6: top-level targets.
    load_targets(trusted, src, limits, "targets", "root")
}

/// Loads `role` through `chain`, the roles that delegate down to it from the
/// top-level targets role (`[]` for `targets` itself, `["targets"]` for a role
/// it delegates to, and so on): each is verified with the keys of the one
/// above it (spec 5.6 for `targets`, 5.7 for each delegated role), from the
/// local copy when it is still the one the snapshot names. For a mirror that
/// knows from its last verified state which delegator reached a changed role,
/// instead of walking every delegation again ([`load_all_targets`]). Whether
/// the delegator still delegates to the role is checked here too
/// ([`TrustedSet::update_targets`] refuses a role its delegator does not
/// name). [`refresh`] must have run.
pub fn load_through<S: MetadataSource>(
    trusted: &mut TrustedSet,
    src: &mut S,
    limits: &Limits,
    chain: &[&str],
    role: &str,
) -> Result<(), UpdateError> {
    let mut delegator = "root";
    for step in chain.iter().copied().chain([role]) {
        load_targets(trusted, src, limits, step, delegator)?;
        delegator = step;
    }
    Ok(())
}

/// Loads one targets role as delegated by `delegator` (spec 5.6 / 5.7).
fn load_targets<S: MetadataSource>(
    trusted: &mut TrustedSet,
    src: &mut S,
    limits: &Limits,
    role: &str,
    delegator: &str,
) -> Result<(), UpdateError> {
    load_targets_or_expired(trusted, src, limits, role, delegator).map_err(|r| r.error)
}

/// Why [`load_targets_or_expired`] refused a role.
struct Refusal {
    error: UpdateError,
    /// The bytes refused for their expiry alone.
    expired_copy: Option<Vec<u8>>,
}

/// [`load_targets`]; a refusal for the role's expiry (5.6.5, its last
/// check) comes with the downloaded bytes, which passed every other check.
fn load_targets_or_expired<S: MetadataSource>(
    trusted: &mut TrustedSet,
    src: &mut S,
    limits: &Limits,
    role: &str,
    delegator: &str,
) -> Result<(), Box<Refusal>> {
    let alone = |error| {
        Box::new(Refusal {
            error,
            expired_copy: None,
        })
    };
    if trusted.has_targets(role) {
        return trusted.reverify_cached(role, delegator).map_err(alone);
    }
    if let Some(local) = src.load_local(role) {
        match trusted.update_targets(&local, role, delegator) {
            Ok(()) => return Ok(()),
            Err(e) => src.local_rejected(role, &e),
        }
    }
    let snap = trusted
        .snapshot()
        .ok_or(UpdateError::OutOfOrder("snapshot missing before targets"))
        .map_err(alone)?;
    let by = format!("snapshot version {}", snap.version);
    let meta = snap
        .meta
        .get(&format!("{role}.json"))
        .ok_or_else(|| UpdateError::MissingMeta {
            role: role.into(),
            why: "delegated, but not listed in the snapshot: refused".into(),
        })
        .map_err(alone)?;
    let cap = meta.length.unwrap_or(limits.targets_max_length);
    let version = trusted
        .root()
        .consistent_snapshot
        .then_some(meta.version.get());
    let what = format!("{}.json", encode_role_name(role));
    let bytes = src
        .fetch(role, version, cap)
        .map_err(meta_fetch_err(what, meta.length, by))
        .map_err(alone)?;
    match trusted.update_targets(&bytes, role, delegator) {
        Ok(()) => persist(src, role, &bytes).map_err(alone),
        Err(error @ UpdateError::Expired { .. }) if expired_role(&error) == Some(role) => {
            Err(Box::new(Refusal {
                error,
                expired_copy: Some(bytes),
            }))
        }
        Err(e) => Err(alone(e)),
    }
}

fn expired_role(e: &UpdateError) -> Option<&str> {
    match e {
        UpdateError::Expired { role, .. } => Some(role),
        _ => None,
    }
}

/// Whether a failure to load a delegated role concerns that role alone
/// (what the repository signs or serves for it), so that the rest of the
/// repository can still be trusted. Network trouble other than "not found"
/// or an oversized answer, local storage errors and workflow-order bugs
/// concern the whole update.
fn concerns_role_alone(e: &UpdateError) -> bool {
    match e {
        UpdateError::Fetch { source, .. } => {
            matches!(source, FetchError::NotFound | FetchError::TooLarge { .. })
        }
        UpdateError::Store { .. } | UpdateError::OutOfOrder(_) => false,
        _ => true,
    }
}

/// A delegated role that [`load_all_targets`] could not trust, and why.
#[derive(Debug)]
pub struct RefusedRole {
    /// The role whose metadata (or whose delegations) was refused.
    pub role: String,
    /// The role that delegates to it, whose keys it was checked against.
    pub delegator: String,
    /// Why.
    pub error: UpdateError,
    /// When its expiry was the only check it failed (5.6.5 comes last): the
    /// bytes, signed by a threshold of its delegator's keys and of the
    /// version, length and hashes the snapshot names.
    pub expired_copy: Option<Vec<u8>>,
}

/// The result of [`load_all_targets`].
#[derive(Debug, Default)]
pub struct AllTargets {
    /// Roles loaded and trusted, in the order they were first loaded.
    pub loaded: Vec<String>,
    /// Roles refused, with the subtrees below them left unvisited.
    pub refused: Vec<RefusedRole>,
}

impl AllTargets {
    /// The roles refused and not trusted through another delegator either:
    /// a delegation search stops at them.
    pub fn untrusted(&self, trusted: &TrustedSet) -> HashSet<String> {
        self.refused
            .iter()
            .filter(|r| !trusted.has_targets(&r.role))
            .map(|r| r.role.clone())
            .collect()
    }
}

/// Loads every targets role reachable from the top-level `targets` role,
/// for a mirror that must hold all of them (spec 5.6 for `targets`, 5.7 for
/// each delegated role). Unlike [`find_target`], which follows only the
/// delegations that may speak for one path, this walks *all* delegations:
/// a pre-order depth-first search in delegation order, each role verified
/// through [`TrustedSet::update_targets`] with the delegator that reached
/// it (a role reached again through another delegator is re-verified
/// against that one). Succinct hash-bin delegations are expanded to every
/// bin.
///
/// A delegated role that fails its checks costs only its own subtree, as it
/// does in a client's search: it is listed in [`AllTargets::refused`] and
/// the walk goes on, so that no one role (a claimed author chooses their own
/// expiry) can stop a mirror from following the rest of the repository.
/// Network and storage failures still end the walk with an error. At most
/// `max_roles` distinct roles are loaded; more is an error rather than a
/// silently partial mirror. [`refresh`] must have run.
pub fn load_all_targets<S: MetadataSource>(
    trusted: &mut TrustedSet,
    src: &mut S,
    limits: &Limits,
    max_roles: usize,
) -> Result<AllTargets, UpdateError> {
    let mut stack: Vec<(String, String)> = vec![("targets".into(), "root".into())];
    let mut all = AllTargets::default();
    let mut seen: HashSet<String> = HashSet::new();
    // (role, delegator) pairs already checked: a diamond is verified once per path.
    let mut edges: HashSet<(String, String)> = HashSet::new();
    while let Some((role, delegator)) = stack.pop() {
        if !edges.insert((role.clone(), delegator.clone())) {
            continue;
        }
        if !seen.contains(&role) && seen.len() >= max_roles {
            return Err(UpdateError::MissingMeta {
                role,
                why: format!(
                    "more than {max_roles} targets roles are delegated: refusing to load more"
                ),
            });
        }
        // 5.6 / 5.7: verified with the keys and threshold of its delegator.
        let refuse = |error, expired_copy| RefusedRole {
            role: role.clone(),
            delegator: delegator.clone(),
            error,
            expired_copy,
        };
        match load_targets_or_expired(trusted, src, limits, &role, &delegator) {
            Ok(()) => {}
            // The top-level targets role is the repository's own: no subtree to spare.
            Err(r) if delegator == "root" || !concerns_role_alone(&r.error) => return Err(r.error),
            Err(r) => {
                all.refused.push(refuse(r.error, r.expired_copy));
                continue;
            }
        }
        if !seen.insert(role.clone()) {
            continue; // already expanded (cycles and diamonds)
        }
        all.loaded.push(role.clone());
        match children_of(trusted, &role, max_roles) {
            // Pushed in reverse so the first delegation is visited first (5.7.2).
            Ok(children) => stack.extend(children.into_iter().rev().map(|c| (c, role.clone()))),
            Err(e) => all.refused.push(refuse(e, None)),
        }
    }
    Ok(all)
}

/// The roles `role` (loaded) delegates to, hash bins expanded.
fn children_of(
    trusted: &TrustedSet,
    role: &str,
    max_roles: usize,
) -> Result<Vec<String>, UpdateError> {
    let md = trusted
        .targets(role)
        .ok_or(UpdateError::OutOfOrder("role missing after load"))?;
    let mut children: Vec<String> = Vec::new();
    if let Some(d) = &md.delegations {
        if let Some(roles) = &d.roles {
            children.extend(roles.iter().map(|r| r.name.clone()));
        }
        if let Some(s) = &d.succinct_roles {
            children.extend(bins_within(role, s, max_roles)?);
        }
    }
    Ok(children)
}

/// The bins of a succinct delegation by `role`, refused when there are more
/// than `max` (`bit_length` may name up to 2^32).
fn bins_within<'a>(
    role: &str,
    s: &'a crate::metadata::SuccinctRoles,
    max: usize,
) -> Result<impl Iterator<Item = String> + 'a, UpdateError> {
    let bins = 1u64 << s.bit_length;
    if bins > max as u64 {
        return Err(UpdateError::MissingMeta {
            role: role.to_owned(),
            why: format!("delegates to {bins} hash bins, more than the {max} roles allowed"),
        });
    }
    Ok(s.bin_names())
}

/// Loads every hash bin `role` (already loaded) delegates to with succinct
/// delegations, each verified with the keys `role` gives it (spec 5.7), at
/// most `max_bins` of them; returns their names (none when `role` has no
/// succinct delegation). Used to list all of a binned author's files.
pub fn load_bins<S: MetadataSource>(
    trusted: &mut TrustedSet,
    src: &mut S,
    limits: &Limits,
    role: &str,
    max_bins: usize,
) -> Result<Vec<String>, UpdateError> {
    let Some(s) = trusted
        .targets(role)
        .and_then(|md| md.delegations.as_ref()?.succinct_roles.clone())
    else {
        return Ok(Vec::new());
    };
    let bins: Vec<String> = bins_within(role, &s, max_bins)?.collect();
    for bin in &bins {
        load_targets(trusted, src, limits, bin, role)?;
    }
    Ok(bins)
}

/// A target found by the search, with the role that signed it.
#[derive(Clone, Debug)]
pub struct FoundTarget {
    /// The target path.
    pub path: String,
    /// Length and hashes to verify the download against.
    pub info: TargetFile,
    /// The role whose metadata lists it.
    pub role: String,
}

/// Spec 5.7: finds `target` by a pre-order depth-first search of the
/// delegation graph from the top-level targets role. Returns `None` when no
/// role that may speak for the path lists it. [`refresh`] must have run.
pub fn find_target<S: MetadataSource>(
    trusted: &mut TrustedSet,
    src: &mut S,
    limits: &Limits,
    target: &str,
) -> Result<Option<FoundTarget>, UpdateError> {
    match search(trusted, src, limits, target, None)? {
        Search::Found(found) => Ok(Some(found)),
        Search::NotFound => Ok(None),
        Search::Blocked { .. } => Err(UpdateError::OutOfOrder("a strict search never blocks")),
    }
}

/// What [`find_target_avoiding`] found.
#[derive(Debug)]
pub enum Search {
    /// A role allowed to speak for the path lists it.
    Found(FoundTarget),
    /// No role allowed to speak for the path lists it.
    NotFound,
    /// The search reached a role that cannot be trusted before any role that
    /// lists the path: a client's [`find_target`] fails there, so nothing
    /// can be said about the path.
    Blocked {
        /// The untrusted role.
        role: String,
    },
}

/// [`find_target`] for a mirror that keeps going past a refused role: a role
/// in `untrusted` (see [`AllTargets::untrusted`]) is not fetched again, and
/// it, or a role that fails its checks now, blocks the search (5.7: the
/// client's search stops at such a role with an error). Network and storage
/// failures are still errors.
pub fn find_target_avoiding<S: MetadataSource>(
    trusted: &mut TrustedSet,
    src: &mut S,
    limits: &Limits,
    target: &str,
    untrusted: &HashSet<String>,
) -> Result<Search, UpdateError> {
    search(trusted, src, limits, target, Some(untrusted))
}

/// The delegation search of [`find_target`] (strict when `untrusted` is
/// `None`) and [`find_target_avoiding`].
fn search<S: MetadataSource>(
    trusted: &mut TrustedSet,
    src: &mut S,
    limits: &Limits,
    target: &str,
    untrusted: Option<&HashSet<String>>,
) -> Result<Search, UpdateError> {
    let mut stack: Vec<(String, String)> = vec![("targets".into(), "root".into())];
    let mut visited: HashSet<String> = HashSet::new();
    // 5.7.1: bounded number of roles visited (python-tuf counts the same way).
    while visited.len() <= limits.max_delegations {
        let Some((role, delegator)) = stack.pop() else {
            break;
        };
        if visited.contains(&role) {
            continue; // cycles
        }
        if let Some(untrusted) = untrusted {
            if untrusted.contains(&role) && !trusted.has_targets(&role) {
                return Ok(Search::Blocked { role });
            }
        }
        match load_targets(trusted, src, limits, &role, &delegator) {
            Ok(()) => {}
            Err(e) if untrusted.is_some() && concerns_role_alone(&e) => {
                return Ok(Search::Blocked { role })
            }
            Err(e) => return Err(e),
        }
        let md = trusted
            .targets(&role)
            .ok_or(UpdateError::OutOfOrder("role missing after load"))?;
        if let Some(info) = md.targets.get(target) {
            return Ok(Search::Found(FoundTarget {
                path: target.to_owned(),
                info: info.clone(),
                role,
            }));
        }
        let children = trusted.roles_for_target(&role, target);
        visited.insert(role.clone());
        // 5.7.2.2: a matching terminating delegation ends the search of
        // everything not below it.
        if children.last().is_some_and(|c| c.terminating) {
            stack.clear();
        }
        for child in children.into_iter().rev() {
            stack.push((child.name, role.clone()));
        }
    }
    Ok(Search::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_encoded_like_python_quote() {
        assert_eq!(encode_role_name("targets"), "targets");
        assert_eq!(encode_role_name("/delegatedrole"), "%2Fdelegatedrole");
        assert_eq!(encode_role_name("../delegatedrole"), "..%2Fdelegatedrole");
        assert_eq!(encode_role_name("?"), "%3F");
        assert_eq!(encode_role_name("#"), "%23");
        assert_eq!(encode_role_name("a b~é"), "a%20b~%C3%A9");
    }
}
