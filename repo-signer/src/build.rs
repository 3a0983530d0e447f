//! Role payloads from an inventory of files: pure functions, no I/O.
//!
//! Role layout (see [`cpantuf_core::cpan`] for the ownership rules):
//!
//! ```text
//! targets (offline)  -> index            terminating, listed FIRST
//!                    -> prefix-X-XY ...  terminating, one per prefix in use
//! prefix-X-XY        -> author-ID ...    terminating, one per author
//! author-ID          -> author-ID-bin-N  succinct hash bins, only for
//!                                        authors with very many files
//! ```
//!
//! `index` must come first: its patterns overlap the prefix patterns for
//! `CHECKSUMS`, `*.meta` and `*.readme` directly in an author directory, and
//! a terminating first match is what keeps an author key from signing them
//! (spec 5.7.2.2).

use super::mirror::FileEntry;
use chrono::{DateTime, Duration, Utc};
use cpantuf_core::cpan::{AuthorPrefix, CpanRole, PauseId, MAX_AUTHOR_BIN_BITS};
use cpantuf_core::crypto::compute_keyid;
use cpantuf_core::metadata::{
    DelegatedRole, Delegations, Key, KeyId, MetaFile, RoleKeys, Root, Snapshot, SuccinctRoles,
    TargetFile, Targets, Timestamp, SPEC_VERSION,
};
use std::collections::BTreeMap;
use std::num::NonZeroU64;

/// `now + period`, truncated to whole seconds as TUF writes expiries.
pub fn expires_in(now: DateTime<Utc>, period: Duration) -> DateTime<Utc> {
    let t = now + period;
    DateTime::from_timestamp(t.timestamp(), 0).expect("a time in range")
}

/// The targets entry of a file: length and SHA-256 (the only hash: the
/// client fetches `<dir>/<first hash>.<name>`).
pub fn target_file(e: &FileEntry) -> TargetFile {
    let mut hashes = BTreeMap::new();
    hashes.insert("sha256".to_owned(), e.sha256_hex());
    TargetFile {
        length: e.length,
        hashes,
        custom: None,
    }
}

/// The targets entries of `files`, by path.
pub fn targets_of<'a>(
    files: impl IntoIterator<Item = &'a FileEntry>,
) -> BTreeMap<String, TargetFile> {
    files
        .into_iter()
        .map(|e| (e.path.to_string(), target_file(e)))
        .collect()
}

/// A targets payload listing `files` and delegating nothing.
pub fn leaf_targets<'a>(
    version: NonZeroU64,
    expires: DateTime<Utc>,
    files: impl IntoIterator<Item = &'a FileEntry>,
) -> Targets {
    leaf_of(version, expires, targets_of(files))
}

/// A targets payload listing `targets` (path to entry) and delegating
/// nothing.
pub fn leaf_of(
    version: NonZeroU64,
    expires: DateTime<Utc>,
    targets: BTreeMap<String, TargetFile>,
) -> Targets {
    Targets {
        spec_version: SPEC_VERSION.into(),
        version,
        expires,
        targets,
        delegations: None,
    }
}

/// How many bits of hash bins an author with `files` files needs: `None`
/// (one leaf role) up to `above` files, else the fewest bits that give bins
/// of at most `above / 2` files on average (ADR 0006). `above == 0` turns
/// binning off.
///
/// ```
/// use cpantuf_repo_signer::build::author_bin_bits;
/// assert_eq!(author_bin_bits(1024, 1024), None);
/// assert_eq!(author_bin_bits(1025, 1024), Some(2));   // 4 bins of ~256
/// assert_eq!(author_bin_bits(2891, 1024), Some(3));   // PERLANCAR: 8 of ~361
/// assert_eq!(author_bin_bits(28251, 1024), Some(6));  // 64 of ~441
/// assert_eq!(author_bin_bits(1_000_000, 0), None);
/// ```
pub fn author_bin_bits(files: usize, above: usize) -> Option<u32> {
    if above == 0 || files <= above {
        return None;
    }
    let per_bin = (above / 2).max(1);
    let mut bits = 1;
    while bits < MAX_AUTHOR_BIN_BITS && files.div_ceil(1usize << bits) > per_bin {
        bits += 1;
    }
    Some(bits)
}

/// The succinct delegation of `id`'s role to its hash bins, all signed by
/// `key` (PAUSE's authors key).
pub fn author_succinct(id: &PauseId, key: &Key, bits: u32) -> SuccinctRoles {
    SuccinctRoles {
        keyids: vec![compute_keyid(key)],
        threshold: NonZeroU64::MIN,
        bit_length: bits,
        name_prefix: CpanRole::author_bin_prefix(id),
    }
}

