//! One test per attack. Each refused update asserts the exact error and the
//! local store afterwards: what the workflow had already verified and
//! persisted before the failure, and nothing else.

use crate::expect_err;
use crate::sim::signer;
use crate::sim::{envelope_over, key, now, nz, Repo, Sim};
use chrono::Duration;
use cpantuf_core::crypto::compute_keyid;
use cpantuf_core::metadata::{signed_value, Key, KeyId, KeyVal, RoleKeys};
use cpantuf_core::target::{HashError, StreamVerifier};
use cpantuf_core::trusted::UpdateError;
use cpantuf_core::workflow::FetchError;
use std::collections::BTreeMap;

/// The requests a fresh refresh of an unchanged v1 repository makes.
const V1_REFRESH: [&str; 4] = [
    "2.root.json",
    "timestamp.json",
    "1.snapshot.json",
    "1.targets.json",
];

/// A client that has completed one refresh of a new repository.
fn refreshed() -> Sim {
    let mut sim = Sim::new();
    sim.refresh().unwrap();
    assert_eq!(sim.requests, V1_REFRESH);
    assert_eq!(sim.not_found, ["2.root.json"]);
    sim
}

/// The store `before`, with `roles` replaced by the repository's current
/// bytes of `files`.
fn with_new(
    sim: &Sim,
    before: &BTreeMap<String, Vec<u8>>,
    roles: &[(&str, &str)],
) -> BTreeMap<String, Vec<u8>> {
    let mut want = before.clone();
    for (role, file) in roles {
        want.insert(role.to_string(), sim.repo.file(file));
    }
    want
}

// ---------------------------------------------------------------- rollback

#[test]
fn rollback_attack_replayed_older_timestamp_is_refused() {
    let mut sim = refreshed();
    let old = sim.repo.file("timestamp.json");
    sim.repo.update_timestamp();
    sim.refresh().unwrap();
    assert_eq!(sim.local_version("timestamp"), Some(2));
    let before = sim.store();

    sim.repo.files.insert("timestamp.json".into(), old);
    expect_err!(
        sim.refresh(),
        UpdateError::Rollback { role, trusted: 2, new: 1 } if role == "timestamp"
    );
    sim.assert_store(&before);
    assert_eq!(sim.requests, ["2.root.json", "timestamp.json"]);
}

#[test]
fn rollback_attack_snapshot_version_in_timestamp_goes_down() {
    let mut sim = refreshed();
    sim.repo.update_snapshot(); // snapshot v2, timestamp v2
    sim.refresh().unwrap();
    let before = sim.store();

    // Timestamp v3, correctly signed, names snapshot v1 again.
    sim.repo
        .timestamp
        .meta
        .get_mut("snapshot.json")
        .unwrap()
        .version = nz(1);
    sim.repo.update_timestamp();
    expect_err!(
        sim.refresh(),
        UpdateError::Rollback { role, trusted: 2, new: 1 }
            if role == "snapshot (as listed in timestamp)"
    );
    sim.assert_store(&before);
}

#[test]
fn rollback_attack_older_snapshot_is_refused() {
    let mut sim = refreshed();
    sim.repo.update_targets("targets"); // targets v2, snapshot v2, timestamp v2
    sim.refresh().unwrap();
    let before = sim.store();
    let snapshot_v1 = sim.repo.file("1.snapshot.json");
    let snapshot_v2 = sim.repo.file("2.snapshot.json");

    // The new timestamp names snapshot v3; a mirror serves the old v1 (which
    // lists targets v1) in its place.
    sim.repo.update_snapshot();
    sim.repo.files.insert("3.snapshot.json".into(), snapshot_v1);
    expect_err!(
        sim.refresh(),
        UpdateError::Rollback { role, trusted: 2, new: 1 }
            if role == "targets.json (as listed in snapshot)"
    );
    // Timestamp v3 verified and was persisted; the snapshot was not.
    let want = with_new(&sim, &before, &[("timestamp", "timestamp.json")]);
    sim.assert_store(&want);
    assert_eq!(sim.local_rejected, ["snapshot"]);

    // Replaying the trusted v2 itself is refused too: not what timestamp names.
    sim.repo.files.insert("3.snapshot.json".into(), snapshot_v2);
    expect_err!(
        sim.refresh(),
        UpdateError::VersionMismatch { role, expected: 3, got: 2 } if role == "snapshot"
    );
    sim.assert_store(&want);
}

#[test]
fn rollback_attack_targets_version_in_snapshot_goes_down() {
    let mut sim = refreshed();
    sim.repo.update_targets("targets");
    sim.refresh().unwrap();
    let before = sim.store();
    assert_eq!(sim.local_version("targets"), Some(2));

    // A compromised snapshot key lists targets v1 again.
    sim.repo.targets.get_mut("targets").unwrap().version = nz(1);
    sim.repo.publish_targets("targets");
    sim.repo.update_snapshot();
    expect_err!(
        sim.refresh(),
        UpdateError::Rollback { role, trusted: 2, new: 1 }
            if role == "targets.json (as listed in snapshot)"
    );
    let want = with_new(&sim, &before, &[("timestamp", "timestamp.json")]);
    sim.assert_store(&want);
}

#[test]
fn rollback_attack_snapshot_drops_a_role() {
    let mut sim = Sim::new();
    sim.repo.delegate("targets", "role-a", &["*"], false);
    sim.repo.publish_targets("role-a");
    sim.repo.update_targets("targets");
    sim.refresh().unwrap();
    let before = sim.store();

    sim.repo.snapshot.meta.remove("role-a.json");
    sim.repo.update_snapshot();
    expect_err!(
        sim.refresh(),
        UpdateError::MissingMeta { role, .. } if role == "role-a.json"
    );
    let want = with_new(&sim, &before, &[("timestamp", "timestamp.json")]);
    sim.assert_store(&want);
}

#[test]
fn rollback_attack_delegated_role_version_goes_down() {
    let mut sim = Sim::new();
    sim.repo.delegate("targets", "role-a", &["*"], false);
    sim.repo.add_target("role-a", "pkg.tar.gz", b"pkg");
    sim.repo.publish_targets("role-a");
    sim.repo.update_targets("targets");
    sim.repo.update_targets("role-a"); // role-a v2
    assert_eq!(sim.find("pkg.tar.gz").unwrap().unwrap().role, "role-a");
    assert_eq!(sim.local_version("role-a"), Some(2));
    let before = sim.store();

    sim.repo.targets.get_mut("role-a").unwrap().version = nz(1);
    sim.repo.publish_targets("role-a");
    sim.repo.update_snapshot();
    expect_err!(
        sim.find("pkg.tar.gz"),
        UpdateError::Rollback { role, trusted: 2, new: 1 }
            if role == "role-a.json (as listed in snapshot)"
    );
    let want = with_new(&sim, &before, &[("timestamp", "timestamp.json")]);
    sim.assert_store(&want);
}

// ------------------------------------------------------------------ freeze

