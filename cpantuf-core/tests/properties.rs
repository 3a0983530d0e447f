//! Property tests (proptest): canonical JSON, delegation path patterns, and
//! the version rules of the client state machine.
//!
//! Each property runs a bounded number of cases (see `config`) so the whole
//! file stays within a few seconds; proptest prints the minimal failing input
//! on failure.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cpantuf_core::canonical::{encode, parse, scan_canonical};
use cpantuf_core::crypto::Ed25519Signer;
use cpantuf_core::delegation::path_matches;
use cpantuf_core::metadata::{
    signed_value, MetaFile, RoleKeys, RoleMeta, Root, Timestamp, SPEC_VERSION, TOP_LEVEL_ROLES,
};
use cpantuf_core::trusted::{TimestampUpdate, TrustedSet, UpdateError};
use proptest::prelude::*;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::num::NonZeroU64;
use strategies::json_string;

mod strategies;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Canonical JSON

/// Arbitrary JSON values of canonical JSON's data model (no floats).
fn json_value(controls: bool) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(Value::from(0)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(u64::MAX)),
        json_string(controls).prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(json_string(controls), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(config(512))]

    /// `parse(encode(v)) == v`, the encoding is a fixed point, and the
    /// canonical-form scanner accepts it (so the verification fast path and
    /// the re-encoding slow path agree on the signed bytes).
    #[test]
    fn canonical_round_trip(v in json_value(false)) {
        let enc = encode(&v).unwrap();
        let back = parse(&enc).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(encode(&back).unwrap(), enc.clone());
        prop_assert!(scan_canonical(&enc).is_some(), "scan refused {:?}", String::from_utf8_lossy(&enc));
    }

    /// The canonical bytes depend only on the value, not on how the JSON
    /// text was written (compact, pretty, escaped), control characters
    /// included.
    #[test]
    fn canonical_ignores_formatting(v in json_value(true)) {
        let enc = encode(&v).unwrap();
        let compact = serde_json::to_vec(&v).unwrap();
        let pretty = serde_json::to_vec_pretty(&v).unwrap();
        prop_assert_eq!(encode(&parse(&compact).unwrap()).unwrap(), enc.clone());
        prop_assert_eq!(encode(&parse(&pretty).unwrap()).unwrap(), enc);
    }

    /// The scanner reports the top-level `_type` exactly.
    #[test]
    fn canonical_scan_type_field(t in json_string(false), rest in json_value(false)) {
        let v = json!({"_type": t, "z": rest});
        let scan = scan_canonical(&encode(&v).unwrap()).expect("canonical");
        prop_assert_eq!(scan.type_field, Some(t));
    }

    /// Non-canonical spellings of the same value are never taken as
    /// canonical: pretty-printed output with whitespace.
    #[test]
    fn canonical_scan_refuses_whitespace(v in json_value(false)) {
        let pretty = serde_json::to_vec_pretty(&json!([v])).unwrap();
        prop_assert!(scan_canonical(&pretty).is_none());
    }
}

// ---------------------------------------------------------------------------
// Delegation path patterns

/// One path segment (no `/`), glob characters included.
fn segment(glob: bool) -> impl Strategy<Value = String> {
    let plain = prop_oneof![
        (b'a'..=b'e').prop_map(char::from),
        Just('.'),
        Just('-'),
        Just('é'),
        Just('\\'),
    ];
    let c = if glob {
        prop_oneof![3 => plain, 1 => prop_oneof![Just('*'), Just('?'), Just('['), Just(']'), Just('!')]]
            .boxed()
    } else {
        plain.boxed()
    };
    prop::collection::vec(c, 0..6).prop_map(|v| v.into_iter().collect())
}

fn segments(glob: bool) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(segment(glob), 1..6)
}

proptest! {
    #![proptest_config(config(1024))]

    /// `*` never matches across `/`: a pattern of k `*` segments matches a
    /// path exactly when the path has k segments.
    #[test]
    fn star_does_not_cross_slash(k in 1usize..5, target in segments(true)) {
        let pattern = vec!["*"; k].join("/");
        let t = target.join("/");
        prop_assert_eq!(path_matches(&pattern, &t), target.len() == k, "{} vs {}", pattern, t);
    }

    /// A pattern without glob characters matches exactly the equal path.
    #[test]
    fn literal_pattern_matches_itself(p in segments(false), t in segments(false)) {
        let (p, t) = (p.join("/"), t.join("/"));
        prop_assert!(path_matches(&p, &p));
        prop_assert_eq!(path_matches(&p, &t), p == t);
    }

    /// Whatever the globs, a different number of segments never matches.
    #[test]
    fn segment_count_mismatch_never_matches(p in segments(true), t in segments(true)) {
        prop_assume!(p.len() != t.len());
        prop_assert!(!path_matches(&p.join("/"), &t.join("/")));
    }
}

