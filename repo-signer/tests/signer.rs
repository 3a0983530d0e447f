//! cpantuf-sign end to end: sign the sample mirror, then let cpantuf's
//! updater and python-tuf's ngclient download from it over HTTP on
//! 127.0.0.1, and refuse tampered variants. Also the bad-input cases.
//!
//! The python half needs the venv of `scripts/setup-test-deps.sh`
//! (`.venv/` at the project root, or `CPANTUF_VENV`); without it the interop
//! test fails with that instruction rather than passing vacuously.

use cpantuf_client::updater::{Updater, UpdaterConfig};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

mod common;
use common::*;

fn python() -> PathBuf {
    let venv = std::env::var_os("CPANTUF_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| project().join(".venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} missing: run scripts/setup-test-deps.sh to create the python-tuf venv",
        py.display()
    );
    py
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Server {
    let mut child = Command::new(python())
        .arg(project().join("tests/interop/serve_dir.py"))
        .arg(dir)
        .arg("--exit-on-stdin-eof")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse()
        .expect("serve_dir prints its port first");
    Server { child, port }
}

/// cpantuf's updater: Ok(bytes) or the refusal.
/// cpantuf's updater for the mirror served on `port`, its metadata in
/// `metadata_dir`, trusting the repository's first root.
fn client_trusting_first_root(mirror: &Path, port: u16, metadata_dir: &Path) -> Updater {
    std::fs::create_dir_all(metadata_dir).unwrap();
    std::fs::copy(
        mirror.join("tuf/1.root.json"),
        metadata_dir.join("root.json"),
    )
    .unwrap();
    Updater::new(UpdaterConfig::for_mirror(
        metadata_dir.to_owned(),
        &format!("http://127.0.0.1:{port}/"),
    ))
    .unwrap()
}

fn cpantuf_get(mirror: &Path, port: u16, targets: &[&str]) -> Vec<Result<Vec<u8>, String>> {
    let work = tempfile::tempdir().unwrap();
    let mut up = client_trusting_first_root(mirror, port, &work.path().join("metadata"));
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let found = up.target_info(t).map_err(|e| e.to_string())?;
            let dest = work.path().join(format!("dl{i}"));
            up.download_target(&found, &dest)
                .map_err(|e| e.to_string())?;
            Ok(std::fs::read(dest).unwrap())
        })
        .collect()
}