#[test]
fn freeze_attack_expired_timestamp() {
    let mut sim = refreshed();
    sim.repo.timestamp.expires = now() + Duration::days(1);
    sim.repo.update_timestamp();
    sim.refresh().unwrap();
    let before = sim.store();

    // The mirror keeps serving the same (genuine, signed) timestamp.
    sim.now = now() + Duration::days(2);
    expect_err!(sim.refresh(), UpdateError::Expired { role, .. } if role == "timestamp");
    sim.assert_store(&before);
    // Expiry is inclusive: at exactly `expires` it is already expired.
    sim.now = now() + Duration::days(1);
    expect_err!(sim.refresh(), UpdateError::Expired { role, .. } if role == "timestamp");
    sim.now = now() + Duration::days(1) - Duration::seconds(1);
    sim.refresh().unwrap();
    sim.assert_store(&before);

    // A newer timestamp that is already expired is not persisted either.
    sim.now = now();
    sim.repo.timestamp.expires = now() - Duration::seconds(1);
    sim.repo.update_timestamp();
    expect_err!(sim.refresh(), UpdateError::Expired { role, .. } if role == "timestamp");
    sim.assert_store(&before);
}

#[test]
fn freeze_attack_expired_snapshot() {
    let mut sim = refreshed();
    sim.repo.snapshot.expires = now() + Duration::days(1);
    sim.repo.update_snapshot();
    sim.refresh().unwrap();
    let before = sim.store();

    sim.now = now() + Duration::days(2);
    expect_err!(sim.refresh(), UpdateError::Expired { role, .. } if role == "snapshot");
    sim.assert_store(&before);
    assert_eq!(sim.local_rejected, ["snapshot"]);
}

#[test]
fn freeze_attack_expired_targets() {
    let mut sim = refreshed();
    sim.repo.targets.get_mut("targets").unwrap().expires = now() + Duration::days(1);
    sim.repo.update_targets("targets");
    sim.refresh().unwrap();
    let before = sim.store();

    sim.now = now() + Duration::days(2);
    expect_err!(sim.refresh(), UpdateError::Expired { role, .. } if role == "targets");
    sim.assert_store(&before);
    assert_eq!(sim.requests.last().unwrap(), "2.targets.json");
}

#[test]
fn freeze_attack_expired_delegated_role() {
    let mut sim = Sim::new();
    sim.repo.delegate("targets", "role-a", &["*"], false);
    sim.repo.add_target("role-a", "pkg.tar.gz", b"pkg");
    sim.repo.targets.get_mut("role-a").unwrap().expires = now() + Duration::days(1);
    sim.repo.publish_targets("role-a");
    sim.repo.update_targets("targets");
    sim.find("pkg.tar.gz").unwrap().unwrap();
    let before = sim.store();

    sim.now = now() + Duration::days(2);
    expect_err!(
        sim.find("pkg.tar.gz"),
        UpdateError::Expired { role, .. } if role == "role-a"
    );
    sim.assert_store(&before);
    assert_eq!(sim.local_rejected, ["role-a"]);
}

#[test]
fn freeze_attack_expired_delegated_role_costs_only_its_subtree_when_loading_all() {
    use cpantuf_core::workflow::{self, Search};
    let mut sim = Sim::new();
    sim.repo.delegate("targets", "role-a", &["a/*"], true);
    sim.repo.delegate("targets", "role-b", &["b/*"], true);
    sim.repo.delegate("role-a", "role-a-child", &["a/*"], true);
    sim.repo.add_target("role-a-child", "a/pkg.tar.gz", b"a");
    sim.repo.add_target("role-b", "b/pkg.tar.gz", b"b");
    sim.repo.targets.get_mut("role-a").unwrap().expires = now() + Duration::days(1);
    sim.repo.publish_all();
    sim.repo.update_targets("targets");
    sim.now = now() + Duration::days(2);

    let mut t = sim.refresh().unwrap();
    let limits = sim.limits.clone();
    let all = workflow::load_all_targets(&mut t, &mut sim, &limits, 100).unwrap();
    assert_eq!(all.loaded, ["targets", "role-b"]);
    let [refused] = &all.refused[..] else {
        panic!("{:?}", all.refused)
    };
    assert_eq!(
        (refused.role.as_str(), refused.delegator.as_str()),
        ("role-a", "targets")
    );
    assert!(matches!(&refused.error, UpdateError::Expired { role, .. } if role == "role-a"));
    // The copy refused for its expiry alone is the one the repository serves.
    assert_eq!(refused.expired_copy, Some(sim.repo.file("1.role-a.json")));
    assert!(
        !sim.local.contains_key("role-a"),
        "an expired role was stored"
    );

    // The search past it: blocked below role-a, without fetching it again; found elsewhere.
    let untrusted = all.untrusted(&t);
    sim.requests.clear();
    let search = |sim: &mut Sim, t: &mut _, path| {
        workflow::find_target_avoiding(t, sim, &limits, path, &untrusted).unwrap()
    };
    assert!(
        matches!(search(&mut sim, &mut t, "a/pkg.tar.gz"), Search::Blocked { role } if role == "role-a")
    );
    assert!(
        matches!(search(&mut sim, &mut t, "b/pkg.tar.gz"), Search::Found(f) if f.role == "role-b")
    );
    assert!(sim.requests.is_empty(), "{:?}", sim.requests);
    // A client's strict search still fails there.
    expect_err!(
        sim.find_in(&mut t, "a/pkg.tar.gz"),
        UpdateError::Expired { role, .. } if role == "role-a"
    );
}

#[test]
fn freeze_attack_expired_final_root() {
    // The trusted root itself expired and no newer one is published.
    let mut sim = refreshed();
    let before = sim.store();
    sim.now = crate::sim::later();
    expect_err!(sim.refresh(), UpdateError::Expired { role, .. } if role == "root");
    sim.assert_store(&before);
    sim.now = now();

    // An expired intermediate root is fine ...
    sim.repo.root.expires = now() - Duration::days(1);
    sim.repo.bump_root(); // v2, expired
    sim.repo.root.expires = now() + Duration::days(30);
    sim.repo.bump_root(); // v3
    sim.refresh().unwrap();
    assert_eq!(sim.local_version("root"), Some(3));

    // ... an expired final root is not. It was verified and is kept (spec
    // 5.3.8 persists each new root before 5.3.10 checks expiry), but nothing
    // after it loads.
    let before = sim.store();
    sim.repo.root.expires = now() - Duration::seconds(1);
    sim.repo.bump_root(); // v4, expired
    sim.repo.update_timestamp();
    expect_err!(sim.refresh(), UpdateError::Expired { role, .. } if role == "root");
    let want = with_new(&sim, &before, &[("root", "4.root.json")]);
    sim.assert_store(&want);
    assert_eq!(
        sim.requests,
        ["4.root.json", "5.root.json", "timestamp.json"]
    );
    assert_eq!(sim.local_rejected, ["timestamp"]);
}

// ---------------------------------------------------------- mix and match

#[test]
fn mix_and_match_snapshot_not_the_version_timestamp_names() {
    let mut sim = refreshed();
    let before = sim.store();
    sim.repo.update_snapshot();
    let old = sim.repo.file("1.snapshot.json");
    sim.repo.files.insert("2.snapshot.json".into(), old);
    expect_err!(
        sim.refresh(),
        UpdateError::VersionMismatch { role, expected: 2, got: 1 } if role == "snapshot"
    );
    let want = with_new(&sim, &before, &[("timestamp", "timestamp.json")]);
    sim.assert_store(&want);
}

