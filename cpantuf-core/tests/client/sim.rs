//! An in-memory TUF repository and client store, after python-tuf's
//! `tests/repository_simulator.py`.
//!
//! The repository keeps the current metadata as typed values and publishes
//! signed bytes into `files` (consistent-snapshot names `N.role.json` plus
//! the unversioned name). Tests change the typed values, publish, and may
//! tamper with `files` directly. The client side implements
//! [`MetadataSource`]: it records every request and keeps a local store that
//! changes only when the workflow persists something.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cpantuf_core::canonical;
use cpantuf_core::crypto::Ed25519Signer;
use cpantuf_core::metadata::{
    signed_value, DelegatedRole, Delegations, Key, KeyId, MetaFile, RoleKeys, RoleMeta, Root,
    Snapshot, TargetFile, Targets, Timestamp, SPEC_VERSION, TOP_LEVEL_ROLES,
};
use cpantuf_core::target::sha256_hex;
use cpantuf_core::trusted::{TrustedSet, UpdateError};
use cpantuf_core::workflow::{self, encode_role_name, FetchError, FoundTarget, Limits};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU64;

/// The fixed reference time of every update unless a test moves it.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap()
}

/// The default expiry of published metadata.
pub fn later() -> DateTime<Utc> {
    now() + Duration::days(365)
}

/// A key pair from a one-byte seed.
pub fn signer(seed: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(&[seed; 32])
}

/// Key id and public key of a seed.
pub fn key(seed: u8) -> (KeyId, Key) {
    let s = signer(seed);
    (s.keyid().clone(), s.public_key().clone())
}

/// `NonZeroU64` shorthand.
pub fn nz(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).expect("non-zero")
}

/// Builds `{"signatures":[...],"signed":...}` over `signed_text` (the bytes
/// signatures cover), signing with `(keyid, seed)` pairs.
pub fn envelope_over(signed_text: &[u8], signers: &[(KeyId, u8)]) -> Vec<u8> {
    let sigs: Vec<Value> = signers
        .iter()
        .map(|(id, seed)| json!({"keyid": id.0, "sig": signer(*seed).sign_hex(signed_text)}))
        .collect();
    let mut out = b"{\"signatures\":".to_vec();
    out.extend(canonical::encode(&Value::Array(sigs)).unwrap());
    out.extend_from_slice(b",\"signed\":");
    out.extend_from_slice(signed_text);
    out.push(b'}');
    out
}

/// Signs a metadata value (canonical bytes of `signed`) into a compact or a
/// pretty-printed JSON file.
pub fn sign_value(signed: &Value, signers: &[(KeyId, u8)], pretty: bool) -> Vec<u8> {
    let canon = canonical::encode(signed).unwrap();
    let sigs: Vec<Value> = signers
        .iter()
        .map(|(id, seed)| json!({"keyid": id.0, "sig": signer(*seed).sign_hex(&canon)}))
        .collect();
    let doc = json!({"signed": signed, "signatures": sigs});
    if pretty {
        serde_json::to_vec_pretty(&doc).unwrap()
    } else {
        // Compact with sorted keys: byte-identical to the canonical form
        // unless a string holds a control character (a PEM key's newlines),
        // which canonical JSON writes raw and a JSON file must escape.
        serde_json::to_vec(&doc).unwrap()
    }
}

/// The in-memory repository.
#[derive(Clone)]
pub struct Repo {
    pub root: Root,
    pub timestamp: Timestamp,
    pub snapshot: Snapshot,
    /// Top-level targets and delegated roles, by role name.
    pub targets: BTreeMap<String, Targets>,
    /// Role -> the `(keyid, seed)` pairs that sign it.
    pub signers: HashMap<String, Vec<(KeyId, u8)>>,
    /// File name -> bytes as served.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Target path -> content.
    pub target_files: BTreeMap<String, Vec<u8>>,
    /// Put `hashes` into timestamp/snapshot meta entries.
    pub meta_hashes: bool,
    /// Put `length` into timestamp/snapshot meta entries.
    pub meta_lengths: bool,
    /// Publish pretty-printed (non-canonical) envelopes.
    pub pretty: bool,
    next_seed: u8,
}

fn empty_targets() -> Targets {
    Targets {
        spec_version: SPEC_VERSION.into(),
        version: NonZeroU64::MIN,
        expires: later(),
        targets: BTreeMap::new(),
        delegations: None,
    }
}