/// python-tuf's ngclient via ngclient_check.py with expectations.
fn ngclient(mirror: &Path, port: u16, expect: &[(&str, bool)]) -> String {
    let mut cmd = Command::new(python());
    cmd.arg(project().join("tests/interop/ngclient_check.py"))
        .arg("--metadata-url")
        .arg(format!("http://127.0.0.1:{port}/tuf/"))
        .arg("--targets-url")
        .arg(format!("http://127.0.0.1:{port}/"))
        .arg("--root")
        .arg(mirror.join("tuf/1.root.json"))
        .arg("--refresh-expect")
        .arg("ok");
    for (t, good) in expect {
        cmd.arg("--target")
            .arg(t)
            .arg("--expect")
            .arg(if *good { "ok" } else { "fail" });
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ngclient_check disagrees:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn both_clients_download_from_a_signed_sample_mirror_and_refuse_tampering() {
    let (_tmp, mirror, _cfg) = signed_sample();
    // The signer's own audit agrees.
    verify_from_first_root(&mirror);
    let server = serve(&mirror);
    let wanted = [TRY_TINY, SUB_FILE, PACKAGES, MOO];
    for (t, got) in wanted
        .iter()
        .zip(cpantuf_get(&mirror, server.port, &wanted))
    {
        assert_eq!(got.unwrap(), std::fs::read(mirror.join(t)).unwrap(), "{t}");
    }
    let out = ngclient(
        &mirror,
        server.port,
        &[
            (TRY_TINY, true),
            (SUB_FILE, true),
            (PACKAGES, true),
            (MOO, true),
        ],
    );
    for t in wanted {
        assert!(out.contains(&format!("OK {t} sha256=")), "{out}");
    }
    // An unlisted path in an author directory is not found by either.
    let bogus = "authors/id/E/ET/ETHER/Not-There-1.0.tar.gz";
    assert!(cpantuf_get(&mirror, server.port, &[bogus])[0].is_err());
    ngclient(&mirror, server.port, &[(bogus, false)]);

    // Tampered: the served bytes of a tarball and of 02packages, and the
    // signed author role of HAARG.
    tamper(&twin(&mirror, TRY_TINY));
    tamper(&twin(&mirror, PACKAGES));
    let haarg = mirror.join("tuf/1.author-HAARG.json");
    let text = std::fs::read_to_string(&haarg).unwrap();
    let moo_len = std::fs::metadata(mirror.join(MOO)).unwrap().len();
    let forged = text.replace(
        &format!("\"length\":{moo_len}"),
        &format!("\"length\":{}", moo_len + 1),
    );
    assert_ne!(forged, text);
    std::fs::write(&haarg, forged).unwrap();
    let got = cpantuf_get(&mirror, server.port, &[TRY_TINY, PACKAGES, MOO, SUB_FILE]);
    assert!(got[0].is_err(), "cpantuf accepted a tampered tarball");
    assert!(got[1].is_err(), "cpantuf accepted a tampered 02packages");
    assert!(got[2].is_err(), "cpantuf accepted a forged author role");
    assert!(
        got[3].is_ok(),
        "an untouched file must still download: {:?}",
        got[3]
    );
    ngclient(
        &mirror,
        server.port,
        &[
            (TRY_TINY, false),
            (PACKAGES, false),
            (MOO, false),
            (SUB_FILE, true),
        ],
    );
    // And the audit lists each problem and exits non-zero.
    let out = audit(&mirror);
    assert_eq!(out.status.code(), Some(3));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("author-HAARG"), "{report}");
    assert!(report.contains(TRY_TINY), "{report}");
    assert!(report.contains(PACKAGES), "{report}");
}

#[test]
fn incremental_add_then_clients_see_the_upload() {
    let (_tmp, mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let up = "authors/id/E/ET/ETHER/New-Dist-1.00.tar.gz";
    std::fs::write(mirror.join(up), b"new upload").unwrap();
    let out = ok(sign(&[
        "add",
        "--config",
        cfg,
        mirror.join(up).to_str().unwrap(),
    ]));
    assert!(out.contains("author-ETHER"), "{out}");
    assert!(
        !out.contains("prefix-"),
        "an existing author needs no prefix change: {out}"
    );
    // A new author under an existing prefix re-signs that prefix role.
    let newbie = "authors/id/E/ET/ETHERNEW/X-1.tar.gz";
    std::fs::create_dir_all(mirror.join(newbie).parent().unwrap()).unwrap();
    std::fs::write(mirror.join(newbie), b"x").unwrap();
    let out = ok(sign(&[
        "add",
        "--config",
        cfg,
        mirror.join(newbie).to_str().unwrap(),
    ]));
    assert!(
        out.contains("author-ETHERNEW") && out.contains("prefix-E-ET"),
        "{out}"
    );
    // A new prefix needs the offline targets keys: refused without them,
    // and nothing changes on disk.
    let fresh = "authors/id/Z/ZZ/ZZTOP/Y-1.tar.gz";
    std::fs::create_dir_all(mirror.join(fresh).parent().unwrap()).unwrap();
    std::fs::write(mirror.join(fresh), b"y").unwrap();
    let before = tuf_state(&mirror);
    fails(
        sign(&["add", "--config", cfg, mirror.join(fresh).to_str().unwrap()]),
        "offline targets keys",
    );
    assert_eq!(before, tuf_state(&mirror));
    std::fs::remove_file(mirror.join(fresh)).unwrap();
    ok(sign(&["timestamp", "--config", cfg]));
    ok(sign(&["index", "--config", cfg]));
    verify_from_first_root(&mirror);
    let server = serve(&mirror);
    let got = cpantuf_get(&mirror, server.port, &[up, newbie]);
    assert_eq!(got[0].as_ref().unwrap(), b"new upload");
    assert_eq!(got[1].as_ref().unwrap(), b"x");
    ngclient(&mirror, server.port, &[(up, true), (newbie, true)]);
}

#[test]
fn bad_input_is_refused_and_nothing_is_published() {
    let (tmp, mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let before = tuf_state(&mirror);
    // A symlink inside the mirror, to a file outside it.
    let outside = tmp.path().join("secret");
    std::fs::write(&outside, b"secret").unwrap();
    let link = mirror.join("authors/id/E/ET/ETHER/Evil-1.tar.gz");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    fails(
        sign(&["add", "--config", cfg, link.to_str().unwrap()]),
        "symbolic links are not signed",
    );
    fails(
        sign(&["publish", "--config", cfg]),
        "symbolic links are not signed",
    );
    std::fs::remove_file(&link).unwrap();
    // A path outside the mirror.
    fails(
        sign(&["add", "--config", cfg, outside.to_str().unwrap()]),
        "outside the mirror",
    );
    // An invalid PAUSE id directory.
    let bad = mirror.join("authors/id/E/ET/ether/x.tar.gz");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, b"x").unwrap();
    fails(
        sign(&["add", "--config", cfg, bad.to_str().unwrap()]),
        "PAUSE id",
    );
    fails(sign(&["publish", "--config", cfg]), "PAUSE id");
    std::fs::remove_dir_all(bad.parent().unwrap()).unwrap();
    // An unreadable file (skipped when running as root, which reads anyway).
    let unreadable = mirror.join("authors/id/E/ET/ETHER/Locked-1.tar.gz");
    std::fs::write(&unreadable, b"z").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&unreadable).is_err() {
        fails(
            sign(&["add", "--config", cfg, unreadable.to_str().unwrap()]),
            "Permission denied",
        );
    }
    std::fs::remove_file(&unreadable).unwrap();
    // A wrong passphrase, and a key that is not a key.
    fails(
        sign(&[
            "publish",
            "--config",
            cfg,
            "--key",
            keys().join("author-HAARG.pem").to_str().unwrap(),
            "--passphrase-file",
            keys().join("root-1.pub.pem").to_str().unwrap(),
        ]),
        "passphrase",
    );
    fails(
        sign(&[
            "publish",
            "--config",
            cfg,
            "--key",
            keys().join("README.md").to_str().unwrap(),
        ]),
        "PKCS#8",
    );
    // A change of top-level targets with the wrong keys.
    let fresh = mirror.join("authors/id/Q/QQ/QQQ/A-1.tar.gz");
    std::fs::create_dir_all(fresh.parent().unwrap()).unwrap();
    std::fs::write(&fresh, b"q").unwrap();
    fails(
        sign(&[
            "publish",
            "--config",
            cfg,
            "--key",
            keys().join("root-1.pem").to_str().unwrap(),
        ]),
        "offline targets keys",
    );
    assert_eq!(before, tuf_state(&mirror), "a refused run changed tuf/");
}

#[test]
fn a_second_run_waits_for_the_lock() {
    let (_tmp, mirror, cfg) = signed_sample();
    let lock = std::fs::File::options()
        .write(true)
        .open(mirror.join(".cpantuf-sign.lock"))
        .unwrap();
    lock.lock().unwrap();
    fails(
        sign(&["timestamp", "--config", cfg.to_str().unwrap()]),
        "holds the lock",
    );
    drop(lock);
    ok(sign(&["timestamp", "--config", cfg.to_str().unwrap()]));
}

#[test]
fn claimed_author_signs_own_role_and_pause_checks_it() {
    let (tmp, mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let prop = tmp.path().join("ETHER.json");
    let p = prop.to_str().unwrap();
    // ETHER signs the proposed role offline; PAUSE imports it, registering ETHER's key.
    let author_sign = || ether_signs(p);
    let import_claiming = || import_claiming_ether(cfg, p);
    let haarg_key = keys().join("author-HAARG.pem");
    let haarg_pass = keys().join("author-HAARG.passphrase");
    export_ether(cfg, p);
    let unsigned = std::fs::read(&prop).unwrap();

    // Signed by the wrong key: refused.
    ok(sign(&[
        "author",
        "sign",
        p,
        "--key",
        haarg_key.to_str().unwrap(),
        "--passphrase-file",
        haarg_pass.to_str().unwrap(),
    ]));
    let before = tuf_state(&mirror);
    fails(import_claiming(), "is not signed by the author's key");
    // Reaching outside the author's directory (into HAARG's, and a
    // PAUSE-owned CHECKSUMS): refused even when correctly signed.
    for (from, to) in [
        (
            "authors/id/E/ET/ETHER/Try-Tiny",
            "authors/id/H/HA/HAARG/Try-Tiny",
        ),
        (
            "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
            "authors/id/E/ET/ETHER/CHECKSUMS",
        ),
    ] {
        let forged = String::from_utf8(unsigned.clone())
            .unwrap()
            .replace(from, to);
        std::fs::write(&prop, forged).unwrap();
        ok(author_sign());
        fails(import_claiming(), "does not cover");
    }
    assert_eq!(before, tuf_state(&mirror), "a refused import changed tuf/");

    // The real thing.
    std::fs::write(&prop, &unsigned).unwrap();
    ok(author_sign());
    ok(import_claiming());
    // Same version again: refused.
    fails(
        sign(&["author", "import", "--config", cfg, "ETHER", p]),
        "does not increase",
    );
    // PAUSE can no longer sign ETHER's uploads.
    let up = mirror.join("authors/id/E/ET/ETHER/Claimed-1.0.tar.gz");
    std::fs::write(&up, b"claimed upload").unwrap();
    fails(
        sign(&["add", "--config", cfg, up.to_str().unwrap()]),
        "is claimed",
    );
    // A full publish keeps the author's own file and warns about the upload.
    let out = sign(&["publish", "--config", cfg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("claimed author ETHER"));
    // The author signs the new upload.
    export_ether(cfg, p);
    ok(author_sign());
    ok(sign(&["author", "import", "--config", cfg, "ETHER", p]));
    verify_from_first_root(&mirror);
    let server = serve(&mirror);
    let rel = "authors/id/E/ET/ETHER/Claimed-1.0.tar.gz";
    assert_eq!(
        cpantuf_get(&mirror, server.port, &[rel])[0]
            .as_ref()
            .unwrap(),
        b"claimed upload"
    );
    ngclient(
        &mirror,
        server.port,
        &[(rel, true), (TRY_TINY, true), (MOO, true)],
    );
    drop(server);
    // Revoke: back to PAUSE's key, and PAUSE signs uploads again. PAUSE's online keys
    // alone cannot: claimed authors are delegated by the offline top-level targets role.
    let before = tuf_state(&mirror);
    fails(
        sign(&["author", "revoke", "--config", cfg, "ETHER"]),
        "needs the offline targets keys",
    );
    assert_eq!(before, tuf_state(&mirror), "a refused revoke changed tuf/");
    let (t1, t2) = (keys().join("targets-1.pem"), keys().join("targets-2.pem"));
    let offline = ["--key", t1.to_str().unwrap(), "--key", t2.to_str().unwrap()];
    ok(sign(
        &[
            &["author", "revoke", "--config", cfg, "ETHER"],
            &offline[..],
        ]
        .concat(),
    ));
    let up2 = mirror.join("authors/id/E/ET/ETHER/After-Revoke-1.0.tar.gz");
    std::fs::write(&up2, b"after").unwrap();
    ok(sign(&["add", "--config", cfg, up2.to_str().unwrap()]));
    verify_from_first_root(&mirror);
}

#[test]
fn root_rotation_needs_old_and_new_thresholds_signed_separately() {
    let (tmp, mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let prep = tmp.path().join("2.root.pending.json");
    let p = prep.to_str().unwrap();
    let k = |n: &str| keys().join(n).to_str().unwrap().to_owned();
    // New root: root-3 alone (threshold 1, lowered on purpose); old root
    // needs 2 of root-1..3. Keeping the threshold with one key is refused.
    let prepare = |extra: &[&str]| {
        let mut args = vec!["root", "prepare", "--config", cfg, "--out", p];
        let key = k("root-3.pub.pem");
        args.extend(["--root-key", key.as_str()]);
        args.extend_from_slice(extra);
        sign(&args)
    };
    fails(prepare(&[]), "a threshold of 2 with 1 key(s)");
    ok(prepare(&[
        "--root-threshold",
        "1",
        "--allow-lower-threshold",
    ]));
    let before = tuf_state(&mirror);
    ok(sign(&["root", "sign", p, "--key", &k("root-1.pem")]));
    fails(
        sign(&["root", "publish", "--config", cfg, p]),
        "current root's root keys",
    );
    ok(sign(&["root", "sign", p, "--key", &k("root-2.pem")]));
    fails(
        sign(&["root", "publish", "--config", cfg, p]),
        "its own root keys",
    );
    assert_eq!(
        before,
        tuf_state(&mirror),
        "a refused root publish changed tuf/"
    );
    ok(sign(&["root", "sign", p, "--key", &k("root-3.pem")]));
    ok(sign(&["root", "publish", "--config", cfg, p]));
    verify_from_first_root(&mirror);
    let server = serve(&mirror);
    assert!(cpantuf_get(&mirror, server.port, &[TRY_TINY])[0].is_ok());
    let out = ngclient(&mirror, server.port, &[(TRY_TINY, true)]);
    assert!(out.contains("trusted_root_version=2"), "{out}");
}

/// An author who deletes every file keeps an empty role: a returning client,
/// which trusts the snapshot that lists the role, accepts the next one (a
/// snapshot without the role would be refused as a rollback, spec 5.5.5,
/// leaving every client stuck).
#[test]
fn an_author_who_deletes_every_file_keeps_an_empty_role_and_clients_follow() {
    let (tmp, mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let only = "authors/id/E/ET/ETHERGONE/Only-1.0.tar.gz";
    std::fs::create_dir_all(mirror.join(only).parent().unwrap()).unwrap();
    std::fs::write(mirror.join(only), b"the only release").unwrap();
    ok(sign(&[
        "add",
        "--config",
        cfg,
        mirror.join(only).to_str().unwrap(),
    ]));

    let server = serve(&mirror);
    let mut client =
        client_trusting_first_root(&mirror, server.port, &tmp.path().join("client-metadata"));
    client.refresh().unwrap();
    assert_eq!(client.target_info(only).unwrap().role, "author-ETHERGONE");

    // The author deletes the release; the operator re-signs everything.
    std::fs::remove_file(mirror.join(only)).unwrap();
    publish_with_targets_keys(cfg);
    verify_from_first_root(&mirror);
    let snapshot = |client: &Updater| client.trusted().unwrap().snapshot().unwrap().version.get();
    let before = snapshot(&client);
    client
        .refresh()
        .expect("a returning client must accept the snapshot after the deletion");
    assert!(snapshot(&client) > before);
    let err = client.target_info(only).unwrap_err().to_string();
    assert!(
        err.contains("no role") || err.contains("not found") || err.contains("lists"),
        "{err}"
    );
}

/// A full publish over an unchanged mirror re-signs no targets role (only
/// snapshot and timestamp), so clients and mirrors fetch nothing else; one
/// changed author re-signs that author's role alone.
#[test]
fn a_full_publish_re_signs_only_the_roles_that_changed() {
    let (_tmp, mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let publish = || publish_with_targets_keys(cfg);
    let out = publish();
    assert!(out.contains(" 0 roles signed,"), "{out}");
    std::fs::write(
        mirror.join("authors/id/E/ET/ETHER/Another-0.01.tar.gz"),
        b"another",
    )
    .unwrap();
    let out = publish();
    assert!(out.contains(" 1 roles signed,"), "{out}");
    let newest = |role: &str| newest_version(&mirror, role);
    assert_eq!(newest("author-ETHER"), 2);
    assert_eq!(newest("author-HAARG"), 1);
    assert_eq!(newest("index"), 1);
    verify_from_first_root(&mirror);
}

/// A top-level targets change (a new author prefix) signed by the two
/// targets key holders separately, offline: prepared, signed one by one,
/// published once the threshold is met; refused below it, and refused once
/// the mirror has moved on from what was prepared.
#[test]
fn top_level_targets_change_is_signed_by_each_key_holder_separately() {
    let (tmp, mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let pending = tmp.path().join("targets.pending.json");
    let pending_s = pending.to_str().unwrap();
    let fresh = "authors/id/Z/ZZ/ZZTOP/Y-1.tar.gz";
    std::fs::create_dir_all(mirror.join(fresh).parent().unwrap()).unwrap();
    std::fs::write(mirror.join(fresh), b"y").unwrap();
    let before = tuf_state(&mirror);

    let out = ok(sign(&[
        "publish",
        "--config",
        cfg,
        "--prepare-targets",
        pending_s,
    ]));
    assert!(out.contains("prepared targets version 2"), "{out}");
    assert_eq!(before, tuf_state(&mirror), "prepare must publish nothing");

    let publish_signed = || sign(&["publish", "--config", cfg, "--targets-signed", pending_s]);
    fails(publish_signed(), "has 0 of 2 signature(s)");
    let key = |n: &str| keys().join(n).to_str().unwrap().to_owned();
    ok(sign(&[
        "targets",
        "sign",
        pending_s,
        "--key",
        &key("targets-1.pem"),
    ]));
    fails(publish_signed(), "has 1 of 2 signature(s)");
    // A signature by a key that is not a targets key does not count.
    ok(sign(&[
        "targets",
        "sign",
        pending_s,
        "--key",
        &key("snapshot.pem"),
    ]));
    fails(publish_signed(), "has 1 of 2 signature(s)");
    assert_eq!(
        before,
        tuf_state(&mirror),
        "nothing published below threshold"
    );
    ok(sign(&[
        "targets",
        "sign",
        pending_s,
        "--key",
        &key("targets-2.pem"),
    ]));
    let out = ok(publish_signed());
    assert!(out.contains("targets re-signed"), "{out}");
    verify_from_first_root(&mirror);
    let server = serve(&mirror);
    assert_eq!(
        cpantuf_get(&mirror, server.port, &[fresh])[0]
            .as_ref()
            .unwrap(),
        b"y"
    );

    // The mirror moves on (another new prefix): the old file is stale.
    let other = "authors/id/Q/QQ/QQUEUE/X-1.tar.gz";
    std::fs::create_dir_all(mirror.join(other).parent().unwrap()).unwrap();
    std::fs::write(mirror.join(other), b"x").unwrap();
    let before = tuf_state(&mirror);
    fails(publish_signed(), "cannot be used");
    assert_eq!(before, tuf_state(&mirror));
    std::fs::remove_file(mirror.join(other)).unwrap();
    let out = ok(sign(&[
        "publish",
        "--config",
        cfg,
        "--prepare-targets",
        pending_s,
    ]));
    assert!(out.contains("nothing prepared"), "{out}");
}

/// ADR 0006: an author with more files than `author_bins_above` gets a role
/// that delegates to succinct hash bins. Both clients follow the bins; an
/// upload re-signs one bin; a tampered bin is refused; when the author
/// claims their role the bins are retired (emptied, still in the snapshot)
/// and the audit accepts that; a revoke bins the author again.
#[test]
fn a_large_author_is_split_into_hash_bins_and_both_clients_follow_them() {
    let (tmp, mirror, cfg_path) = signed_sample();
    let cfg = cfg_path.to_str().unwrap();
    set_config(&cfg_path, "author_bins_above", 4.into());
    let dir = mirror.join("authors/id/E/ET/ETHER");
    for i in 0..12 {
        std::fs::write(dir.join(format!("Bulk-{i}.tar.gz")), format!("bulk {i}")).unwrap();
    }
    publish_with_targets_keys(cfg);
    verify_from_first_root(&mirror);

    // 15 files > 4: ETHER's role delegates to bins; HAARG (4 files) does not.
    let author_role = |v: u64| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(mirror.join(format!("tuf/{v}.author-ETHER.json"))).unwrap(),
        )
        .unwrap()
    };
    let ether_v = newest_version(&mirror, "author-ETHER");
    let signed = &author_role(ether_v)["signed"];
    assert_eq!(signed["targets"], serde_json::json!({}));
    let succinct = &signed["delegations"]["succinct_roles"];
    assert_eq!(succinct["name_prefix"], "author-ETHER-bin");
    let bits = succinct["bit_length"].as_u64().unwrap();
    assert_eq!(bits, 3, "15 files, bins of at most 2: {succinct}");
    for bin in 0..1u64 << bits {
        assert!(newest_version(&mirror, &format!("author-ETHER-bin-{bin:x}")) >= 1);
    }
    assert!(newest_version(&mirror, "author-HAARG-bin-0") == 0);

    let bulk = "authors/id/E/ET/ETHER/Bulk-7.tar.gz";
    let server = serve(&mirror);
    let wanted = [TRY_TINY, SUB_FILE, bulk, MOO];
    for (t, got) in wanted
        .iter()
        .zip(cpantuf_get(&mirror, server.port, &wanted))
    {
        assert_eq!(got.unwrap(), std::fs::read(mirror.join(t)).unwrap(), "{t}");
    }
    // One returning client across the changes below, on whichever port
    // the mirror is served.
    let metadata = tmp.path().join("client-metadata");
    let bin_of_try_tiny = client_trusting_first_root(&mirror, server.port, &metadata)
        .target_info(TRY_TINY)
        .unwrap()
        .role;
    let returning = |port: u16| {
        Updater::new(UpdaterConfig::for_mirror(
            metadata.clone(),
            &format!("http://127.0.0.1:{port}/"),
        ))
        .unwrap()
    };
    assert!(
        bin_of_try_tiny.starts_with("author-ETHER-bin-"),
        "{bin_of_try_tiny}"
    );
    let expect: Vec<(&str, bool)> = wanted.iter().map(|t| (*t, true)).collect();
    ngclient(&mirror, server.port, &expect);
    drop(server);

    // An upload re-signs the one bin it hashes into, not the author role.
    let up = "authors/id/E/ET/ETHER/Upload-1.0.tar.gz";
    std::fs::write(mirror.join(up), b"upload into a bin").unwrap();
    let out = ok(sign(&[
        "add",
        "--config",
        cfg,
        mirror.join(up).to_str().unwrap(),
    ]));
    assert!(out.contains("re-signed author-ETHER-bin-"), "{out}");
    assert!(!out.contains(", "), "one role only: {out}");
    assert_eq!(newest_version(&mirror, "author-ETHER"), ether_v);
    verify_from_first_root(&mirror);
    // A deleted file is removed from its bin alone.
    let gone = "authors/id/E/ET/ETHER/Bulk-3.tar.gz";
    std::fs::remove_file(mirror.join(gone)).unwrap();
    let out = ok(sign(&["remove", "--config", cfg, gone]));
    assert!(out.contains("re-signed author-ETHER-bin-"), "{out}");
    assert!(!out.contains(", "), "one role only: {out}");
    verify_from_first_root(&mirror);

    // A tampered bin: both clients refuse what it lists; the audit names it.
    let bin_file = mirror.join(format!(
        "tuf/{}.{bin_of_try_tiny}.json",
        newest_version(&mirror, &bin_of_try_tiny)
    ));
    let honest = std::fs::read(&bin_file).unwrap();
    let len = std::fs::metadata(mirror.join(TRY_TINY)).unwrap().len();
    let forged = String::from_utf8(honest.clone()).unwrap().replace(
        &format!("\"length\":{len}"),
        &format!("\"length\":{}", len + 1),
    );
    assert_ne!(forged.as_bytes(), honest.as_slice());
    std::fs::write(&bin_file, forged).unwrap();
    let server = serve(&mirror);
    let got = cpantuf_get(&mirror, server.port, &[TRY_TINY, up]);
    assert!(got[0].is_err(), "cpantuf accepted a forged bin");
    assert_eq!(got[1].as_ref().unwrap(), b"upload into a bin");
    ngclient(&mirror, server.port, &[(TRY_TINY, false), (up, true)]);
    drop(server);
    let report = audit(&mirror);
    assert_eq!(report.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&report.stdout).contains(&bin_of_try_tiny));
    std::fs::write(&bin_file, honest).unwrap();

    // ETHER claims the role as one leaf role of 15 files, above the
    // threshold: refused (a new client would fetch it whole), nothing changes.
    let prop = tmp.path().join("ETHER.json");
    let p = prop.to_str().unwrap();
    export_ether(cfg, p);
    ok(ether_signs(p));
    let before = tuf_state(&mirror);
    fails(import_claiming_ether(cfg, p), "--bins 3");
    assert_eq!(tuf_state(&mirror), before);
    // Below the operator's (raised) threshold, the claim is one leaf role
    // signed by ETHER; the bins are retired and the audit accepts them.
    set_config(&cfg_path, "author_bins_above", 64.into());
    ok(import_claiming_ether(cfg, p));
    let report = verify_from_first_root(&mirror);
    assert!(
        report.contains(&format!("({} retired empty bins)", 1u64 << bits)),
        "{report}"
    );
    // A full publish keeps the retired bins as they are.
    publish_with_targets_keys(cfg);
    verify_from_first_root(&mirror);
    let server = serve(&mirror);
    let mut client = returning(server.port);
    assert_eq!(client.target_info(TRY_TINY).unwrap().role, "author-ETHER");
    drop(client);
    ngclient(&mirror, server.port, &[(TRY_TINY, true), (up, true)]);
    drop(server);

    // Revoked (at the first threshold again): PAUSE signs again, binned;
    // bin versions keep increasing.
    set_config(&cfg_path, "author_bins_above", 4.into());
    let (t1, t2) = (keys().join("targets-1.pem"), keys().join("targets-2.pem"));
    let offline = ["--key", t1.to_str().unwrap(), "--key", t2.to_str().unwrap()];
    ok(sign(
        &[
            &["author", "revoke", "--config", cfg, "ETHER"],
            &offline[..],
        ]
        .concat(),
    ));
    verify_from_first_root(&mirror);
    let server = serve(&mirror);
    let found = returning(server.port).target_info(TRY_TINY).unwrap();
    assert_eq!(found.role, bin_of_try_tiny);
    ngclient(&mirror, server.port, &[(TRY_TINY, true), (bulk, true)]);
}

/// `remove`: after files are deleted from the mirror, the roles listing
/// them are re-signed without them (author role, index role); clients stop
/// finding them. Refused with nothing published: a file still on the
/// mirror, a path no role lists.
#[test]
fn removing_deleted_files_re_signs_their_roles_and_clients_stop_finding_them() {
    let (_tmp, mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let modlist = "modules/03modlist.data.gz";
    let before = tuf_state(&mirror);
    fails(
        sign(&["remove", "--config", cfg, TRY_TINY]),
        "still on the mirror",
    );
    std::fs::remove_file(mirror.join(TRY_TINY)).unwrap();
    std::fs::remove_file(mirror.join(modlist)).unwrap();
    fails(
        sign(&[
            "remove",
            "--config",
            cfg,
            TRY_TINY,
            "authors/id/E/ET/ETHER/Never-There-1.0.tar.gz",
        ]),
        "not listed by author-ETHER",
    );
    fails(
        sign(&[
            "remove",
            "--config",
            cfg,
            "authors/id/E/ET/ETHER/../HAARG/x",
        ]),
        "not a CPAN path",
    );
    assert_eq!(before, tuf_state(&mirror), "a refused remove changed tuf/");
    let out = ok(sign(&[
        "remove",
        "--config",
        cfg,
        mirror.join(TRY_TINY).to_str().unwrap(),
        modlist,
    ]));
    assert!(
        out.contains("removed 2 file(s); re-signed author-ETHER, index"),
        "{out}"
    );
    verify_from_first_root(&mirror);
    let server = serve(&mirror);
    let got = cpantuf_get(&mirror, server.port, &[TRY_TINY, modlist, MOO]);
    assert!(got[0].is_err() && got[1].is_err(), "{got:?}");
    assert!(got[2].is_ok());
    ngclient(
        &mirror,
        server.port,
        &[(TRY_TINY, false), (modlist, false), (MOO, true)],
    );
}

/// A run that crashed after writing a role file but before its timestamp
/// leaves `N+1.ROLE.json` that no snapshot names. Pruning must treat it as
/// debris, not as the newer version: otherwise it would prune the version
/// the published snapshot names (here with retention 0, at once).
#[test]
fn pruning_after_a_crashed_run_keeps_the_published_version_and_drops_the_stray() {
    let (_tmp, mirror, cfg_path) = signed_sample();
    let cfg = cfg_path.to_str().unwrap();
    set_config(&cfg_path, "retention_hours", 0.into());
    let v = newest_version(&mirror, "author-HAARG");
    let published = mirror.join(format!("tuf/{v}.author-HAARG.json"));
    let stray = mirror.join(format!("tuf/{}.author-HAARG.json", v + 1));
    std::fs::copy(&published, &stray).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Nothing changed: HAARG's role keeps version v; then pruning runs.
    let out = publish_with_targets_keys(cfg);
    assert!(out.contains(" 0 roles signed,"), "{out}");
    assert!(published.is_file(), "the published version was pruned");
    assert!(!stray.exists(), "the crashed run's file was kept");
    verify_from_first_root(&mirror);
}