#[test]
fn mix_and_match_targets_not_the_version_snapshot_names() {
    let mut sim = refreshed();
    let before = sim.store();
    sim.repo.update_targets("targets");
    let old = sim.repo.file("1.targets.json");
    sim.repo.files.insert("2.targets.json".into(), old);
    expect_err!(
        sim.refresh(),
        UpdateError::VersionMismatch { role, expected: 2, got: 1 } if role == "targets"
    );
    let want = with_new(
        &sim,
        &before,
        &[
            ("timestamp", "timestamp.json"),
            ("snapshot", "2.snapshot.json"),
        ],
    );
    sim.assert_store(&want);
}

#[test]
fn mix_and_match_snapshot_hash_in_timestamp_mismatch() {
    let mut repo = Repo::new();
    repo.meta_hashes = true;
    repo.meta_lengths = true;
    repo.publish_all();
    let mut sim = Sim::with_repo(repo);
    sim.refresh().unwrap();
    let before = sim.store();

    // A different snapshot v2, correctly signed by the snapshot key and of
    // the same length, but not the one the timestamp hashes.
    sim.repo.update_snapshot();
    let mut other = sim.repo.snapshot.clone();
    other.expires += Duration::seconds(1);
    let other = sim.repo.sign("snapshot", &other);
    assert_eq!(other.len(), sim.repo.file("2.snapshot.json").len());
    sim.repo.files.insert("2.snapshot.json".into(), other);
    expect_err!(
        sim.refresh(),
        UpdateError::SignedMeta {
            by,
            mismatch: HashError::Mismatch { algorithm, .. }
        } if algorithm == "sha256" && by == "timestamp version 2"
    );
    let want = with_new(&sim, &before, &[("timestamp", "timestamp.json")]);
    sim.assert_store(&want);

    // Shorter than the signed length.
    let good = sim.repo.sign("snapshot", &sim.repo.snapshot);
    sim.repo
        .files
        .insert("2.snapshot.json".into(), good[..good.len() - 1].to_vec());
    expect_err!(
        sim.refresh(),
        UpdateError::SignedMeta {
            mismatch: HashError::Length { .. },
            ..
        }
    );
    sim.assert_store(&want);

    // The genuine bytes still go through.
    sim.repo.files.insert("2.snapshot.json".into(), good);
    sim.refresh().unwrap();
    assert_eq!(sim.local_version("snapshot"), Some(2));
}

#[test]
fn rolled_back_snapshot_message_names_the_timestamp_that_signed_its_length() {
    let mut repo = Repo::new();
    repo.meta_hashes = true;
    repo.meta_lengths = true;
    repo.publish_all();
    let mut sim = Sim::with_repo(repo);
    sim.refresh().unwrap();
    let v1 = sim.repo.file("1.snapshot.json");

    // Snapshot v2 lists one more role, so it is longer than v1; a mirror
    // serves v1 under v2's name.
    sim.repo.delegate("targets", "role-a", &["*"], false);
    sim.repo.update_targets("targets");
    sim.repo.publish_targets("role-a");
    sim.repo.update_snapshot();
    let signed = sim.repo.timestamp.meta["snapshot.json"].length.unwrap();
    let ts_version = sim.repo.timestamp.version;
    assert!(signed > v1.len() as u64);
    sim.repo.files.insert(
        format!("{}.snapshot.json", sim.repo.snapshot.version),
        v1.clone(),
    );
    let e = sim
        .refresh()
        .err()
        .expect("a rolled-back snapshot was accepted");
    assert_eq!(
        e.to_string(),
        format!(
            "snapshot.json is {} bytes, but timestamp version {ts_version} says it is {signed} \
             bytes: a rollback or mix-and-match refused",
            v1.len()
        )
    );
}

// ------------------------------------------------ arbitrary package, endless data

const ALICE_PKG: &str = "authors/id/A/AL/ALICE/Foo-1.0.tar.gz";

#[test]
fn arbitrary_package_tampered_target_bytes_refused() {
    let mut sim = Sim::new();
    sim.repo
        .add_target("targets", ALICE_PKG, b"genuine package bytes");
    sim.repo.update_targets("targets");
    let found = sim.find(ALICE_PKG).unwrap().expect("listed");
    assert_eq!(found.role, "targets");
    assert_eq!(found.path, ALICE_PKG);

    StreamVerifier::for_target(&found.path, &found.info)
        .unwrap()
        .check_all(b"genuine package bytes")
        .unwrap();
    let err = StreamVerifier::for_target(&found.path, &found.info)
        .unwrap()
        .check_all(b"evil!!! package bytes")
        .unwrap_err();
    assert!(
        matches!(&err, HashError::Mismatch { algorithm, .. } if algorithm == "sha256"),
        "{err:?}"
    );
    // A path nobody lists is not found at all.
    let mut t = sim.refresh().unwrap();
    assert!(sim
        .find_in(&mut t, "authors/id/A/AL/ALICE/Bar-1.0.tar.gz")
        .unwrap()
        .is_none());
}

#[test]
fn endless_data_target_longer_than_signed_length() {
    let content = vec![b'x'; 10_000];
    let mut sim = Sim::new();
    sim.repo.add_target("targets", ALICE_PKG, &content);
    sim.repo.update_targets("targets");
    let found = sim.find(ALICE_PKG).unwrap().unwrap();

    // An endless stream: refused at the first chunk that passes the length.
    let mut v = StreamVerifier::for_target(&found.path, &found.info).unwrap();
    let chunk = [b'x'; 4096];
    let mut fed = 0u64;
    let err = loop {
        match v.update(&chunk) {
            Ok(()) => fed += chunk.len() as u64,
            Err(e) => break e,
        }
        assert!(fed <= 10_000, "accepted {fed} bytes");
    };
    assert_eq!(fed, 8192);
    assert_eq!(
        err,
        HashError::TooLong {
            what: format!("target {ALICE_PKG}"),
            expected: 10_000,
            signed: true,
        }
    );
    // One byte more than signed, in one piece.
    let mut long = content.clone();
    long.push(b'x');
    assert!(matches!(
        StreamVerifier::for_target(&found.path, &found.info)
            .unwrap()
            .check_all(&long),
        Err(HashError::TooLong {
            expected: 10_000,
            ..
        })
    ));
}