/// The payload of a binned author role: no targets, a succinct delegation
/// to `2^bits` bins. The prefix role's delegation to `author-ID` still
/// confines every bin to the author's directory: a client reaches a bin
/// only through it.
pub fn binned_author(
    version: NonZeroU64,
    expires: DateTime<Utc>,
    id: &PauseId,
    key: &Key,
    bits: u32,
) -> Targets {
    delegating(
        version,
        expires,
        Delegations {
            keys: BTreeMap::from([(compute_keyid(key), key.clone())]),
            roles: None,
            succinct_roles: Some(author_succinct(id, key, bits)),
        },
    )
}

/// The succinct delegation a published author role holds, if binned.
pub fn bins_of(t: &Targets) -> Option<&SuccinctRoles> {
    t.delegations.as_ref()?.succinct_roles.as_ref()
}

/// `targets` split over every bin of `s` (empty bins included: a client
/// may look up any of them).
pub fn split_into_bins(
    s: &SuccinctRoles,
    targets: BTreeMap<String, TargetFile>,
) -> BTreeMap<String, BTreeMap<String, TargetFile>> {
    let mut bins: BTreeMap<String, BTreeMap<String, TargetFile>> =
        s.bin_names().map(|n| (n, BTreeMap::new())).collect();
    for (path, info) in targets {
        let bin = s.role_for_target(&path);
        bins.get_mut(&bin)
            .expect("role_for_target names one of bin_names")
            .insert(path, info);
    }
    bins
}

/// Whether a payload signs nothing and delegates nothing (an empty role
/// kept so that the snapshot never drops a name, spec 5.5.5).
pub fn is_empty_role(t: &Targets) -> bool {
    t.targets.is_empty() && t.delegations.is_none()
}

/// Deepest level below the author directory among `files` (at least 1).
pub fn depth_of<'a>(files: impl IntoIterator<Item = &'a FileEntry>) -> usize {
    files
        .into_iter()
        .filter_map(|e| cpantuf_core::cpan::author_depth(&e.path))
        .max()
        .unwrap_or(1)
}

/// One author as a prefix role delegates to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorDelegation {
    /// The author.
    pub id: PauseId,
    /// The key that signs the author's role (PAUSE's, or the author's own).
    pub key: Key,
    /// Levels below the author directory the patterns cover.
    pub depth: usize,
}

/// A delegated role entry.
fn delegated(name: String, keyid: KeyId, paths: Vec<String>) -> DelegatedRole {
    DelegatedRole {
        name,
        keyids: vec![keyid],
        threshold: NonZeroU64::MIN,
        terminating: true,
        paths: Some(paths),
        path_hash_prefixes: None,
    }
}

/// The payload of a prefix role: no targets, one terminating delegation per
/// author, in PAUSE id order.
pub fn prefix_targets(
    version: NonZeroU64,
    expires: DateTime<Utc>,
    authors: &[AuthorDelegation],
) -> Targets {
    let mut keys = BTreeMap::new();
    let mut roles = Vec::with_capacity(authors.len());
    for a in authors {
        let keyid = compute_keyid(&a.key);
        keys.insert(keyid.clone(), a.key.clone());
        let role = CpanRole::Author(a.id.clone());
        let paths = role.path_patterns(a.depth);
        roles.push(delegated(role.name(), keyid, paths));
    }
    delegating(version, expires, ordered(keys, roles))
}

/// A targets payload that lists no files, only `delegations`.
fn delegating(version: NonZeroU64, expires: DateTime<Utc>, delegations: Delegations) -> Targets {
    Targets {
        spec_version: SPEC_VERSION.into(),
        version,
        expires,
        targets: BTreeMap::new(),
        delegations: Some(delegations),
    }
}

/// Ordered delegations to `roles`, with their `keys`.
fn ordered(keys: BTreeMap<KeyId, Key>, roles: Vec<DelegatedRole>) -> Delegations {
    Delegations {
        keys,
        roles: Some(roles),
        succinct_roles: None,
    }
}

/// The author delegations a prefix role payload holds (or, for top-level
/// targets, the claimed authors it delegates to).
pub fn authors_of_prefix(t: &Targets) -> Vec<AuthorDelegation> {
    let Some(d) = &t.delegations else {
        return Vec::new();
    };
    d.roles
        .iter()
        .flatten()
        .filter_map(|r| {
            let CpanRole::Author(id) = CpanRole::from_name(&r.name).ok()? else {
                return None;
            };
            let key = d.keys.get(r.keyids.first()?)?.clone();
            Some(AuthorDelegation {
                id,
                key,
                depth: r.paths.as_ref().map_or(1, Vec::len),
            })
        })
        .collect()
}

