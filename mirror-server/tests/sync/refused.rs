//! A delegated role the sync refuses costs only its own subtree: the other roles' files update,
//! the refused role's files stay as last verified, and a TUF client of the mirror refuses that
//! role itself, as it would upstream. And metadata whose file name another role's file takes
//! keeps being served.

use chrono::Utc;

use crate::upstream::{filler, Upstream, AUTHOR_DIR, AUTHOR_ROLE, PREFIX_ROLE};
use crate::{tree, Serve, Setup};

const INDEX: &str = "modules/02packages.details.txt.gz";
const OTHER_FILE: &str = "authors/id/O/OT/OTHER/Fresh-1.0.tar.gz";

/// After a first sync: the author role gets a new release (and whatever `spoil` does to it),
/// another author uploads, and the index changes; all published.
fn upstream_moves_on(s: &mut Setup, spoil: impl FnOnce(&mut Upstream)) -> String {
    s.sync_ok();
    let late = format!("{AUTHOR_DIR}/Foo-2.0.tar.gz");
    s.up.add_target(AUTHOR_ROLE, &late, &filler(20_000, 9));
    spoil(&mut s.up);
    let other = s.up.add_author("OTHER");
    s.up.add_target(&other, OTHER_FILE, &filler(15_000, 8));
    s.up.add_target("targets", INDEX, b"index v2\n");
    s.up.publish();
    late
}

/// The served state: the other roles updated, the refused author's earlier files kept and its
/// new release absent.
fn assert_only_the_author_frozen(s: &Setup, late: &str) {
    let served = tree(&s.current());
    assert!(
        served[OTHER_FILE] == filler(15_000, 8),
        "other author not updated"
    );
    assert!(served.contains_key(&s.up.twin_of(OTHER_FILE)));
    assert_eq!(served[INDEX], b"index v2\n".to_vec(), "index not updated");
    for (path, content) in [
        (format!("{AUTHOR_DIR}/Foo-1.0.tar.gz"), filler(40_000, 1)),
        (format!("{AUTHOR_DIR}/Bar-1.0.tar.gz"), filler(30_000, 2)),
    ] {
        assert!(served.get(&path) == Some(&content), "{path} not kept");
        assert!(served.contains_key(&s.up.twin_of(&path)), "twin of {path}");
    }
    assert!(
        !served.contains_key(late),
        "a release no sync verified is served"
    );
}

#[test]
fn expired_author_role_costs_only_its_own_subtree() {
    let mut s = Setup::new();
    // The author signs with an expiry that has passed by the time the mirror syncs.
    let late = upstream_moves_on(&mut s, |up| {
        up.set_expiry(AUTHOR_ROLE, Utc::now() - chrono::Duration::hours(1))
    });
    let log = s.sync_ok();
    assert!(log.contains("published state-2"), "{log}");
    assert!(
        log.contains(&format!(
            "delegated role {AUTHOR_ROLE} (delegated by {PREFIX_ROLE}) refused, its subtree is \
             served as last verified: {AUTHOR_ROLE} metadata expired at"
        )),
        "{log}"
    );
    assert!(log.contains("1 delegated role(s) refused"), "{log}");
    assert_only_the_author_frozen(&s, &late);
    // Its metadata, verified in everything but its expiry, as the upstream serves it.
    let name = format!("tuf/2.{AUTHOR_ROLE}.json");
    assert!(tree(&s.current())[&name] == std::fs::read(s.up.dir.join(&name)).unwrap());

    // A TUF client of the mirror: the other author verifies; this one is refused as expired.
    let server = Serve::start(&s.current());
    let client = tempfile::tempdir().unwrap();
    let mut updater = server.client(&s.up.root_file(), client.path());
    let found = updater.target_info(OTHER_FILE).unwrap();
    updater
        .download_target(&found, &client.path().join("Fresh.tar.gz"))
        .unwrap();
    let err = updater
        .target_info(&format!("{AUTHOR_DIR}/Foo-1.0.tar.gz"))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("{AUTHOR_ROLE} metadata expired")),
        "{err}"
    );

    // Nothing new upstream: the next run is up to date, and says again what it refuses.
    let log = s.sync_ok();
    assert!(log.contains("up to date: state-2"), "{log}");
    assert!(
        log.contains(&format!("delegated role {AUTHOR_ROLE}")),
        "{log}"
    );
}