impl Repo {
    /// Root v1 (one ed25519 key per top-level role, consistent snapshots),
    /// empty targets v1, snapshot v1, timestamp v1, all published.
    pub fn new() -> Self {
        let mut keys = BTreeMap::new();
        let mut roles = BTreeMap::new();
        let mut signers = HashMap::new();
        for (i, role) in TOP_LEVEL_ROLES.iter().enumerate() {
            let (id, k) = key(i as u8 + 1);
            keys.insert(id.clone(), k);
            roles.insert(
                role.to_string(),
                RoleKeys {
                    keyids: vec![id.clone()],
                    threshold: NonZeroU64::MIN,
                },
            );
            signers.insert(role.to_string(), vec![(id, i as u8 + 1)]);
        }
        let root = Root {
            spec_version: SPEC_VERSION.into(),
            version: NonZeroU64::MIN,
            expires: later(),
            consistent_snapshot: true,
            keys,
            roles,
        };
        let meta1 = MetaFile {
            version: NonZeroU64::MIN,
            length: None,
            hashes: None,
        };
        let mut repo = Repo {
            root,
            timestamp: Timestamp {
                spec_version: SPEC_VERSION.into(),
                version: NonZeroU64::MIN,
                expires: later(),
                meta: BTreeMap::from([("snapshot.json".to_string(), meta1.clone())]),
            },
            snapshot: Snapshot {
                spec_version: SPEC_VERSION.into(),
                version: NonZeroU64::MIN,
                expires: later(),
                meta: BTreeMap::from([("targets.json".to_string(), meta1)]),
            },
            targets: BTreeMap::from([("targets".to_string(), empty_targets())]),
            signers,
            files: BTreeMap::new(),
            target_files: BTreeMap::new(),
            meta_hashes: false,
            meta_lengths: false,
            pretty: false,
            next_seed: 100,
        };
        repo.publish_root();
        repo.publish_all();
        repo
    }

    /// A fresh seed for a new key.
    pub fn fresh_seed(&mut self) -> u8 {
        self.next_seed = self.next_seed.checked_add(1).expect("out of seeds");
        self.next_seed
    }

    /// Signed bytes of `md` for `role` with the role's signers.
    pub fn sign<T: RoleMeta + Serialize>(&self, role: &str, md: &T) -> Vec<u8> {
        sign_value(&signed_value(md), &self.signers[role], self.pretty)
    }

    fn meta_file(&self, version: NonZeroU64, bytes: &[u8]) -> MetaFile {
        MetaFile {
            version,
            length: self.meta_lengths.then_some(bytes.len() as u64),
            hashes: self
                .meta_hashes
                .then(|| BTreeMap::from([("sha256".to_string(), sha256_hex(bytes))])),
        }
    }

    /// Signs and serves the current root as `N.root.json`.
    pub fn publish_root(&mut self) {
        let bytes = self.sign("root", &self.root);
        self.files
            .insert(format!("{}.root.json", self.root.version), bytes.clone());
        self.files.insert("root.json".into(), bytes);
    }

    /// Signs and serves the current timestamp.
    pub fn publish_timestamp(&mut self) {
        let bytes = self.sign("timestamp", &self.timestamp);
        self.files.insert("timestamp.json".into(), bytes);
    }

    /// Signs and serves the current snapshot and points the (unpublished)
    /// timestamp at it.
    pub fn publish_snapshot(&mut self) {
        let bytes = self.sign("snapshot", &self.snapshot);
        let v = self.snapshot.version;
        self.files
            .insert(format!("{v}.snapshot.json"), bytes.clone());
        self.files.insert("snapshot.json".into(), bytes.clone());
        let m = self.meta_file(v, &bytes);
        self.timestamp.meta.insert("snapshot.json".into(), m);
    }

    /// Signs and serves a targets role and records it in the (unpublished)
    /// snapshot.
    pub fn publish_targets(&mut self, role: &str) {
        let md = &self.targets[role];
        let bytes = self.sign(role, md);
        let v = md.version;
        let enc = encode_role_name(role);
        self.files.insert(format!("{v}.{enc}.json"), bytes.clone());
        self.files.insert(format!("{enc}.json"), bytes.clone());
        let m = self.meta_file(v, &bytes);
        self.snapshot.meta.insert(format!("{role}.json"), m);
    }

    /// Publishes every targets role, then snapshot, then timestamp, without
    /// changing versions.
    pub fn publish_all(&mut self) {
        let roles: Vec<String> = self.targets.keys().cloned().collect();
        for r in roles {
            self.publish_targets(&r);
        }
        self.publish_snapshot();
        self.publish_timestamp();
    }

    /// New timestamp version, published.
    pub fn update_timestamp(&mut self) {
        self.timestamp.version = nz(self.timestamp.version.get() + 1);
        self.publish_timestamp();
    }