#[test]
fn endless_data_metadata_over_length_in_snapshot() {
    let mut repo = Repo::new();
    repo.meta_lengths = true;
    repo.publish_all();
    let mut sim = Sim::with_repo(repo);
    sim.refresh().unwrap();
    let before = sim.store();

    // targets v2, padded with trailing whitespace: still valid JSON with a
    // valid signature, but longer than the length snapshot signs.
    sim.repo.update_targets("targets");
    let signed_len = sim.repo.snapshot.meta["targets.json"].length.unwrap();
    let mut long = sim.repo.file("2.targets.json");
    long.extend(std::iter::repeat_n(b' ', 100_000));
    sim.repo.files.insert("2.targets.json".into(), long);
    let want = with_new(
        &sim,
        &before,
        &[
            ("timestamp", "timestamp.json"),
            ("snapshot", "2.snapshot.json"),
        ],
    );

    // The fetcher is told the signed length as its cap, and its refusal is
    // reported as the length snapshot signed ...
    let e = expect_err!(
        sim.refresh(),
        UpdateError::SignedMeta {
            mismatch: HashError::TooLong { expected, signed: true, .. },
            ..
        } if *expected == signed_len
    );
    assert!(
        sim.requests.last().is_some_and(|r| r == "2.targets.json"),
        "{:?}",
        sim.requests
    );
    assert_eq!(
        e.to_string(),
        format!(
            "targets.json is larger than the {signed_len} bytes snapshot version 2 says it is: \
             a rollback, mix-and-match or endless-data attack refused"
        )
    );
    sim.assert_store(&want);
    // ... and if a fetcher ignored it, the state machine refuses the bytes.
    sim.honour_caps = false;
    expect_err!(
        sim.refresh(),
        UpdateError::SignedMeta {
            mismatch: HashError::TooLong { expected, .. },
            ..
        } if *expected == signed_len
    );
    sim.assert_store(&want);

    // Timestamp has no signed length: the configured cap bounds it.
    sim.honour_caps = true;
    let mut ts = sim.repo.file("timestamp.json");
    ts.extend(std::iter::repeat_n(b' ', 20_000));
    sim.repo.files.insert("timestamp.json".into(), ts);
    expect_err!(
        sim.refresh(),
        UpdateError::Fetch {
            source: FetchError::TooLarge { limit: 16_384 },
            ..
        }
    );
    sim.assert_store(&want);
}

// ------------------------------------------------------------- delegations

#[test]
fn wrong_author_target_outside_delegated_paths_is_not_found() {
    let alice_evil = "authors/id/A/AL/ALICE/Evil-1.0.tar.gz";
    let bob_good = "authors/id/B/BO/BOB/Good-1.0.tar.gz";
    let mut sim = Sim::new();
    sim.repo.delegate(
        "targets",
        "author-ALICE",
        &["authors/id/A/AL/ALICE/*"],
        true,
    );
    sim.repo
        .delegate("targets", "author-BOB", &["authors/id/B/BO/BOB/*"], true);
    sim.repo.add_target("author-BOB", bob_good, b"bob");
    // BOB's key signs a file in ALICE's directory.
    sim.repo.add_target("author-BOB", alice_evil, b"evil");
    sim.repo.publish_targets("author-ALICE");
    sim.repo.publish_targets("author-BOB");
    sim.repo.update_targets("targets");

    let mut t = sim.refresh().unwrap();
    sim.requests.clear();
    assert!(sim.find_in(&mut t, alice_evil).unwrap().is_none());
    assert_eq!(sim.requests, ["1.author-ALICE.json"], "BOB is never asked");
    let found = sim.find_in(&mut t, bob_good).unwrap().unwrap();
    assert_eq!(found.role, "author-BOB");
    // Even with a fresh set and BOB's metadata already trusted and stored.
    let mut t = sim.refresh().unwrap();
    sim.find_in(&mut t, bob_good).unwrap().unwrap();
    assert!(sim.find_in(&mut t, alice_evil).unwrap().is_none());
}

#[test]
fn terminating_delegation_stops_search() {
    let mut sim = Sim::new();
    sim.repo.delegate("targets", "A", &["*"], true);
    sim.repo.delegate("targets", "B", &["*"], false);
    sim.repo.add_target("B", "pkg.tar.gz", b"pkg");
    sim.repo.publish_all();
    sim.repo.update_targets("targets");
    let mut t = sim.refresh().unwrap();
    sim.requests.clear();
    assert!(sim.find_in(&mut t, "pkg.tar.gz").unwrap().is_none());
    assert_eq!(sim.requests, ["1.A.json"]);

    // Terminating below a non-terminating parent: the search of the
    // parent's later siblings stops too (spec 5.7.2.2 / python-tuf).
    let mut sim = Sim::new();
    sim.repo.delegate("targets", "P", &["*"], false);
    sim.repo.delegate("P", "A", &["*"], true);
    sim.repo.delegate("targets", "B", &["*"], false);
    sim.repo.add_target("B", "pkg.tar.gz", b"pkg");
    sim.repo.publish_all();
    sim.repo.update_targets("targets");
    let mut t = sim.refresh().unwrap();
    sim.requests.clear();
    assert!(sim.find_in(&mut t, "pkg.tar.gz").unwrap().is_none());
    assert_eq!(sim.requests, ["1.P.json", "1.A.json"]);
}

#[test]
fn non_terminating_delegation_falls_through() {
    let mut sim = Sim::new();
    sim.repo.delegate("targets", "A", &["*"], false);
    sim.repo.delegate("targets", "B", &["*"], false);
    sim.repo.add_target("B", "pkg.tar.gz", b"pkg");
    sim.repo.publish_all();
    sim.repo.update_targets("targets");
    let mut t = sim.refresh().unwrap();
    sim.requests.clear();
    let found = sim.find_in(&mut t, "pkg.tar.gz").unwrap().unwrap();
    assert_eq!(found.role, "B");
    assert_eq!(sim.requests, ["1.A.json", "1.B.json"]);
    // Non-matching paths are not followed at all.
    sim.requests.clear();
    assert!(sim.find_in(&mut t, "dir/pkg.tar.gz").unwrap().is_none());
    assert!(sim.requests.is_empty());
}

#[test]
fn delegated_role_not_in_snapshot_is_refused() {
    let mut sim = Sim::new();
    sim.repo.delegate("targets", "A", &["*"], false);
    sim.repo.add_target("A", "pkg.tar.gz", b"pkg");
    sim.repo.publish_targets("A");
    sim.repo.snapshot.meta.remove("A.json");
    sim.repo.update_targets("targets");
    let mut t = sim.refresh().unwrap();
    let before = sim.store();
    sim.requests.clear();
    expect_err!(
        sim.find_in(&mut t, "pkg.tar.gz"),
        UpdateError::MissingMeta { role, .. } if role == "A"
    );
    assert!(sim.requests.is_empty(), "{:?}", sim.requests);
    sim.assert_store(&before);
    // Not even a locally stored copy is trusted.
    sim.local.insert("A".into(), sim.repo.file("1.A.json"));
    let before = sim.store();
    let mut t = sim.refresh().unwrap();
    expect_err!(
        sim.find_in(&mut t, "pkg.tar.gz"),
        UpdateError::MissingMeta { role, .. } if role == "A"
    );
    sim.assert_store(&before);
}

fn flat_delegations(n: usize, listed_in: usize) -> Sim {
    let mut sim = Sim::new();
    for i in 0..n {
        sim.repo
            .delegate("targets", &format!("r{i:02}"), &["*"], false);
    }
    sim.repo
        .add_target(&format!("r{listed_in:02}"), "pkg.tar.gz", b"pkg");
    sim.repo.publish_all();
    sim.repo.update_targets("targets");
    sim
}

