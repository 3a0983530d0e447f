//! A returning sync whose upstream did not change: decided from the verified timestamp alone,
//! without reading the stored roles or building a new state.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;

use super::{assert_refused, tree, Serve, Setup, AUTHOR_DIR};
use crate::upstream::filler;

/// The names directly under the mirror's destination (states, staging areas, `current`).
fn entries(dest: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Overwrites every stored metadata file but the root and the timestamp with garbage: a sync
/// that reads one of them must fetch it again.
fn spoil_stored_roles(dest: &Path) {
    let store = dest.join(".sync/metadata");
    for e in std::fs::read_dir(&store).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".json") && name != "root.json" && name != "timestamp.json" {
            std::fs::write(&p, b"garbage").unwrap();
        }
    }
}

/// Sleeps until `t` has passed.
fn wait_past(t: chrono::DateTime<Utc>) {
    while Utc::now() <= t + chrono::Duration::milliseconds(200) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn nothing_changed_sync_makes_two_requests_reads_no_role_and_leaves_the_tree_byte_identical() {
    let mut s = Setup::new();
    s.sync_ok();
    // Nothing that grows with the repository is read: neither the stored roles nor the
    // state's manifest of every target (a full sync would have to refetch or fail).
    spoil_stored_roles(&s.dest);
    std::fs::write(s.current().join(".sync-manifest.json"), b"garbage").unwrap();
    let before = tree(&s.current());
    let listing = entries(&s.dest);
    s.http.take_log();

    let log = s.sync_ok();
    assert!(log.contains("up to date: state-1 unchanged ("), "{log}");
    // The root probe and the timestamp; no stored role was read (each is garbage now).
    assert_eq!(s.http.take_log(), ["tuf/2.root.json", "tuf/timestamp.json"]);
    assert!(tree(&s.current()) == before, "served files changed");
    assert_eq!(
        entries(&s.dest),
        listing,
        "a state or staging area was made"
    );

    // The next change takes the full sync, which refetches what it cannot use.
    let new = format!("{AUTHOR_DIR}/Foo-1.1.tar.gz");
    s.up.add_target(super::AUTHOR_ROLE, &new, &filler(5_000, 4));
    s.up.publish();
    let log = s.sync_ok();
    assert!(log.contains("published state-2"), "{log}");
    assert!(tree(&s.current())[&new] == filler(5_000, 4));
}

#[test]
fn resigned_timestamp_is_served_in_place_without_a_new_state() {
    let mut s = Setup::new();
    s.sync_ok();
    let mut before = tree(&s.current());
    let listing = entries(&s.dest);
    s.up.resign_timestamp(Utc::now() + chrono::Duration::days(30));
    s.http.take_log();

    let log = s.sync_ok();
    assert!(
        log.contains("up to date: state-1 unchanged but for its timestamp, now version 2"),
        "{log}"
    );
    assert_eq!(s.http.take_log(), ["tuf/2.root.json", "tuf/timestamp.json"]);
    assert_eq!(
        entries(&s.dest),
        listing,
        "a state or staging area was made"
    );
    let upstream_ts = std::fs::read(s.up.dir.join("tuf/timestamp.json")).unwrap();
    before.insert("tuf/timestamp.json".into(), upstream_ts);
    // The state's own (never served) records of itself follow the timestamp.
    let mut after = tree(&s.current());
    for hidden in [".sync-manifest.json", ".sync-unchanged.json"] {
        assert!(after.remove(hidden) != before.remove(hidden), "{hidden}");
    }
    assert!(
        after == before,
        "anything but the timestamp changed, or the timestamp is not the upstream's"
    );

    // A client sees the new timestamp and the unchanged repository behind it.
    let server = Serve::start(&s.current());
    let client = tempfile::tempdir().unwrap();
    let mut updater = server.client(&s.up.root_file(), client.path());
    updater.refresh().unwrap();
    assert_eq!(
        updater
            .trusted()
            .unwrap()
            .timestamp()
            .unwrap()
            .version
            .get(),
        2
    );
    let found = updater
        .target_info(&format!("{AUTHOR_DIR}/Foo-1.0.tar.gz"))
        .unwrap();
    let dest = client.path().join("Foo-1.0.tar.gz");
    updater.download_target(&found, &dest).unwrap();

    // The manifest followed: the next run is plainly up to date.
    let log = s.sync_ok();
    assert!(log.contains("up to date: state-1 unchanged ("), "{log}");
}

#[test]
fn forged_timestamp_is_refused_when_nothing_changed() {
    let s = Setup::new();
    s.sync_ok();
    let path = s.up.dir.join("tuf/timestamp.json");
    let mut ts: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    ts["signed"]["version"] = 7.into();
    std::fs::write(&path, serde_json::to_vec(&ts).unwrap()).unwrap();
    let err = assert_refused(&s, "forged timestamp");
    assert!(err.contains("timestamp"), "{err}");
}

#[test]
fn replayed_timestamp_is_refused_when_nothing_changed() {
    let mut s = Setup::new();
    s.sync_ok();
    let path = s.up.dir.join("tuf/timestamp.json");
    let old = std::fs::read(&path).unwrap();
    s.up.resign_timestamp(Utc::now() + chrono::Duration::days(30));
    s.sync_ok();
    std::fs::write(&path, old).unwrap();
    let err = assert_refused(&s, "replayed timestamp");
    assert!(
        err.contains("timestamp version 1 is older than trusted version 2: rollback refused"),
        "{err}"
    );
}

#[test]
fn timestamp_that_expired_since_the_last_sync_is_refused_when_nothing_changed() {
    let mut s = Setup::new();
    let expires = Utc::now() + chrono::Duration::seconds(3);
    s.up.resign_timestamp(expires);
    s.sync_ok();
    // The very timestamp the store trusts and the state serves, now past its expiry.
    wait_past(expires);
    let err = assert_refused(&s, "expired timestamp");
    assert!(err.contains("expired"), "{err}");
}

#[test]
fn role_that_expired_since_the_last_sync_takes_the_full_sync() {
    let mut s = Setup::new();
    let expires = Utc::now() + chrono::Duration::seconds(3);
    s.up.set_expiry(super::AUTHOR_ROLE, expires);
    s.up.publish();
    s.sync_ok();
    wait_past(expires);
    // Same timestamp, but what the state serves is no longer current: the full sync sees it.
    let log = s.sync_ok();
    assert!(log.contains("1 delegated role(s) refused"), "{log}");
}