    /// New snapshot version, published, and a new timestamp naming it.
    pub fn update_snapshot(&mut self) {
        self.snapshot.version = nz(self.snapshot.version.get() + 1);
        self.publish_snapshot();
        self.update_timestamp();
    }

    /// New version of a targets role, published, with new snapshot and
    /// timestamp.
    pub fn update_targets(&mut self, role: &str) {
        let md = self.targets.get_mut(role).expect("known role");
        md.version = nz(md.version.get() + 1);
        self.publish_targets(role);
        self.update_snapshot();
    }

    /// Replaces the keys of a top-level role with one fresh key (root's keys
    /// map keeps only keys still in use). Does not publish; for root, the
    /// caller decides who signs the new root.
    pub fn rotate_keys(&mut self, role: &str) -> u8 {
        let seed = self.fresh_seed();
        let (id, k) = key(seed);
        self.root.roles.get_mut(role).unwrap().keyids = vec![id.clone()];
        self.root.keys.insert(id.clone(), k);
        let used: Vec<KeyId> = self
            .root
            .roles
            .values()
            .flat_map(|r| r.keyids.clone())
            .collect();
        self.root.keys.retain(|id, _| used.contains(id));
        self.signers.insert(role.to_string(), vec![(id, seed)]);
        seed
    }

    /// Publishes root N+1 with the root key rotated, cross-signed by the old
    /// and the new key (the legitimate way).
    pub fn rotate_root_key(&mut self) {
        let old = self.signers["root"].clone();
        self.rotate_keys("root");
        self.root.version = nz(self.root.version.get() + 1);
        let new = self.signers["root"].clone();
        self.signers
            .insert("root".into(), old.into_iter().chain(new.clone()).collect());
        self.publish_root();
        self.signers.insert("root".into(), new);
    }

    /// New root version signed by the current root signers, published.
    pub fn bump_root(&mut self) {
        self.root.version = nz(self.root.version.get() + 1);
        self.publish_root();
    }

    /// Adds a delegation from `delegator` to a new role `name` (one fresh
    /// key, threshold 1) with `paths`, and creates the role's metadata v1
    /// (unpublished). Returns the seed of the role's key.
    pub fn delegate(
        &mut self,
        delegator: &str,
        name: &str,
        paths: &[&str],
        terminating: bool,
    ) -> u8 {
        let seed = self.fresh_seed();
        self.delegate_with_key(delegator, name, paths, terminating, seed);
        self.signers
            .insert(name.to_string(), vec![(key(seed).0, seed)]);
        self.targets
            .entry(name.to_string())
            .or_insert_with(empty_targets);
        seed
    }

    /// Adds a delegation entry only (keys and role entry in `delegator`).
    pub fn delegate_with_key(
        &mut self,
        delegator: &str,
        name: &str,
        paths: &[&str],
        terminating: bool,
        seed: u8,
    ) {
        let (id, k) = key(seed);
        let d = self
            .targets
            .get_mut(delegator)
            .expect("known delegator")
            .delegations
            .get_or_insert_with(|| Delegations {
                keys: BTreeMap::new(),
                roles: Some(Vec::new()),
                succinct_roles: None,
            });
        d.keys.insert(id.clone(), k);
        d.roles.get_or_insert_with(Vec::new).push(DelegatedRole {
            name: name.into(),
            keyids: vec![id],
            threshold: NonZeroU64::MIN,
            terminating,
            paths: Some(paths.iter().map(|p| p.to_string()).collect()),
            path_hash_prefixes: None,
        });
    }

    /// Lists a target file in `role` (unpublished).
    pub fn add_target(&mut self, role: &str, path: &str, content: &[u8]) {
        let info = TargetFile {
            length: content.len() as u64,
            hashes: BTreeMap::from([("sha256".to_string(), sha256_hex(content))]),
            custom: None,
        };
        self.targets
            .get_mut(role)
            .expect("known role")
            .targets
            .insert(path.into(), info);
        self.target_files.insert(path.into(), content.to_vec());
    }

    /// The served bytes of a file; panics if absent.
    pub fn file(&self, name: &str) -> Vec<u8> {
        self.files
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not published"))
            .clone()
    }
}

/// The client: local store, request log, reference time and limits.
#[derive(Clone)]
pub struct Sim {
    pub repo: Repo,
    /// Role -> bytes, written only by `persist`.
    pub local: BTreeMap<String, Vec<u8>>,
    /// Every `fetch`, as the file name asked for.
    pub requests: Vec<String>,
    /// The requests that were answered "not found".
    pub not_found: Vec<String>,
    /// Roles whose local copy the workflow reported as unusable.
    pub local_rejected: Vec<String>,
    /// Reference time of the next update.
    pub now: DateTime<Utc>,
    pub limits: Limits,
    /// Whether `fetch` enforces `max_len` like the HTTP fetcher does. When
    /// false, the core's own length checks must catch overlong bytes.
    pub honour_caps: bool,
}