#[test]
fn delegation_search_is_bounded_by_max_delegations() {
    assert_eq!(sim_default_max(), 32);
    // Listed in the 40th role: out of reach, and exactly 32 roles are fetched.
    let mut sim = flat_delegations(40, 39);
    let mut t = sim.refresh().unwrap();
    sim.requests.clear();
    assert!(sim.find_in(&mut t, "pkg.tar.gz").unwrap().is_none());
    let want: Vec<String> = (0..32).map(|i| format!("1.r{i:02}.json")).collect();
    assert_eq!(sim.requests, want);
    // Raising the bound finds it.
    sim.limits.max_delegations = 40;
    assert_eq!(
        sim.find_in(&mut t, "pkg.tar.gz").unwrap().unwrap().role,
        "r39"
    );
    // The 32nd delegated role is still within the default bound.
    let mut sim = flat_delegations(40, 31);
    assert_eq!(sim.find("pkg.tar.gz").unwrap().unwrap().role, "r31");
}

fn sim_default_max() -> usize {
    cpantuf_core::workflow::Limits::default().max_delegations
}

#[test]
fn cycle_in_delegations_terminates() {
    let mut sim = Sim::new();
    let seed_a = sim.repo.delegate("targets", "A", &["*"], false);
    let seed_b = sim.repo.delegate("A", "B", &["*"], false);
    sim.repo.delegate_with_key("B", "A", &["*"], false, seed_a);
    sim.repo.delegate_with_key("B", "B", &["*"], false, seed_b);
    sim.repo.publish_all();
    sim.repo.update_targets("targets");
    let mut t = sim.refresh().unwrap();
    sim.requests.clear();
    assert!(sim.find_in(&mut t, "pkg.tar.gz").unwrap().is_none());
    assert_eq!(sim.requests, ["1.A.json", "1.B.json"]);
}

// ------------------------------------------------------------ fast forward

#[test]
fn fast_forward_attack_recovered_by_timestamp_key_rotation() {
    let mut sim = refreshed();
    // An attacker with the timestamp key pushes the version to the top.
    sim.repo.timestamp.version = nz(u64::MAX);
    sim.repo.publish_timestamp();
    sim.refresh().unwrap();
    assert_eq!(sim.local_version("timestamp"), Some(u64::MAX));
    // The genuine repository can no longer publish a timestamp ...
    sim.repo.timestamp.version = nz(2);
    sim.repo.publish_timestamp();
    let before = sim.store();
    expect_err!(
        sim.refresh(),
        UpdateError::Rollback { role, trusted: u64::MAX, new: 2 } if role == "timestamp"
    );
    sim.assert_store(&before);
    // ... until root rotates the timestamp key.
    sim.repo.rotate_keys("timestamp");
    sim.repo.bump_root();
    sim.repo.timestamp.version = nz(1);
    sim.repo.publish_timestamp();
    sim.refresh().unwrap();
    assert_eq!(sim.local_version("root"), Some(2));
    assert_eq!(sim.local_version("timestamp"), Some(1));
    assert_eq!(sim.local_rejected, ["timestamp"]);
}

#[test]
fn fast_forward_attack_recovered_by_snapshot_key_rotation() {
    let mut sim = refreshed();
    sim.repo.snapshot.version = nz(u64::MAX);
    sim.repo.publish_snapshot();
    sim.repo.update_timestamp();
    sim.refresh().unwrap();
    assert_eq!(sim.local_version("snapshot"), Some(u64::MAX));
    // The genuine repository's next snapshot is refused ...
    sim.repo.snapshot.version = nz(2);
    sim.repo.publish_snapshot();
    sim.repo.update_timestamp();
    let before = sim.store();
    expect_err!(
        sim.refresh(),
        UpdateError::Rollback { role, trusted: u64::MAX, new: 2 }
            if role == "snapshot (as listed in timestamp)"
    );
    sim.assert_store(&before);
    // ... until root rotates the snapshot and timestamp keys.
    sim.repo.rotate_keys("snapshot");
    sim.repo.rotate_keys("timestamp");
    sim.repo.bump_root();
    sim.repo.snapshot.version = nz(1);
    sim.repo.publish_snapshot();
    sim.repo.update_timestamp();
    sim.refresh().unwrap();
    assert_eq!(sim.local_version("snapshot"), Some(1));
    assert_eq!(sim.local_rejected, ["timestamp", "snapshot"]);
}

#[test]
fn fast_forward_attack_recovered_by_targets_version_reset() {
    let mut sim = refreshed();
    // An attacker with the snapshot and targets keys.
    sim.repo.targets.get_mut("targets").unwrap().version = nz(u64::MAX);
    sim.repo.publish_targets("targets");
    sim.repo.update_snapshot();
    sim.refresh().unwrap();
    assert_eq!(sim.local_version("targets"), Some(u64::MAX));
    sim.repo.rotate_keys("snapshot");
    sim.repo.rotate_keys("timestamp");
    sim.repo.bump_root();
    sim.repo.targets.get_mut("targets").unwrap().version = nz(1);
    sim.repo.publish_targets("targets");
    sim.repo.update_snapshot();
    sim.refresh().unwrap();
    assert_eq!(sim.local_version("targets"), Some(1));
}

// -------------------------------------------------------- key compromise

/// A repository whose root role has three keys and threshold 2.
fn root_two_of_three() -> (Sim, Vec<(KeyId, u8)>) {
    let mut repo = Repo::new();
    let mut signers = repo.signers["root"].clone();
    for _ in 0..2 {
        let seed = repo.fresh_seed();
        let (id, k) = key(seed);
        repo.root.keys.insert(id.clone(), k);
        signers.push((id, seed));
    }
    repo.root.roles.insert(
        "root".into(),
        RoleKeys {
            keyids: signers.iter().map(|(id, _)| id.clone()).collect(),
            threshold: nz(2),
        },
    );
    repo.signers.insert("root".into(), signers.clone());
    repo.publish_root();
    (Sim::with_repo(repo), signers)
}

#[test]
fn key_compromise_below_threshold_root_2_of_3_signed_by_one() {
    let (mut sim, signers) = root_two_of_three();
    sim.refresh().unwrap();
    let before = sim.store();
    // The holder of one root key publishes root v2 making themselves sole signer.
    sim.repo
        .signers
        .insert("root".into(), signers[..1].to_vec());
    sim.repo.root.roles.get_mut("root").unwrap().threshold = nz(1);
    sim.repo.bump_root();
    let e = expect_err!(sim.refresh(), UpdateError::Signature(_));
    let UpdateError::Signature(t) = e else {
        unreachable!()
    };
    assert_eq!((t.valid, t.threshold), (1, 2));
    assert_eq!(t.role, "new root (by the trusted root's keys)");
    sim.assert_store(&before);
    // Two of three is enough.
    sim.repo
        .signers
        .insert("root".into(), signers[1..].to_vec());
    sim.repo.publish_root();
    sim.refresh().unwrap();
    assert_eq!(sim.local_version("root"), Some(2));
}