#[test]
fn tampered_author_role_costs_only_its_own_subtree() {
    let mut s = Setup::new();
    let late = upstream_moves_on(&mut s, |_| {});
    // A byte of the new author role version changed on the upstream (the snapshot hashes it).
    let role_file = s.up.dir.join(format!("tuf/2.{AUTHOR_ROLE}.json"));
    let text = std::fs::read_to_string(&role_file).unwrap();
    std::fs::write(&role_file, text.replacen("Foo-2.0", "Foo-6.6", 1)).unwrap();
    let log = s.sync_ok();
    assert!(log.contains("published state-2"), "{log}");
    assert!(
        log.contains(&format!(
            "delegated role {AUTHOR_ROLE} (delegated by {PREFIX_ROLE}) refused"
        )) && log.contains("a rollback, mix-and-match or tampered file refused"),
        "{log}"
    );
    assert_only_the_author_frozen(&s, &late);
    // Bytes that failed verification are not served.
    let served = tree(&s.current());
    assert!(!served.contains_key(&format!("tuf/2.{AUTHOR_ROLE}.json")));

    // Once the upstream serves the signed role again, its release is mirrored too.
    std::fs::write(&role_file, text).unwrap();
    let log = s.sync_ok();
    assert!(log.contains("published state-3"), "{log}");
    assert!(tree(&s.current())[&late] == filler(20_000, 9));
}

#[test]
fn delegated_role_named_like_a_root_version_does_not_replace_that_root() {
    let mut s = Setup::with_upstream(Upstream::without_consistent_snapshots);
    s.up.bump_root();
    s.sync_ok();
    let root2 = std::fs::read(s.up.dir.join("tuf/2.root.json")).unwrap();
    // `targets` delegates to a role named `2.root`. Without consistent snapshots it is
    // stored as `tuf/2.root.json`, the name of root version 2 (on the upstream it replaces
    // root v2, which the mirror verified earlier).
    let pattern = "authors/id/X/XY/XYZZY/*";
    s.up.delegate("targets", "2.root", pattern);
    s.up.add_target("2.root", "authors/id/X/XY/XYZZY/Odd-1.0.tar.gz", b"odd");
    s.up.publish();
    let log = s.sync_ok();
    assert!(log.contains("published state-2"), "{log}");
    assert!(
        log.contains("delegated role 2.root: its metadata file name 2.root.json"),
        "{log}"
    );
    let served = tree(&s.current());
    assert!(served["tuf/2.root.json"] == root2, "root v2 replaced");
    assert!(served.contains_key("tuf/snapshot.json"));
    assert!(served.contains_key("tuf/targets.json"));

    // A client that trusts root v1 still walks to v2 through the mirror, and gets the
    // other files.
    let server = Serve::start(&s.current());
    let client = tempfile::tempdir().unwrap();
    let mut updater = server.client(&s.up.root_file(), client.path());
    updater.refresh().unwrap();
    assert_eq!(updater.trusted().unwrap().root().version.get(), 2);
    let found = updater
        .target_info(&format!("{AUTHOR_DIR}/Foo-1.0.tar.gz"))
        .unwrap();
    updater
        .download_target(&found, &client.path().join("Foo.tar.gz"))
        .unwrap();
}

#[test]
fn author_role_listing_an_unservable_name_costs_only_that_file() {
    let mut s = Setup::new();
    s.sync_ok();
    // A name the server never serves (hidden), in the author's own directory.
    let hidden = format!("{AUTHOR_DIR}/.hidden-1.0.tar.gz");
    s.up.add_target(AUTHOR_ROLE, &hidden, b"hidden");
    s.up.add_target(
        AUTHOR_ROLE,
        &format!("{AUTHOR_DIR}/Foo-1.1.tar.gz"),
        b"foo 1.1",
    );
    s.up.publish();
    let log = s.sync_ok();
    assert!(log.contains("updated state-1 in place"), "{log}");
    assert!(
        log.contains(&format!(
            "target {hidden:?}, signed by {AUTHOR_ROLE}, cannot be mirrored"
        )),
        "{log}"
    );
    let served = tree(&s.current());
    assert!(!served.contains_key(&hidden));
    assert_eq!(
        served[&format!("{AUTHOR_DIR}/Foo-1.1.tar.gz")],
        b"foo 1.1".to_vec()
    );
}
