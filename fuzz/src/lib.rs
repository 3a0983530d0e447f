//! Shared fixtures for the fuzz targets and the seed generator: a small,
//! valid, deterministically signed TUF repository (keys from fixed seeds, so
//! every run and every machine builds the same bytes), and the mirror
//! server's request-path parser, copied from its source by `build.rs`.

use chrono::{DateTime, TimeZone, Utc};
use cpantuf_core::canonical;
use cpantuf_core::crypto::Ed25519Signer;
use cpantuf_core::metadata::{
    signed_value, DelegatedRole, Delegations, KeyId, MetaFile, RoleKeys, RoleMeta, Root, Snapshot,
    TargetFile, Targets, Timestamp, SPEC_VERSION, TOP_LEVEL_ROLES,
};
use cpantuf_core::target::sha256_hex;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::num::NonZeroU64;

/// The mirror server's `RequestPath::parse` (see `build.rs`).
#[allow(dead_code, clippy::all)]
pub mod request_path {
    include!(concat!(env!("OUT_DIR"), "/request_path.rs"));
}

/// The reference time of every update.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap()
}

fn later() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 6, 1, 12, 0, 0).unwrap()
}

fn nz(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).unwrap()
}

/// The key of a one-byte seed: root 1, timestamp 2, snapshot 3, targets 4,
/// the delegated role `authors` 5.
pub fn signer(seed: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(&[seed; 32])
}

/// The key seed of a role of the fixture.
pub fn seed_of(role: &str) -> u8 {
    match role {
        "root" => 1,
        "timestamp" => 2,
        "snapshot" => 3,
        "targets" => 4,
        _ => 5,
    }
}

/// `{"signatures":[...],"signed":...}` over the canonical form of `signed`,
/// signed by the key of `seed`, written compactly by serde_json.
pub fn sign_value(signed: &Value, seed: u8) -> Vec<u8> {
    let canon = canonical::encode(signed).expect("encodable");
    let s = signer(seed);
    let doc = json!({
        "signatures": [{"keyid": s.keyid().0, "sig": s.sign_hex(&canon)}],
        "signed": signed,
    });
    serde_json::to_vec(&doc).unwrap()
}

fn sign<T: RoleMeta + Serialize>(md: &T, seed: u8) -> Vec<u8> {
    sign_value(&signed_value(md), seed)
}

/// Signed bytes of a valid repository, and its typed values.
pub struct Fixture {
    /// Root v1, the trusted root.
    pub root: Vec<u8>,
    /// Root v2 (same keys), a valid successor of `root`.
    pub root2: Vec<u8>,
    /// Timestamp v1.
    pub timestamp: Vec<u8>,
    /// Snapshot v1.
    pub snapshot: Vec<u8>,
    /// Top-level targets v1, delegating `authors/*` to `authors`.
    pub targets: Vec<u8>,
    /// Delegated targets `authors` v1 with one target.
    pub authors: Vec<u8>,
    /// The unsigned `signed` values, in the order above.
    pub signed: Vec<(&'static str, Value)>,
}

impl Fixture {
    /// Builds the fixture (deterministic).
    pub fn new() -> Self {
        let mut keys = BTreeMap::new();
        let mut roles = BTreeMap::new();
        for role in TOP_LEVEL_ROLES {
            let s = signer(seed_of(role));
            keys.insert(s.keyid().clone(), s.public_key().clone());
            roles.insert(
                role.to_string(),
                RoleKeys {
                    keyids: vec![s.keyid().clone()],
                    threshold: NonZeroU64::MIN,
                },
            );
        }
        let mut root = Root {
            spec_version: SPEC_VERSION.into(),
            version: nz(1),
            expires: later(),
            consistent_snapshot: true,
            keys,
            roles,
        };
        let root1 = root.clone();
        root.version = nz(2);
        let root2 = root;

        let a = signer(seed_of("authors"));
        let authors = Targets {
            spec_version: SPEC_VERSION.into(),
            version: nz(1),
            expires: later(),
            targets: BTreeMap::from([(
                "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz".to_string(),
                TargetFile {
                    length: 5,
                    hashes: BTreeMap::from([("sha256".to_string(), sha256_hex(b"hello"))]),
                    custom: None,
                },
            )]),
            delegations: None,
        };
        let targets = Targets {
            spec_version: SPEC_VERSION.into(),
            version: nz(1),
            expires: later(),
            targets: BTreeMap::new(),
            delegations: Some(Delegations {
                keys: BTreeMap::from([(a.keyid().clone(), a.public_key().clone())]),
                roles: Some(vec![DelegatedRole {
                    name: "authors".into(),
                    keyids: vec![KeyId(a.keyid().0.clone())],
                    threshold: NonZeroU64::MIN,
                    terminating: true,
                    paths: Some(vec!["authors/*/*/*/*/*".into()]),
                    path_hash_prefixes: None,
                }]),
                succinct_roles: None,
            }),
        };
        let targets_bytes = sign(&targets, seed_of("targets"));
        let authors_bytes = sign(&authors, seed_of("authors"));
        let meta = |v: u64, _bytes: &[u8]| MetaFile {
            version: nz(v),
            // No length: fuzzed bytes of any size reach the parser.
            length: None,
            hashes: None,
        };
        let snapshot = Snapshot {
            spec_version: SPEC_VERSION.into(),
            version: nz(1),
            expires: later(),
            meta: BTreeMap::from([
                ("targets.json".to_string(), meta(1, &targets_bytes)),
                ("authors.json".to_string(), meta(1, &authors_bytes)),
            ]),
        };
        let snapshot_bytes = sign(&snapshot, seed_of("snapshot"));
        let timestamp = Timestamp {
            spec_version: SPEC_VERSION.into(),
            version: nz(1),
            expires: later(),
            meta: BTreeMap::from([(
                "snapshot.json".to_string(),
                MetaFile {
                    version: nz(1),
                    length: None,
                    hashes: None,
                },
            )]),
        };
        Fixture {
            root: sign(&root1, seed_of("root")),
            root2: sign(&root2, seed_of("root")),
            timestamp: sign(&timestamp, seed_of("timestamp")),
            snapshot: snapshot_bytes,
            targets: targets_bytes,
            authors: authors_bytes,
            signed: vec![
                ("root", signed_value(&root2)),
                ("timestamp", signed_value(&timestamp)),
                ("snapshot", signed_value(&snapshot)),
                ("targets", signed_value(&targets)),
                ("authors", signed_value(&authors)),
            ],
        }
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}
