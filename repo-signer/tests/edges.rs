//! The signer at its edges (issue 11): what a claimed author, a root
//! ceremony, a file rewritten in place, a planted file or a key file at an
//! odd destination can do to a published repository.

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const MAX: u64 = u64::MAX;

/// Edits the `signed` part of a role file (an export, before the author
/// signs it: the author chooses what they sign).
fn edit_signed(p: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    edit(&mut v["signed"]);
    std::fs::write(p, v.to_string()).unwrap();
}

/// PAUSE exports ETHER's role to `p`, ETHER edits it with `edit` and signs.
fn ether_prepares(cfg: &str, p: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    export_ether(cfg, p.to_str().unwrap());
    edit_signed(p, edit);
    ok(ether_signs(p.to_str().unwrap()));
}

fn expiry_in(d: chrono::Duration) -> String {
    let t = chrono::Utc::now() + d;
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Lists `role` at `version` in a new snapshot and timestamp signed with
/// the demo online keys: what today's `author import` published for an
/// author-chosen version (the role file itself is written by the caller).
fn list_in_new_snapshot(mirror: &Path, role: &str, version: u64) {
    use cpantuf_core::metadata::{Envelope, Snapshot, Timestamp};
    use cpantuf_repo_signer::{build, config::load_signer, signed};
    let tuf = mirror.join("tuf");
    let ts: Envelope<Timestamp> =
        Envelope::from_bytes(&std::fs::read(tuf.join("timestamp.json")).unwrap()).unwrap();
    let sv = ts.unverified().snapshot_meta().version;
    let old: Envelope<Snapshot> =
        Envelope::from_bytes(&std::fs::read(tuf.join(format!("{sv}.snapshot.json"))).unwrap())
            .unwrap();
    let mut snap = old.unverified().clone();
    snap.meta.get_mut(&format!("{role}.json")).unwrap().version =
        std::num::NonZeroU64::new(version).unwrap();
    snap.version = sv.checked_add(1).unwrap();
    let key = |n: &str| load_signer(&keys().join(n), None).unwrap();
    let sf = signed::sign("snapshot", &snap, &[&key("snapshot.pem")]);
    std::fs::write(tuf.join(sf.file_name()), &sf.bytes).unwrap();
    let t = build::timestamp(
        ts.unverified().version.checked_add(1).unwrap(),
        ts.unverified().expires,
        snap.version,
        &sf.bytes,
    );
    let tf = signed::sign("timestamp", &t, &[&key("timestamp.pem")]);
    std::fs::write(tuf.join("timestamp.json"), &tf.bytes).unwrap();
}

// ------------------------------------------------------------- item 2

/// A claimed author signs their role at version u64::MAX (or any version
/// past the next one): refused with nothing published, so nobody can make
/// the role's version saturate. The next version is accepted.
#[test]
fn a_claimed_author_cannot_freeze_their_role_at_the_largest_version() {
    let (tmp, mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let p = tmp.path().join("ETHER.json");
    let before = tuf_state(&mirror);
    for version in [MAX, 3] {
        ether_prepares(cfg, &p, |s| s["version"] = version.into());
        fails(
            import_claiming_ether(cfg, p.to_str().unwrap()),
            &format!("version {version} is not the next version 2"),
        );
        assert_eq!(before, tuf_state(&mirror), "a refused import changed tuf/");
    }
    ether_prepares(cfg, &p, |_| {});
    ok(import_claiming_ether(cfg, p.to_str().unwrap()));
    assert_eq!(newest_version(&mirror, "author-ETHER"), 2);
    verify_from_first_root(&mirror);
}

/// A repository that today's signer left with `author-ETHER` at u64::MAX:
/// re-signing the role (`author revoke`) would need version u64::MAX + 1.
/// It is refused with a clear error instead of overwriting the published
/// `18446744073709551615.author-ETHER.json` in place, and a full publish
/// leaves that file alone too.
#[test]
fn a_role_frozen_at_the_largest_version_is_never_rewritten_in_place() {
    let (tmp, mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let p = tmp.path().join("ETHER.json");
    ether_prepares(cfg, &p, |_| {});
    ok(import_claiming_ether(cfg, p.to_str().unwrap()));
    ether_prepares(cfg, &p, |s| s["version"] = MAX.into());
    let frozen = mirror.join(format!("tuf/{MAX}.author-ETHER.json"));
    std::fs::copy(&p, &frozen).unwrap();
    list_in_new_snapshot(&mirror, "author-ETHER", MAX);
    verify_from_first_root(&mirror);
    let published = std::fs::read(&frozen).unwrap();

    let before = tuf_state(&mirror);
    fails(
        sign(&["author", "revoke", "--config", cfg, "ETHER"]),
        "author-ETHER: version 18446744073709551615 is the largest",
    );
    assert_eq!(before, tuf_state(&mirror), "a refused revoke changed tuf/");
    publish_with_targets_keys(cfg);
    assert_eq!(std::fs::read(&frozen).unwrap(), published);
    verify_from_first_root(&mirror);
}

/// `verify` reads every retained metadata file, not only the current ones:
/// a file whose name says another version than its content, and a
/// `root.json` that is not the newest root, are both reported.
#[test]
fn verify_reports_a_metadata_file_whose_name_and_content_disagree() {
    let (_tmp, mirror, _cfg) = signed_sample();
    let tuf = mirror.join("tuf");
    std::fs::copy(
        tuf.join("1.author-HAARG.json"),
        tuf.join("7.author-HAARG.json"),
    )
    .unwrap();
    std::fs::copy(tuf.join("1.snapshot.json"), tuf.join("1.targets.json.bak")).unwrap();
    std::fs::copy(tuf.join("1.index.json"), tuf.join("root.json")).unwrap();
    let out = audit(&mirror);
    assert_eq!(out.status.code(), Some(3));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("7.author-HAARG.json: claims version 1"),
        "{report}"
    );
    assert!(
        report.contains("root.json: not a copy of 1.root.json"),
        "{report}"
    );
}

// ------------------------------------------------------------- item 3

/// An author chooses their own expiry; PAUSE refuses one beyond the
/// configured maximum (`claimed_author_max_hours`, default a year).
#[test]
fn a_claimed_author_cannot_choose_an_expiry_beyond_the_configured_maximum() {
    let (tmp, mirror, cfg_path) = signed_sample();
    let cfg = cfg_path.to_str().unwrap();
    let p = tmp.path().join("ETHER.json");
    let before = tuf_state(&mirror);
    ether_prepares(cfg, &p, |s| s["expires"] = "2099-01-01T00:00:00Z".into());
    fails(
        import_claiming_ether(cfg, p.to_str().unwrap()),
        "author-ETHER expires at 2099-01-01T00:00:00Z, more than 365 days from now \
         (claimed_author_max_hours)",
    );
    // A tighter maximum in the configuration refuses the 90-day default.
    let mut conf = read_json(&cfg_path);
    conf["expiry"]["claimed_author_max_hours"] = 48.into();
    conf["expiry"]["claimed_author_hours"] = 24.into();
    std::fs::write(&cfg_path, conf.to_string()).unwrap();
    ether_prepares(cfg, &p, |s| {
        s["expires"] = expiry_in(chrono::Duration::days(90)).into()
    });
    fails(
        import_claiming_ether(cfg, p.to_str().unwrap()),
        "more than 2 days from now",
    );
    assert_eq!(before, tuf_state(&mirror), "a refused import changed tuf/");
    ether_prepares(cfg, &p, |_| {});
    ok(import_claiming_ether(cfg, p.to_str().unwrap()));
}

/// A claimed role near its author-chosen expiry is named by `status` and
/// `publish`; once expired, both say so.
#[test]
fn status_and_publish_name_a_claimed_role_that_expires_soon_or_has_expired() {
    let (tmp, _mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let p = tmp.path().join("ETHER.json");
    let soon = expiry_in(chrono::Duration::days(3));
    ether_prepares(cfg, &p, |s| s["expires"] = soon.clone().into());
    let out = ok(import_claiming_ether(cfg, p.to_str().unwrap()));
    assert!(out.contains("published author-ETHER"), "{out}");
    let status = sign(&["status", "--config", cfg]);
    let warned = format!("claimed author ETHER: author-ETHER version 2 expires at {soon}");
    assert!(stderr_of(&status).contains(&warned), "{status:?}");
    let publish = sign(&["publish", "--config", cfg]);
    assert!(publish.status.success(), "{publish:?}");
    assert!(stderr_of(&publish).contains(&warned), "{publish:?}");
    // HAARG is PAUSE-signed (a day's lifetime): never named.
    assert!(!stderr_of(&status).contains("HAARG"), "{status:?}");

    let past = expiry_in(chrono::Duration::seconds(2));
    ether_prepares(cfg, &p, |s| s["expires"] = past.clone().into());
    ok(sign(&[
        "author",
        "import",
        "--config",
        cfg,
        "ETHER",
        p.to_str().unwrap(),
    ]));
    std::thread::sleep(std::time::Duration::from_secs(3));
    let expired = format!("claimed author ETHER: author-ETHER version 3 expired at {past}");
    let status = sign(&["status", "--config", cfg]);
    assert!(stderr_of(&status).contains(&expired), "{status:?}");
    let publish = sign(&["publish", "--config", cfg]);
    assert!(publish.status.success(), "{publish:?}");
    assert!(stderr_of(&publish).contains(&expired), "{publish:?}");
}

// ------------------------------------------------------------- item 4

/// The key ids a root file gives `role`.
fn root_keyids(root: &serde_json::Value, role: &str) -> Vec<String> {
    root["signed"]["roles"][role]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

/// Replacing one of three root keys without `--root-threshold` keeps root
/// at 2-of-3 (it used to fall to the default, 1-of-3). `prepare` and each
/// signer's `sign` show the change; lowering the threshold needs
/// `--allow-lower-threshold` and is flagged in both reviews.
#[test]
fn a_root_rotation_without_a_threshold_keeps_root_at_two_of_three() {
    let (tmp, mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let new_key = tmp.path().join("root-4.pem");
    let out = ok(sign(&["keygen", new_key.to_str().unwrap()]));
    let new_id = out.split_whitespace().next().unwrap().to_owned();
    let k = |n: &str| keys().join(n).to_str().unwrap().to_owned();
    let prep = tmp.path().join("2.root.pending.json");
    let p = prep.to_str().unwrap();
    let k4 = tmp
        .path()
        .join("root-4.pub.pem")
        .to_str()
        .unwrap()
        .to_owned();
    let (k1, k2) = (k("root-1.pub.pem"), k("root-2.pub.pem"));
    let prepare = |extra: &[&str]| {
        let mut args = vec!["root", "prepare", "--config", cfg, "--out", p];
        for key in [&k1, &k2, &k4] {
            args.extend(["--root-key", key.as_str()]);
        }
        args.extend_from_slice(extra);
        sign(&args)
    };
    let r3 =
        cpantuf_repo_signer::config::load_public_key(&keys().join("root-3.pub.pem"), None).unwrap();
    let removed = cpantuf_core::crypto::compute_keyid(&r3).0;
    assert!(root_keyids(&read_json(&mirror.join("tuf/1.root.json")), "root").contains(&removed));

    let review = ok(prepare(&[]));
    let new = read_json(&prep);
    assert_eq!(new["signed"]["roles"]["root"]["threshold"], 2, "{review}");
    assert!(root_keyids(&new, "root").contains(&new_id));
    assert!(
        review.contains("root: threshold 2 -> 2, 3 keys"),
        "{review}"
    );
    assert!(review.contains(&format!("+ {new_id}")), "{review}");
    assert!(review.contains(&format!("- {removed}")), "{review}");
    assert!(review.contains("targets: unchanged"), "{review}");

    // Lowering is refused unless asked for explicitly, then flagged.
    fails(
        prepare(&["--root-threshold", "1"]),
        "lowers the root threshold from 2 to 1",
    );
    let review = ok(prepare(&[
        "--root-threshold",
        "1",
        "--allow-lower-threshold",
    ]));
    assert!(review.contains("threshold 2 -> 1 (LOWERED)"), "{review}");
    // Each signer sees the same review against the root they trust.
    let first_root = mirror.join("tuf/1.root.json");
    let signing = ok(sign(&[
        "root",
        "sign",
        p,
        "--previous",
        first_root.to_str().unwrap(),
        "--key",
        &k("root-1.pem"),
    ]));
    assert!(signing.contains("threshold 2 -> 1 (LOWERED)"), "{signing}");
    assert!(signing.contains(&format!("+ {new_id}")), "{signing}");
}

/// `init` with several root (or targets) keys must be told the threshold:
/// the old default made a fresh repository 1-of-N without a word.
#[test]
fn init_with_several_keys_and_no_threshold_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    copy_dir(
        &project().join("sample-mirror/modules"),
        &mirror.join("modules"),
    );
    let cfg = tmp.path().join("signer.json");
    let k = |n: &str| keys().join(n).to_str().unwrap().to_owned();
    let init = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "init",
            "--mirror",
            mirror.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--no-fsync",
        ]
        .map(str::to_owned)
        .to_vec();
        for (flag, name) in [
            ("--root-key", "root-1.pem"),
            ("--root-key", "root-2.pem"),
            ("--root-key", "root-3.pem"),
            ("--targets-key", "targets-1.pub.pem"),
            ("--targets-key", "targets-2.pub.pem"),
            ("--snapshot-key", "snapshot.pem"),
            ("--timestamp-key", "timestamp.pem"),
            ("--index-key", "index.pem"),
            ("--registry-key", "registry.pem"),
            ("--authors-key", "authors.pem"),
        ] {
            args.push(flag.into());
            args.push(k(name));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sign(&args)
    };
    fails(init(&["--targets-threshold", "2"]), "--root-threshold");
    fails(init(&["--root-threshold", "2"]), "--targets-threshold");
    assert!(!mirror.join("tuf/1.root.json").exists());
    let out = ok(init(&["--root-threshold", "2", "--targets-threshold", "2"]));
    assert!(out.contains("root: 2 of 3 keys"), "{out}");
    assert!(out.contains("targets: 2 of 2 keys"), "{out}");
}

// ------------------------------------------------------------- item 7

/// PAUSE rewrites 02packages in place (same inode). The retained twin of
/// the previous version, which clients on the previous snapshot fetch,
/// keeps its bytes; `verify` checks every twin on disk against the hash in
/// its name and reports one corrupted later.
#[test]
fn rewriting_02packages_in_place_leaves_the_retained_version_intact() {
    let (_tmp, mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let live = mirror.join(PACKAGES);
    let old_twin = twin(&mirror, PACKAGES);
    let old_bytes = std::fs::read(&live).unwrap();
    assert_ne!(
        std::fs::metadata(&old_twin).unwrap().ino(),
        std::fs::metadata(&live).unwrap().ino(),
        "a mutable file's twin must not be a hard link to it"
    );
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&live)
            .unwrap();
        f.write_all(b"a new index, written in place").unwrap();
    }
    assert_eq!(std::fs::read(&old_twin).unwrap(), old_bytes);
    ok(sign(&["index", "--config", cfg]));
    let new_twin = twin(&mirror, PACKAGES);
    assert_ne!(new_twin, old_twin);
    assert_eq!(std::fs::read(&old_twin).unwrap(), old_bytes);
    verify_from_first_root(&mirror);

    // A retained twin corrupted in place (not through the live name).
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&old_twin)
            .unwrap();
        f.write_all(b"X").unwrap();
    }
    let out = audit(&mirror);
    assert_eq!(out.status.code(), Some(3));
    let report = String::from_utf8_lossy(&out.stdout);
    let name = old_twin.file_name().unwrap().to_str().unwrap();
    assert!(
        report.contains(name) && report.contains("differs from the hash in its name"),
        "{report}"
    );
}