#[test]
fn key_compromise_below_threshold_same_key_under_two_keyids() {
    let mut repo = Repo::new();
    let (ts_id, ts_seed) = repo.signers["timestamp"][0].clone();
    let alias = KeyId("alias-of-the-timestamp-key".into());
    repo.root.keys.insert(alias.clone(), key(ts_seed).1);
    repo.root.roles.insert(
        "timestamp".into(),
        RoleKeys {
            keyids: vec![ts_id.clone(), alias.clone()],
            threshold: nz(2),
        },
    );
    repo.publish_root();
    repo.signers
        .insert("timestamp".into(), vec![(ts_id, ts_seed), (alias, ts_seed)]);
    repo.publish_timestamp();
    let mut sim = Sim::with_repo(repo);
    let before = sim.store();
    let e = expect_err!(sim.refresh(), UpdateError::Signature(_));
    let UpdateError::Signature(t) = e else {
        unreachable!()
    };
    assert_eq!((t.role.as_str(), t.valid, t.threshold), ("timestamp", 1, 2));
    assert!(t.rejected[0].1.contains("same key material"), "{t}");
    sim.assert_store(&before);
}

#[test]
fn duplicate_signatures_for_one_keyid_refused() {
    let mut repo = Repo::new();
    repo.root.roles.get_mut("timestamp").unwrap().threshold = nz(2);
    repo.publish_root();
    let signer = repo.signers["timestamp"][0].clone();
    let canon =
        cpantuf_core::canonical::encode(&cpantuf_core::metadata::signed_value(&repo.timestamp))
            .unwrap();
    repo.files.insert(
        "timestamp.json".into(),
        envelope_over(&canon, &[signer.clone(), signer]),
    );
    let mut sim = Sim::with_repo(repo);
    let before = sim.store();
    expect_err!(
        sim.refresh(),
        UpdateError::Metadata {
            role,
            source: cpantuf_core::metadata::MetadataError::Envelope(_)
        } if role == "timestamp"
    );
    sim.assert_store(&before);
}

// ------------------------------------------- one key under two spellings

/// The spellings of one key that must count once toward a threshold.
const SPELLINGS: [&str; 3] = [
    "ed25519 hex in lower and upper case",
    "ecdsa keytype `ecdsa` and `ecdsa-sha2-nistp256`",
    "ecdsa PEM with LF and CRLF line endings",
];

/// Signs a message, returning the hex signature.
type SignFn = Box<dyn Fn(&[u8]) -> String>;

/// One key written two ways, each under its own key id, and a function that
/// signs with that key.
struct TwoSpellings {
    keys: [(KeyId, Key); 2],
    sign: SignFn,
}

fn p256_key(keytype: &str, ending: p256::pkcs8::LineEnding) -> Key {
    use p256::pkcs8::EncodePublicKey;
    let sk = p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
    let pem = sk.verifying_key().to_public_key_pem(ending).unwrap();
    Key {
        keytype: keytype.into(),
        scheme: "ecdsa-sha2-nistp256".into(),
        keyval: KeyVal { public: Some(pem) },
    }
}

fn p256_sign(message: &[u8]) -> String {
    use p256::ecdsa::signature::Signer;
    let sk = p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
    let sig: p256::ecdsa::Signature = sk.sign(message);
    hex::encode(sig.to_der().as_bytes())
}

fn two_spellings(form: &str) -> TwoSpellings {
    use p256::pkcs8::LineEnding;
    let (a, b, sign): (Key, Key, SignFn) = match form {
        f if f == SPELLINGS[0] => {
            let s = signer(77);
            let lower = s.public_key().clone();
            let mut upper = lower.clone();
            upper.keyval.public = lower.public().map(str::to_ascii_uppercase);
            (lower, upper, Box::new(move |m| s.sign_hex(m)))
        }
        f if f == SPELLINGS[1] => (
            p256_key("ecdsa", LineEnding::LF),
            p256_key("ecdsa-sha2-nistp256", LineEnding::LF),
            Box::new(p256_sign),
        ),
        _ => (
            p256_key("ecdsa", LineEnding::LF),
            p256_key("ecdsa", LineEnding::CRLF),
            Box::new(p256_sign),
        ),
    };
    assert_ne!(a, b, "{form}: the two spellings must differ as strings");
    TwoSpellings {
        keys: [(compute_keyid(&a), a), (compute_keyid(&b), b)],
        sign,
    }
}

impl TwoSpellings {
    fn keyids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|(id, _)| id.clone()).collect()
    }

    /// `signed`, with the key's signature under each of its two key ids.
    fn sign_twice(&self, signed: &serde_json::Value) -> Vec<u8> {
        let canon = cpantuf_core::canonical::encode(signed).unwrap();
        let sig = (self.sign)(&canon);
        let sigs: Vec<_> = self
            .keys
            .iter()
            .map(|(id, _)| serde_json::json!({"keyid": id.0, "sig": sig}))
            .collect();
        serde_json::to_vec(&serde_json::json!({"signed": signed, "signatures": sigs})).unwrap()
    }
}

/// The threshold error of a signature set that reached one key of two.
#[track_caller]
fn assert_counted_once(e: &UpdateError, role: &str, form: &str) {
    let UpdateError::Signature(t) = e else {
        panic!("{form}: expected a signature error, got {e}")
    };
    assert_eq!(
        (t.role.as_str(), t.valid, t.threshold),
        (role, 1, 2),
        "{form}"
    );
    assert!(t.rejected[0].1.contains("same key"), "{form}: {t}");
}

#[test]
fn key_compromise_one_root_key_under_two_spellings_counts_once() {
    for form in SPELLINGS {
        let mut repo = Repo::new();
        let two = two_spellings(form);
        repo.root.keys.extend(two.keys.clone());
        repo.root.roles.insert(
            "root".into(),
            RoleKeys {
                keyids: two.keyids(),
                threshold: nz(2),
            },
        );
        let root = two.sign_twice(&signed_value(&repo.root));
        repo.files.insert("1.root.json".into(), root.clone());
        repo.files.insert("root.json".into(), root);
        let mut sim = Sim::with_repo(repo);
        let e = expect_err!(sim.refresh(), UpdateError::Signature(_));
        assert_counted_once(&e, "root", form);
        // With threshold 1 the same key verifies under either spelling.
        sim.repo.root.roles.get_mut("root").unwrap().threshold = nz(1);
        let root = two.sign_twice(&signed_value(&sim.repo.root));
        sim.local.insert("root".into(), root);
        sim.refresh().unwrap_or_else(|e| panic!("{form}: {e}"));
    }
}

#[test]
fn key_compromise_one_delegated_key_under_two_spellings_counts_once() {
    for form in SPELLINGS {
        let mut repo = Repo::new();
        let two = two_spellings(form);
        repo.delegate("targets", "role-a", &["*"], false);
        let set_keys = |repo: &mut Repo, threshold: u64| {
            let d = repo.targets.get_mut("targets").unwrap();
            let d = d.delegations.as_mut().unwrap();
            d.keys = two.keys.clone().into_iter().collect();
            let role = &mut d.roles.as_mut().unwrap()[0];
            role.keyids = two.keyids();
            role.threshold = nz(threshold);
        };
        set_keys(&mut repo, 2);
        repo.add_target("role-a", "pkg.tar.gz", b"pkg");
        repo.publish_all();
        // Snapshot entries carry versions only, so the file can be re-signed.
        let role_a = two.sign_twice(&signed_value(&repo.targets["role-a"]));
        repo.files.insert("1.role-a.json".into(), role_a.clone());
        let mut sim = Sim::with_repo(repo);
        let e = expect_err!(sim.find("pkg.tar.gz"), UpdateError::Signature(_));
        assert_counted_once(&e, "role-a", form);
        assert!(
            !sim.local.contains_key("role-a"),
            "{form}: refused role stored"
        );

        set_keys(&mut sim.repo, 1);
        sim.repo.update_targets("targets");
        sim.repo.files.insert("1.role-a.json".into(), role_a);
        let found = sim
            .find("pkg.tar.gz")
            .unwrap_or_else(|e| panic!("{form}: {e}"));
        assert_eq!(found.map(|f| f.role).as_deref(), Some("role-a"), "{form}");
    }
}