// ---------------------------------------------------------------------------
// Version rules of the state machine

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap()
}

fn signer(seed: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(&[seed; 32])
}

fn sign<T: RoleMeta + Serialize>(md: &T, seed: u8) -> Vec<u8> {
    let signed = signed_value(md);
    let s = signer(seed);
    let sig = s.sign_hex(&encode(&signed).unwrap());
    serde_json::to_vec(&json!({
        "signed": signed,
        "signatures": [{"keyid": s.keyid().0, "sig": sig}],
    }))
    .unwrap()
}

/// Root v1: one key per top-level role, seeds 1 (root) to 4 (targets).
fn root_bytes() -> Vec<u8> {
    let mut keys = BTreeMap::new();
    let mut roles = BTreeMap::new();
    for (i, role) in TOP_LEVEL_ROLES.iter().enumerate() {
        let s = signer(i as u8 + 1);
        keys.insert(s.keyid().clone(), s.public_key().clone());
        roles.insert(
            role.to_string(),
            RoleKeys {
                keyids: vec![s.keyid().clone()],
                threshold: NonZeroU64::MIN,
            },
        );
    }
    let root = Root {
        spec_version: SPEC_VERSION.into(),
        version: NonZeroU64::MIN,
        expires: now() + Duration::days(365),
        consistent_snapshot: true,
        keys,
        roles,
    };
    sign(&root, 1)
}

/// A valid timestamp, signed with the timestamp key (seed 2).
fn timestamp(version: NonZeroU64, snapshot_version: NonZeroU64) -> Vec<u8> {
    let ts = Timestamp {
        spec_version: SPEC_VERSION.into(),
        version,
        expires: now() + Duration::days(1),
        meta: BTreeMap::from([(
            "snapshot.json".to_string(),
            MetaFile {
                version: snapshot_version,
                length: None,
                hashes: None,
            },
        )]),
    };
    sign(&ts, 2)
}

fn version() -> impl Strategy<Value = NonZeroU64> {
    prop_oneof![1u64..=4, 1u64..=u64::MAX, Just(u64::MAX)].prop_map(|v| NonZeroU64::new(v).unwrap())
}

fn trusted_with(ts_version: NonZeroU64, snap_version: NonZeroU64) -> TrustedSet {
    let mut set = TrustedSet::new(&root_bytes(), now()).unwrap();
    assert_eq!(
        set.update_timestamp(&timestamp(ts_version, snap_version))
            .unwrap(),
        TimestampUpdate::Updated
    );
    set
}

proptest! {
    #![proptest_config(config(128))]

    /// Spec 5.4.3.1: a new timestamp is accepted iff its version is not
    /// lower than the trusted one; an equal version is `Unchanged` and
    /// leaves the trusted timestamp in place.
    #[test]
    fn timestamp_version_rollback(old in version(), new in version()) {
        let one = NonZeroU64::MIN;
        let mut set = trusted_with(old, one);
        let res = set.update_timestamp(&timestamp(new, one));
        match new.cmp(&old) {
            std::cmp::Ordering::Greater => {
                prop_assert_eq!(res.unwrap(), TimestampUpdate::Updated);
                prop_assert_eq!(set.timestamp().unwrap().version, new);
            }
            std::cmp::Ordering::Equal => {
                prop_assert_eq!(res.unwrap(), TimestampUpdate::Unchanged);
                prop_assert_eq!(set.timestamp().unwrap().version, old);
            }
            std::cmp::Ordering::Less => {
                let is_rollback = matches!(
                    res,
                    Err(UpdateError::Rollback { ref role, trusted, new: n })
                        if role == "timestamp" && trusted == old.get() && n == new.get()
                );
                prop_assert!(is_rollback, "{:?}", res);
                prop_assert_eq!(set.timestamp().unwrap().version, old);
            }
        }
    }

    /// Spec 5.4.3.2: a newer timestamp may not name an older snapshot.
    #[test]
    fn timestamp_snapshot_version_rollback(old in version(), new in version()) {
        let one = NonZeroU64::MIN;
        let mut set = trusted_with(one, old);
        let res = set.update_timestamp(&timestamp(NonZeroU64::new(2).unwrap(), new));
        if new >= old {
            prop_assert_eq!(res.unwrap(), TimestampUpdate::Updated);
            prop_assert_eq!(set.timestamp().unwrap().version.get(), 2);
        } else {
            let is_rollback = matches!(
                res,
                Err(UpdateError::Rollback { trusted, new: n, .. })
                    if trusted == old.get() && n == new.get()
            );
            prop_assert!(is_rollback, "{:?}", res);
            prop_assert_eq!(set.timestamp().unwrap().version, one);
        }
    }
}