// ------------------------------------------------------------- suspicions

/// An upload that happens to be named `<64 hex>.<name>` is not a twin the
/// signer made: pruning leaves it (the signer never signs such a name, and
/// `verify` says so).
#[test]
fn pruning_never_deletes_an_upload_that_is_named_like_a_twin() {
    let (_tmp, mirror, cfg_path) = signed_sample();
    let cfg = cfg_path.to_str().unwrap();
    set_config(&cfg_path, "retention_hours", 0.into());
    let odd = mirror.join(format!(
        "authors/id/E/ET/ETHER/{}.Odd-1.0.tar.gz",
        "ab".repeat(32)
    ));
    std::fs::write(&odd, b"an author's file with an odd name").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    publish_with_targets_keys(cfg);
    assert!(odd.is_file(), "pruning deleted an upload");
    let out = audit(&mirror);
    assert_eq!(out.status.code(), Some(3));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("Odd-1.0.tar.gz") && report.contains("named like a hash-named twin"),
        "{report}"
    );
}

/// A file planted at an upload's twin name, of the right length but other
/// bytes, is replaced when the upload is signed (it used to be kept
/// because its length matched).
#[test]
fn a_planted_twin_of_the_right_length_is_replaced() {
    let (_tmp, mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let up = "authors/id/E/ET/ETHER/Planted-1.0.tar.gz";
    std::fs::write(mirror.join(up), b"the real upload").unwrap();
    let planted = twin(&mirror, up);
    std::fs::write(&planted, b"a forged upload").unwrap();
    ok(sign(&[
        "add",
        "--config",
        cfg,
        mirror.join(up).to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&planted).unwrap(), b"the real upload");
    verify_from_first_root(&mirror);
}

// ------------------------------------------------------------- item 5

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// `keygen --force` over an existing world-readable file leaves a private
/// key of mode 0600 (it used to keep the old file's 0644).
#[test]
fn keygen_force_over_a_world_readable_file_writes_a_0600_key() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("k.pem");
    std::fs::write(&out, b"old").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    fails(sign(&["keygen", out.to_str().unwrap()]), "--force");
    ok(sign(&["keygen", "--force", out.to_str().unwrap()]));
    assert_eq!(mode(&out), 0o600);
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("PRIVATE KEY"));
    let fresh = tmp.path().join("fresh.pem");
    ok(sign(&["keygen", fresh.to_str().unwrap()]));
    assert_eq!(mode(&fresh), 0o600);
}

/// A symbolic link at the destination (dangling, or to another file) is
/// never followed: the key is not written through it, with or without
/// `--force`.
#[test]
fn keygen_never_writes_a_key_through_a_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere: PathBuf = tmp.path().join("elsewhere.txt");
    std::fs::write(&elsewhere, b"someone else's file").unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = tmp.path().join("k.pem");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    fails(
        sign(&["keygen", "--force", link.to_str().unwrap()]),
        "symbolic link",
    );
    assert_eq!(std::fs::read(&elsewhere).unwrap(), b"someone else's file");
    let dangling = tmp.path().join("d.pem");
    let target = tmp.path().join("created-through-link.pem");
    std::os::unix::fs::symlink(&target, &dangling).unwrap();
    fails(
        sign(&["keygen", dangling.to_str().unwrap()]),
        "symbolic link",
    );
    assert!(
        !target.exists(),
        "a key was written through a dangling link"
    );
}