impl Sim {
    /// A client bootstrapped with `1.root.json` of a new repository.
    pub fn new() -> Self {
        Self::with_repo(Repo::new())
    }

    /// A client bootstrapped with the repository's root v1.
    pub fn with_repo(repo: Repo) -> Self {
        let root = repo.file("1.root.json");
        Sim {
            repo,
            local: BTreeMap::from([("root".to_string(), root)]),
            requests: Vec::new(),
            not_found: Vec::new(),
            local_rejected: Vec::new(),
            now: now(),
            limits: Limits::default(),
            honour_caps: true,
        }
    }

    /// A trusted set from the local root at `self.now`.
    pub fn trusted(&self) -> Result<TrustedSet, UpdateError> {
        TrustedSet::new(&self.local["root"], self.now)
    }

    /// Runs `workflow::refresh` (clearing the request log first).
    pub fn refresh(&mut self) -> Result<TrustedSet, UpdateError> {
        self.requests.clear();
        self.not_found.clear();
        self.local_rejected.clear();
        let mut t = self.trusted()?;
        let limits = self.limits.clone();
        workflow::refresh(&mut t, self, &limits)?;
        Ok(t)
    }

    /// Refresh, then `workflow::find_target`.
    pub fn find(&mut self, path: &str) -> Result<Option<FoundTarget>, UpdateError> {
        let mut t = self.refresh()?;
        self.find_in(&mut t, path)
    }

    /// `workflow::find_target` on an existing trusted set (requests are
    /// appended to the log).
    pub fn find_in(
        &mut self,
        t: &mut TrustedSet,
        path: &str,
    ) -> Result<Option<FoundTarget>, UpdateError> {
        let limits = self.limits.clone();
        workflow::find_target(t, self, &limits, path)
    }

    /// The version recorded in the local copy of `role`, if stored.
    pub fn local_version(&self, role: &str) -> Option<u64> {
        let v: Value = serde_json::from_slice(self.local.get(role)?).ok()?;
        v["signed"]["version"].as_u64()
    }

    /// A snapshot of the local store for later comparison.
    pub fn store(&self) -> BTreeMap<String, Vec<u8>> {
        self.local.clone()
    }

    /// Asserts the local store equals `expected`, naming the roles that
    /// differ (with versions) rather than dumping bytes.
    #[track_caller]
    pub fn assert_store(&self, expected: &BTreeMap<String, Vec<u8>>) {
        if &self.local == expected {
            return;
        }
        let ver = |b: &[u8]| -> String {
            serde_json::from_slice::<Value>(b)
                .ok()
                .and_then(|v| v["signed"]["version"].as_u64())
                .map_or_else(|| format!("{} bytes", b.len()), |v| format!("v{v}"))
        };
        let mut diff = Vec::new();
        for role in expected.keys().chain(self.local.keys()) {
            let (a, b) = (expected.get(role), self.local.get(role));
            if a != b {
                diff.push(format!(
                    "{role}: expected {:?}, stored {:?}",
                    a.map(|b| ver(b)),
                    b.map(|b| ver(b))
                ));
            }
        }
        diff.dedup();
        panic!("local store changed: {}", diff.join("; "));
    }
}

impl workflow::MetadataSource for Sim {
    fn load_local(&mut self, role: &str) -> Option<Vec<u8>> {
        self.local.get(role).cloned()
    }

    fn fetch(
        &mut self,
        role: &str,
        version: Option<u64>,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let enc = encode_role_name(role);
        let name = match version {
            Some(v) => format!("{v}.{enc}.json"),
            None => format!("{enc}.json"),
        };
        self.requests.push(name.clone());
        let Some(bytes) = self.repo.files.get(&name) else {
            self.not_found.push(name);
            return Err(FetchError::NotFound);
        };
        if self.honour_caps && bytes.len() as u64 > max_len {
            return Err(FetchError::TooLarge { limit: max_len });
        }
        Ok(bytes.clone())
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.local.insert(role.to_string(), bytes.to_vec());
        Ok(())
    }

    fn local_rejected(&mut self, role: &str, _why: &UpdateError) {
        self.local_rejected.push(role.to_string());
    }
}

/// Deterministic xorshift64* for the mutation loop (no dependency).
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