/// The payload of top-level targets: no targets of its own; `index` first,
/// then each claimed author (their own key: this role is signed offline, so
/// none of PAUSE's online keys can delegate a claimed author's files to
/// another key), then one role per prefix, every delegation terminating.
pub fn top_targets(
    version: NonZeroU64,
    expires: DateTime<Utc>,
    index_key: &Key,
    registry_key: &Key,
    claimed: &[AuthorDelegation],
    prefixes: impl IntoIterator<Item = AuthorPrefix>,
    prefix_depth: usize,
) -> Targets {
    let index_id = compute_keyid(index_key);
    let registry_id = compute_keyid(registry_key);
    let mut keys = BTreeMap::new();
    keys.insert(index_id.clone(), index_key.clone());
    keys.insert(registry_id.clone(), registry_key.clone());
    let mut roles = vec![delegated(
        CpanRole::Index.name(),
        index_id,
        CpanRole::Index.path_patterns(1),
    )];
    for a in claimed {
        let keyid = compute_keyid(&a.key);
        keys.insert(keyid.clone(), a.key.clone());
        let role = CpanRole::Author(a.id.clone());
        let paths = role.path_patterns(a.depth);
        roles.push(delegated(role.name(), keyid, paths));
    }
    for p in prefixes {
        let role = CpanRole::Prefix(p);
        roles.push(delegated(
            role.name(),
            registry_id.clone(),
            role.path_patterns(prefix_depth),
        ));
    }
    delegating(version, expires, ordered(keys, roles))
}

/// The prefixes top-level targets delegates to.
pub fn prefixes_of_top(t: &Targets) -> Vec<AuthorPrefix> {
    t.delegations
        .iter()
        .flat_map(|d| d.roles.iter().flatten())
        .filter_map(|r| match CpanRole::from_name(&r.name) {
            Ok(CpanRole::Prefix(p)) => Some(p),
            _ => None,
        })
        .collect()
}

/// Whether two targets payloads say the same thing (ignoring version and
/// expiry): deciding whether the offline targets keys are needed.
pub fn same_content(a: &Targets, b: &Targets) -> bool {
    a.targets == b.targets && a.delegations == b.delegations
}

/// Snapshot listing the version of every targets-type role (`meta`, keyed
/// `ROLE.json`), without lengths or hashes (the guide's choice: ~40 bytes an
/// entry).
pub fn snapshot(
    version: NonZeroU64,
    expires: DateTime<Utc>,
    meta: BTreeMap<String, MetaFile>,
) -> Snapshot {
    Snapshot {
        spec_version: SPEC_VERSION.into(),
        version,
        expires,
        meta,
    }
}

/// Timestamp pointing at `snapshot_bytes` (version, length and sha256, so
/// a client can refuse a substituted snapshot before parsing it).
pub fn timestamp(
    version: NonZeroU64,
    expires: DateTime<Utc>,
    snapshot_version: NonZeroU64,
    snapshot_bytes: &[u8],
) -> Timestamp {
    use sha2::{Digest, Sha256};
    let mut hashes = BTreeMap::new();
    hashes.insert(
        "sha256".to_owned(),
        hex::encode(Sha256::digest(snapshot_bytes)),
    );
    let mut meta = BTreeMap::new();
    meta.insert(
        "snapshot.json".to_owned(),
        MetaFile {
            version: snapshot_version,
            length: Some(snapshot_bytes.len() as u64),
            hashes: Some(hashes),
        },
    );
    Timestamp {
        spec_version: SPEC_VERSION.into(),
        version,
        expires,
        meta,
    }
}

/// Keys and thresholds of the four top-level roles.
#[derive(Clone, Debug)]
pub struct TopLevelKeys {
    /// Root keys and threshold.
    pub root: (Vec<Key>, NonZeroU64),
    /// Targets keys and threshold.
    pub targets: (Vec<Key>, NonZeroU64),
    /// Snapshot keys and threshold.
    pub snapshot: (Vec<Key>, NonZeroU64),
    /// Timestamp keys and threshold.
    pub timestamp: (Vec<Key>, NonZeroU64),
}

/// A root payload (consistent snapshots on).
pub fn root(version: NonZeroU64, expires: DateTime<Utc>, k: &TopLevelKeys) -> Root {
    let mut keys = BTreeMap::new();
    let mut roles = BTreeMap::new();
    for (name, (role_keys, threshold)) in [
        ("root", &k.root),
        ("targets", &k.targets),
        ("snapshot", &k.snapshot),
        ("timestamp", &k.timestamp),
    ] {
        let mut keyids = Vec::new();
        for key in role_keys {
            let id = compute_keyid(key);
            keys.insert(id.clone(), key.clone());
            if !keyids.contains(&id) {
                keyids.push(id);
            }
        }
        roles.insert(
            name.to_owned(),
            RoleKeys {
                keyids,
                threshold: *threshold,
            },
        );
    }
    Root {
        spec_version: SPEC_VERSION.into(),
        version,
        expires,
        consistent_snapshot: true,
        keys,
        roles,
    }
}

/// The keys and thresholds a root payload gives the top-level roles.
pub fn top_level_keys(root: &Root) -> TopLevelKeys {
    let get = |name: &str| {
        let r = &root.roles[name];
        (
            r.keyids
                .iter()
                .filter_map(|id| root.keys.get(id).cloned())
                .collect(),
            r.threshold,
        )
    };
    TopLevelKeys {
        root: get("root"),
        targets: get("targets"),
        snapshot: get("snapshot"),
        timestamp: get("timestamp"),
    }
}
