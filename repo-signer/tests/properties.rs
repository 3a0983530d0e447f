//! Property tests (proptest) of the signer's direct encodings.

use chrono::{TimeZone, Utc};
use cpantuf_core::canonical::encode;
use cpantuf_core::metadata::{signed_value, MetaFile};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::num::NonZeroU64;
use strategies::json_string;

#[path = "../../cpantuf-core/tests/strategies/mod.rs"]
mod strategies;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Snapshot entries: role file names with hostile characters, every
/// combination of optional length and hashes.
fn snapshot_meta() -> impl Strategy<Value = BTreeMap<String, MetaFile>> {
    let entry = (
        1u64..=u64::MAX,
        prop::option::of(any::<u64>()),
        prop::option::of(prop::collection::btree_map(
            json_string(false),
            json_string(false),
            0..3,
        )),
    )
        .prop_map(|(v, length, hashes)| MetaFile {
            version: NonZeroU64::new(v).unwrap(),
            length,
            hashes,
        });
    prop::collection::btree_map(
        json_string(false).prop_map(|s| format!("{s}.json")),
        entry,
        0..8,
    )
}

proptest! {
    #![proptest_config(config(256))]

    /// The signer writes snapshot bytes directly (no JSON tree); they are
    /// exactly the generic canonical encoding of the same snapshot.
    #[test]
    fn direct_snapshot_encoding_is_canonical(meta in snapshot_meta(), version in 1u64..=u64::MAX, spec in json_string(false)) {
        let snap = cpantuf_core::metadata::Snapshot {
            spec_version: spec,
            version: NonZeroU64::new(version).unwrap(),
            expires: Utc.with_ymd_and_hms(2031, 2, 3, 4, 5, 6).unwrap(),
            meta,
        };
        let direct = cpantuf_repo_signer::signed::canonical_signed(&snap);
        prop_assert_eq!(direct, encode(&signed_value(&snap)).unwrap());
    }
}
