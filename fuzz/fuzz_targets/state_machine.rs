//! The client state machine fed a valid, signed repository in which the
//! fuzzer's bytes replace one document. It must never panic, whatever the
//! bytes. The first byte is a control byte:
//! * bits 0-2: which document is replaced: 0 the new root (v2), 1 timestamp,
//!   2 snapshot, 3 top-level targets, 4 delegated targets `authors`, 5 the
//!   trusted root itself; 6 and 7 replace nothing (a valid run, so the
//!   fixture is checked for staying valid);
//! * bit 3: the snapshot comes from the local store (skips length/hash);
//! * bit 4: offer the valid document first, then the fuzzed one (rollback
//!   and "unchanged" comparisons);
//! * bit 7: the rest is the *signed* part only: if it parses, the harness
//!   signs it with that role's key, so the semantic checks (versions,
//!   expiry, meta, delegations) are reached, not just the signature check.
#![no_main]

use cpantuf_core::canonical;
use cpantuf_core::trusted::TrustedSet;
use cpantuf_fuzz::{now, seed_of, sign_value, Fixture};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let fx = FIXTURE.get_or_init(Fixture::new);
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let slot = ctl & 7;
    let from_local = ctl & 8 != 0;
    let twice = ctl & 16 != 0;
    let payload: Vec<u8> = if ctl & 128 != 0 {
        let role = match slot {
            0 | 5 => "root",
            1 => "timestamp",
            2 => "snapshot",
            3 => "targets",
            _ => "authors",
        };
        let Ok(value) = canonical::parse(rest) else {
            return;
        };
        if canonical::encode(&value).is_err() {
            return;
        }
        sign_value(&value, seed_of(role))
    } else {
        rest.to_vec()
    };
    let pick = |n: u8, valid: &[u8]| -> Vec<u8> {
        if slot == n {
            payload.clone()
        } else {
            valid.to_vec()
        }
    };

    let Ok(mut set) = TrustedSet::new(&pick(5, &fx.root), now()) else {
        assert_eq!(slot, 5, "the fixture's trusted root was refused");
        return;
    };
    let valid_run = slot >= 6;

    if twice && slot == 0 {
        let _ = set.update_root(&fx.root2);
    }
    let r = set.update_root(&pick(0, &fx.root2));
    assert!(!valid_run || r.is_ok(), "fixture root v2 refused: {r:?}");

    if twice && slot == 1 {
        let _ = set.update_timestamp(&fx.timestamp);
    }
    let r = set.update_timestamp(&pick(1, &fx.timestamp));
    assert!(!valid_run || r.is_ok(), "fixture timestamp refused: {r:?}");

    if twice && slot == 2 {
        let _ = set.update_snapshot(&fx.snapshot, from_local);
    }
    let r = set.update_snapshot(&pick(2, &fx.snapshot), from_local);
    assert!(!valid_run || r.is_ok(), "fixture snapshot refused: {r:?}");

    if twice && slot == 3 {
        let _ = set.update_targets(&fx.targets, "targets", "root");
    }
    let r = set.update_targets(&pick(3, &fx.targets), "targets", "root");
    assert!(!valid_run || r.is_ok(), "fixture targets refused: {r:?}");

    if twice && slot == 4 {
        let _ = set.update_targets(&fx.authors, "authors", "targets");
    }
    let r = set.update_targets(&pick(4, &fx.authors), "authors", "targets");
    assert!(!valid_run || r.is_ok(), "fixture authors refused: {r:?}");

    // Lookups on whatever state was reached.
    let _ = set.has_targets("authors");
    let _ = set.reverify_cached("authors", "targets");
});