// ---------------------------------------------------------- root rotation

#[test]
fn root_rotation_chain_one_version_at_a_time() {
    let mut sim = refreshed();
    for _ in 0..3 {
        sim.repo.rotate_root_key();
    }
    sim.refresh().unwrap();
    assert_eq!(
        sim.requests,
        [
            "2.root.json",
            "3.root.json",
            "4.root.json",
            "5.root.json",
            "timestamp.json",
        ]
    );
    assert_eq!(sim.not_found, ["5.root.json"]);
    assert_eq!(sim.local["root"], sim.repo.file("4.root.json"));
    // A client that trusts only v1 cannot skip to v4's keys.
    assert_eq!(sim.repo.root.roles["root"].keyids.len(), 1);
    assert!(!sim.repo.root.keys.contains_key(&key(1).0));
}

#[test]
fn root_version_skip_refused() {
    let mut sim = refreshed();
    let before = sim.store();
    sim.repo.root.version = nz(3);
    let v3 = sim.repo.sign("root", &sim.repo.root);
    sim.repo.files.insert("2.root.json".into(), v3);
    expect_err!(
        sim.refresh(),
        UpdateError::RootVersion { trusted: 1, got: 3 }
    );
    sim.assert_store(&before);
    // Replaying v1 as v2 is refused the same way.
    let v1 = sim.repo.file("1.root.json");
    sim.repo.files.insert("2.root.json".into(), v1);
    expect_err!(
        sim.refresh(),
        UpdateError::RootVersion { trusted: 1, got: 1 }
    );
    sim.assert_store(&before);
}

#[test]
fn root_rotation_bounded_by_max_root_rotations() {
    let mut sim = refreshed();
    for _ in 0..5 {
        sim.repo.bump_root(); // v2 ..= v6
    }
    sim.limits.max_root_rotations = 3;
    sim.refresh().unwrap();
    assert_eq!(sim.local_version("root"), Some(4));
    assert_eq!(
        sim.requests,
        [
            "2.root.json",
            "3.root.json",
            "4.root.json",
            "timestamp.json"
        ]
    );
    sim.refresh().unwrap();
    assert_eq!(sim.local_version("root"), Some(6));
    assert_eq!(
        &sim.requests[..4],
        [
            "5.root.json",
            "6.root.json",
            "7.root.json",
            "timestamp.json"
        ]
    );
}

#[test]
fn root_not_signed_by_new_keys_refused() {
    let mut sim = refreshed();
    let before = sim.store();
    let old = sim.repo.signers["root"].clone();
    sim.repo.rotate_keys("root");
    sim.repo.signers.insert("root".into(), old);
    sim.repo.bump_root();
    let e = expect_err!(sim.refresh(), UpdateError::Signature(_));
    let UpdateError::Signature(t) = e else {
        unreachable!()
    };
    assert_eq!(
        (t.role.as_str(), t.valid),
        ("new root (by its own keys)", 0)
    );
    sim.assert_store(&before);
}

#[test]
fn root_not_signed_by_old_keys_refused() {
    let mut sim = refreshed();
    let before = sim.store();
    sim.repo.rotate_keys("root");
    sim.repo.bump_root();
    let e = expect_err!(sim.refresh(), UpdateError::Signature(_));
    let UpdateError::Signature(t) = e else {
        unreachable!()
    };
    assert_eq!(
        (t.role.as_str(), t.valid),
        ("new root (by the trusted root's keys)", 0)
    );
    sim.assert_store(&before);
}

// ----------------------------------------------------------------- diamond

#[test]
fn cached_role_is_reverified_against_current_delegator() {
    // targets -> A -> C (key c1, paths a/*) and targets -> B -> C (key c2,
    // paths b/*). C is signed by c1 only, and lists a file under b/.
    let build = |sign_c_with_both: bool| {
        let mut sim = Sim::new();
        sim.repo.delegate("targets", "A", &["a/*", "b/*"], false);
        sim.repo.delegate("targets", "B", &["a/*", "b/*"], false);
        let c1 = sim.repo.delegate("A", "C", &["a/*"], false);
        let c2 = sim.repo.fresh_seed();
        sim.repo.delegate_with_key("B", "C", &["b/*"], false, c2);
        if sign_c_with_both {
            sim.repo
                .signers
                .insert("C".into(), vec![(key(c1).0, c1), (key(c2).0, c2)]);
        }
        sim.repo.add_target("C", "a/file", b"a");
        sim.repo.add_target("C", "b/evil", b"evil");
        sim.repo.publish_all();
        sim.repo.update_targets("targets");
        sim
    };

    let mut sim = build(false);
    let mut t = sim.refresh().unwrap();
    assert_eq!(sim.find_in(&mut t, "a/file").unwrap().unwrap().role, "C");
    let before = sim.store();
    // C is now trusted in this set via A; reached via B it must be checked
    // against B's key for C, which did not sign it.
    let e = expect_err!(sim.find_in(&mut t, "b/evil"), UpdateError::Signature(_));
    let UpdateError::Signature(th) = e else {
        unreachable!()
    };
    assert_eq!(th.role, "C (delegated by B)");
    // B itself verified and was stored on the way; C's stored copy is as before.
    let before = with_new(&sim, &before, &[("B", "1.B.json")]);
    sim.assert_store(&before);
    // A fresh set reaching C only via B refuses it too (local copy and remote).
    let mut t = sim.refresh().unwrap();
    expect_err!(sim.find_in(&mut t, "b/evil"), UpdateError::Signature(_));
    sim.assert_store(&before);

    // Signed by both keys, C is good via either path.
    let mut sim = build(true);
    let mut t = sim.refresh().unwrap();
    sim.find_in(&mut t, "a/file").unwrap().unwrap();
    assert_eq!(sim.find_in(&mut t, "b/evil").unwrap().unwrap().role, "C");
}

// ------------------------------------------------- repository variations

#[test]
fn pretty_printed_repository_goes_through_the_slow_path_and_still_refuses_attacks() {
    let mut repo = Repo::new();
    repo.pretty = true;
    repo.publish_root();
    repo.delegate("targets", "role-a", &["*"], false);
    repo.add_target("role-a", "pkg.tar.gz", b"pkg");
    repo.publish_all();
    let mut sim = Sim::with_repo(repo);
    assert!(
        cpantuf_core::canonical::split_canonical_envelope(&sim.repo.file("timestamp.json"))
            .is_none()
    );
    assert_eq!(sim.find("pkg.tar.gz").unwrap().unwrap().role, "role-a");
    assert_eq!(
        sim.requests,
        [
            "2.root.json",
            "timestamp.json",
            "1.snapshot.json",
            "1.targets.json",
            "1.role-a.json"
        ]
    );
    // Stored as received, and re-read from the store on the next update.
    assert_eq!(sim.local["role-a"], sim.repo.file("1.role-a.json"));
    sim.find("pkg.tar.gz").unwrap().unwrap();
    assert_eq!(sim.requests, ["2.root.json", "timestamp.json"]);
    assert!(sim.local_rejected.is_empty());

    let before = sim.store();
    let old = sim.repo.file("timestamp.json");
    sim.repo.update_targets("role-a");
    sim.find("pkg.tar.gz").unwrap().unwrap();
    assert_eq!(sim.local_version("role-a"), Some(2));
    let after = sim.store();
    assert_ne!(before, after);
    sim.repo.files.insert("timestamp.json".into(), old);
    expect_err!(
        sim.refresh(),
        UpdateError::Rollback { role, trusted: 2, new: 1 } if role == "timestamp"
    );
    sim.assert_store(&after);
}

#[test]
fn non_consistent_snapshot_repository_fetches_unversioned_names() {
    let mut repo = Repo::new();
    repo.root.consistent_snapshot = false;
    repo.publish_root();
    repo.delegate("targets", "role/a", &["*"], false);
    repo.add_target("role/a", "pkg.tar.gz", b"pkg");
    repo.publish_all();
    let mut sim = Sim::with_repo(repo);
    assert_eq!(sim.find("pkg.tar.gz").unwrap().unwrap().role, "role/a");
    assert_eq!(
        sim.requests,
        [
            "2.root.json",
            "timestamp.json",
            "snapshot.json",
            "targets.json",
            "role%2Fa.json"
        ]
    );
    // Mix-and-match is what version checks are for when names carry none.
    sim.repo.update_targets("targets");
    let old = sim.repo.file("1.targets.json");
    sim.repo.files.insert("targets.json".into(), old);
    let before = sim.store();
    expect_err!(
        sim.refresh(),
        UpdateError::VersionMismatch { role, expected: 2, got: 1 } if role == "targets"
    );
    let want = with_new(
        &sim,
        &before,
        &[
            ("timestamp", "timestamp.json"),
            ("snapshot", "snapshot.json"),
        ],
    );
    sim.assert_store(&want);
}

#[test]
fn mix_and_match_targets_hash_in_snapshot_mismatch() {
    let mut repo = Repo::new();
    repo.meta_hashes = true;
    repo.delegate("targets", "role-a", &["*"], false);
    repo.add_target("role-a", "pkg.tar.gz", b"pkg");
    repo.publish_all();
    let mut sim = Sim::with_repo(repo);
    sim.find("pkg.tar.gz").unwrap().unwrap();
    let before = sim.store();

    // role-a v2 is published; a mirror serves a different role-a v2, signed
    // by role-a's key (say, an older draft), that the snapshot does not hash.
    sim.repo.update_targets("role-a");
    let mut draft = sim.repo.targets["role-a"].clone();
    draft.targets.clear();
    let draft = sim.repo.sign("role-a", &draft);
    sim.repo.files.insert("2.role-a.json".into(), draft);
    expect_err!(
        sim.find("pkg.tar.gz"),
        UpdateError::SignedMeta {
            by,
            mismatch: HashError::Mismatch { what, .. }
        } if what == "role-a.json" && by == "snapshot version 2"
    );
    let want = with_new(
        &sim,
        &before,
        &[
            ("timestamp", "timestamp.json"),
            ("snapshot", "2.snapshot.json"),
        ],
    );
    sim.assert_store(&want);
}

#[test]
fn root_at_maximum_version_does_not_overflow() {
    let mut repo = Repo::new();
    repo.root.version = nz(u64::MAX);
    repo.publish_root();
    let mut sim = Sim::with_repo(repo);
    sim.local.insert(
        "root".into(),
        sim.repo.file(&format!("{}.root.json", u64::MAX)),
    );
    // The state machine: any offered root is the wrong version.
    let mut t = sim.trusted().unwrap();
    expect_err!(
        t.update_root(&sim.repo.file("1.root.json")),
        UpdateError::RootVersion {
            trusted: u64::MAX,
            got: 1
        }
    );
    // The workflow: no root can follow; the update goes on with this one.
    sim.refresh().unwrap();
    assert_eq!(
        sim.requests,
        ["timestamp.json", "1.snapshot.json", "1.targets.json"]
    );
}

#[test]
fn wrong_bin_target_in_succinct_hash_bins_is_not_found() {
    use cpantuf_core::metadata::{Delegations, SuccinctRoles};
    let mut sim = Sim::new();
    let seed = sim.repo.fresh_seed();
    let (id, k) = key(seed);
    let bins = SuccinctRoles {
        keyids: vec![id.clone()],
        threshold: nz(1),
        bit_length: 2,
        name_prefix: "bin".into(),
    };
    let good = "authors/id/G/GO/GOOD/Good-1.0.tar.gz";
    let good_bin = bins.role_for_target(good);
    // A path whose bin differs from `good`'s.
    let evil = (0..)
        .map(|i| format!("authors/id/E/EV/EVIL/Evil-{i}.tar.gz"))
        .find(|p| bins.role_for_target(p) != good_bin)
        .unwrap();
    sim.repo.targets.get_mut("targets").unwrap().delegations = Some(Delegations {
        keys: BTreeMap::from([(id.clone(), k)]),
        roles: None,
        succinct_roles: Some(bins),
    });
    for b in 0..4 {
        let name = format!("bin-{b}");
        sim.repo
            .targets
            .insert(name.clone(), sim.repo.targets["targets"].clone());
        let md = sim.repo.targets.get_mut(&name).unwrap();
        md.delegations = None;
        sim.repo.signers.insert(name, vec![(id.clone(), seed)]);
    }
    sim.repo.add_target(&good_bin, good, b"good");
    // The key of all bins signs `evil` into `good`'s bin.
    sim.repo.add_target(&good_bin, &evil, b"evil");
    sim.repo.publish_all();
    sim.repo.update_targets("targets");

    let mut t = sim.refresh().unwrap();
    sim.requests.clear();
    assert_eq!(sim.find_in(&mut t, good).unwrap().unwrap().role, good_bin);
    assert_eq!(sim.requests, [format!("1.{good_bin}.json")]);
    sim.requests.clear();
    assert!(sim.find_in(&mut t, &evil).unwrap().is_none());
    assert_eq!(sim.requests.len(), 1);
    assert_ne!(sim.requests[0], format!("1.{good_bin}.json"));

    // A role outside the bins is not delegated, even if the snapshot lists it.
    let mut md = sim.repo.targets["bin-0"].clone();
    md.targets.clear();
    let bytes = sim.repo.sign("bin-0", &md);
    sim.repo.targets.insert("bin-4".into(), md);
    sim.repo.signers.insert("bin-4".into(), vec![(id, seed)]);
    sim.repo.publish_targets("bin-4");
    sim.repo.update_snapshot();
    let mut t = sim.refresh().unwrap();
    expect_err!(
        t.update_targets(&bytes, "bin-4", "targets"),
        UpdateError::NotDelegated { role, delegator } if role == "bin-4" && delegator == "targets"
    );
}
