//! "Is this from AUTHOR?" end to end, with real processes: an author makes a key with
//! `cpantuf author keygen`, claims their role, builds a tarball and signs it on their own
//! machine with `cpantuf author release`; PAUSE (`cpantuf-sign author import`) checks the
//! uploaded bytes against the author's signature and publishes; a user installs it with real
//! cpanm. Then an attacker holding PAUSE's online keys (authors, index, snapshot, timestamp)
//! replaces the tarball, or publishes another one for that author and points the index at
//! it: every install refuses, and `cpantuf author status` names the file the author did not
//! sign.

use cpantuf_core::cpan::packages::{PackageEntry, PackageName, PackageVersion, Packages};
use cpantuf_core::cpan::DistPath;
use cpantuf_tests::{
    bin, marker_tarball, run, run_ok, without_proxies, workspace_root, EvilMirror,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DIR: &str = "authors/id/E/ET/ETHER";

struct World {
    tmp: tempfile::TempDir,
    _server: EvilMirror,
    url: String,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = tmp.path().join("mirror");
        for d in ["authors", "modules"] {
            cpantuf_tests::copy_tree(
                &workspace_root().join("sample-mirror").join(d),
                &mirror.join(d),
            );
        }
        cpantuf_tests::sign_new_repository(&mirror, &tmp.path().join("signer.json"));
        let server = EvilMirror::start(&mirror);
        let url = server.url();
        let w = World {
            tmp,
            _server: server,
            url,
        };
        std::fs::create_dir_all(w.author_dir()).unwrap();
        std::fs::write(w.p("pass"), "correct horse battery staple\n").unwrap();
        run_ok(
            w.cpantuf()
                .args(["init", &w.url, "--root"])
                .arg(w.mirror().join("tuf/1.root.json")),
        );
        w
    }

    fn p(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn mirror(&self) -> PathBuf {
        self.p("mirror")
    }

    /// The author's own machine: their key and built tarballs.
    fn author_dir(&self) -> PathBuf {
        self.p("author")
    }

    fn cpantuf(&self) -> Command {
        let mut c = Command::new(bin("cpantuf"));
        without_proxies(&mut c)
            .arg("--home")
            .arg(self.p("home"))
            .env("HOME", self.tmp.path())
            .env_remove("CPANTUF_HOME")
            .env_remove("PERL_CPANM_OPT")
            .env_remove("PERL_CPANM_HOME");
        c
    }

    /// `cpantuf author ARGS... --key ETHER.pem --passphrase-file pass`.
    fn author(&self, args: &[&str]) -> Output {
        self.author_with("ETHER.pem", args)
    }

    /// The same with another of the author's key files.
    fn author_with(&self, key: &str, args: &[&str]) -> Output {
        run(self
            .cpantuf()
            .arg("author")
            .args(args)
            .arg("--key")
            .arg(self.author_dir().join(key))
            .arg("--passphrase-file")
            .arg(self.p("pass")))
    }

    /// `cpantuf author keygen` of `name` in the author's directory.
    fn keygen(&self, name: &str) {
        ok(run(self
            .cpantuf()
            .args(["author", "keygen"])
            .arg(self.author_dir().join(name))
            .arg("--passphrase-file")
            .arg(self.p("pass"))));
    }

    /// `cpantuf-sign author import ETHER ETHER.role.json ARGS...`, not asserted; a claim
    /// (`--claim-key`) runs in an offline session, with the targets keys.
    fn import(&self, args: &[&str]) -> Output {
        let mut c = Command::new(bin("cpantuf-sign"));
        c.args(["author", "import", "ETHER"])
            .arg(self.author_dir().join("ETHER.role.json"))
            .args(args)
            .arg("--config")
            .arg(self.p("signer.json"));
        if args.contains(&"--claim-key") {
            offline_keys(&mut c);
        }
        run(&mut c)
    }

    fn sign(&self, args: &[&str]) -> Output {
        run_ok(
            Command::new(bin("cpantuf-sign"))
                .args(args)
                .arg("--config")
                .arg(self.p("signer.json")),
        )
    }

    /// PAUSE (with its online index key) maps `module` to `dist` in 02packages.
    fn index(&self, module: &str, version: &str, dist: &str) {
        let idx_path = self.mirror().join("modules/02packages.details.txt.gz");
        let idx = Packages::read_gz(std::fs::File::open(&idx_path).unwrap()).unwrap();
        let mut entries: Vec<PackageEntry> = idx
            .entries()
            .iter()
            .filter(|e| e.package.as_str() != module)
            .cloned()
            .collect();
        entries.push(PackageEntry {
            package: PackageName::new(module).unwrap(),
            version: Some(PackageVersion::new(version).unwrap()),
            dist: DistPath::new(dist).unwrap(),
        });
        entries.sort_by(|a, b| {
            a.package
                .as_str()
                .to_lowercase()
                .cmp(&b.package.as_str().to_lowercase())
        });
        let new = Packages::new(idx.header().clone(), entries).unwrap();
        std::fs::write(&idx_path, new.to_gz_bytes()).unwrap();
        self.sign(&["index"]);
    }

    /// `cpantuf-sign status`'s warnings (stderr).
    fn pause_status(&self) -> String {
        let out = run(Command::new(bin("cpantuf-sign"))
            .arg("status")
            .arg("--config")
            .arg(self.p("signer.json")));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn install(&self, module: &str, prefix: &Path) -> Output {
        run(self
            .cpantuf()
            .args(["install", module, "--", "-L"])
            .arg(prefix)
            .args(["--notest", "--reinstall"]))
    }
}

/// The offline targets keys of the example repository (a PAUSE key ceremony).
fn offline_keys(c: &mut Command) -> &mut Command {
    let keys = cpantuf_tests::example_keys();
    c.arg("--key")
        .arg(keys.join("targets-1.pem"))
        .arg("--key")
        .arg(keys.join("targets-2.pem"))
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "failed ({:?}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(o: &Output, needle: &str) -> String {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "must fail:\n{all}");
    assert!(all.contains(needle), "expected {needle:?} in:\n{all}");
    all
}

#[test]
fn author_signed_release_installs_and_pause_online_keys_cannot_replace_it() {
    let w = World::new();
    let key = w.author_dir().join("ETHER.pem");
    let pubkey = w.author_dir().join("ETHER.pub.pem");
    w.keygen("ETHER.pem");
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .contains("BEGIN ENCRYPTED PRIVATE KEY"));

    // The claim: ETHER's current role, verified through TUF, signed by the new key.
    ok(w.author(&["claim", "ETHER", "--out", w.author_dir().to_str().unwrap()]));
    let role_file = w.author_dir().join("ETHER.role.json");
    // A release before PAUSE registered the key: the role is still delegated to PAUSE's.
    let tarball = w.author_dir().join("Acme-Mine-1.0.tar.gz");
    let good = w.p("installed-the-authors-tarball");
    std::fs::write(
        &tarball,
        marker_tarball("Acme-Mine-1.0", "Acme::Mine", "1.0", &good),
    )
    .unwrap();
    fails(
        &w.author(&["release", "ETHER", tarball.to_str().unwrap()]),
        "wrong key",
    );
    ok(w.import(&["--claim-key", pubkey.to_str().unwrap()]));

    // The release, signed over the local tarball; then the upload and PAUSE's import.
    ok(w.author(&["release", "ETHER", tarball.to_str().unwrap()]));
    // A tarball changed after the author signed it is refused by PAUSE, and nothing is published.
    let on_mirror = w.mirror().join(DIR).join("Acme-Mine-1.0.tar.gz");
    std::fs::write(&on_mirror, b"changed after signing").unwrap();
    let refused = run(Command::new(bin("cpantuf-sign"))
        .args(["author", "import", "ETHER"])
        .arg(&role_file)
        .arg("--config")
        .arg(w.p("signer.json")));
    fails(&refused, "other bytes on the mirror");
    std::fs::copy(&tarball, &on_mirror).unwrap();
    // Until the author's role arrives, PAUSE holds the upload and says so.
    let held = format!("held: claimed author ETHER: {DIR}/Acme-Mine-1.0.tar.gz is held");
    assert!(w.pause_status().contains(&held));
    w.sign(&["author", "import", "ETHER", role_file.to_str().unwrap()]);
    assert!(!w.pause_status().contains("held:"));
    // The same role sent again (or one signed from a mirror behind PAUSE): named as such.
    fails(&w.import(&[]), "signed from metadata older than PAUSE's");
    w.index("Acme::Mine", "1.0", "E/ET/ETHER/Acme-Mine-1.0.tar.gz");
    w.sign(&["timestamp"]);

    let prefix = w.p("prefix");
    ok(w.install("Acme::Mine", &prefix));
    assert!(good.exists(), "the author's tarball was not built");
    assert!(prefix.join("lib/perl5/Acme/Mine.pm").is_file());
    let status = ok(w.author(&["status", "ETHER", "--dir", w.author_dir().to_str().unwrap()]));
    assert!(status.contains("your key signs it"), "{status}");

    // The attacker holds PAUSE's online keys. First: other bytes under the same name (the
    // file and its hash-named twin are one inode), re-published with a full publish.
    std::fs::remove_file(&good).unwrap();
    let evil = w.p("code-from-the-attackers-tarball-ran");
    std::fs::write(
        &on_mirror,
        marker_tarball("Acme-Mine-1.0", "Acme::Mine", "1.0", &evil),
    )
    .unwrap();
    w.sign(&["publish"]);
    // A user who never fetched it before (the verified cache holds the author's bytes).
    std::fs::remove_dir_all(w.p("home/cache")).unwrap();
    let out = w.install("Acme::Mine", &w.p("prefix2"));
    let text = fails(&out, "Acme-Mine-1.0.tar.gz");
    assert!(text.contains("hash") || text.contains("length"), "{text}");
    assert!(
        !evil.exists() && !good.exists(),
        "code ran from a tarball the author did not sign"
    );

    // Second: another release in the author's directory, which the index (online key) points at.
    let evil_dist = w.mirror().join(DIR).join("Acme-Mine-1.1.tar.gz");
    std::fs::write(
        &evil_dist,
        marker_tarball("Acme-Mine-1.1", "Acme::Mine", "1.1", &evil),
    )
    .unwrap();
    w.sign(&["publish"]);
    w.index("Acme::Mine", "1.1", "E/ET/ETHER/Acme-Mine-1.1.tar.gz");
    w.sign(&["timestamp"]);
    let out = w.install("Acme::Mine", &w.p("prefix3"));
    fails(&out, "no signed metadata lists it");
    assert!(
        !evil.exists(),
        "code ran from a tarball the author did not sign"
    );
    assert!(w
        .pause_status()
        .contains(&format!("{DIR}/Acme-Mine-1.1.tar.gz is held")));
    let status = w.author(&["status", "ETHER"]);
    let text = fails(&status, "not signed by your role");
    assert!(
        text.contains(&format!("{DIR}/Acme-Mine-1.1.tar.gz")),
        "{text}"
    );
}

#[test]
fn a_claimed_authors_key_is_replaced_only_with_the_old_keys_signature_or_a_recovery() {
    let w = World::new();
    let pem = |n: &str| w.author_dir().join(n).display().to_string();
    let out = pem("");
    w.keygen("ETHER.pem");
    ok(w.author(&["claim", "ETHER", "--out", &out]));
    ok(w.import(&["--claim-key", &pem("ETHER.pub.pem")]));

    // A request signed by the new key alone (as someone holding PAUSE's tooling could make).
    w.keygen("NEW.pem");
    ok(w.author_with("NEW.pem", &["claim", "ETHER", "--out", &out]));
    let before = std::fs::read_dir(w.mirror().join("tuf")).unwrap().count();
    fails(
        &w.import(&["--claim-key", &pem("NEW.pub.pem")]),
        "needs the role signed by the registered key",
    );
    assert_eq!(
        before,
        std::fs::read_dir(w.mirror().join("tuf")).unwrap().count()
    );

    // The author's own rotation: the old key signs the request for the new one.
    ok(w.author_with(
        "NEW.pem",
        &[
            "claim",
            "ETHER",
            "--old-key",
            &pem("ETHER.pem"),
            "--out",
            &out,
        ],
    ));
    ok(w.import(&["--claim-key", &pem("NEW.pub.pem")]));
    w.sign(&["timestamp"]);
    let t = w.author_dir().join("After-Rotation-1.0.tar.gz");
    std::fs::write(&t, b"released with the new key").unwrap();
    fails(
        &w.author(&["release", "ETHER", t.to_str().unwrap()]),
        "wrong key",
    );
    ok(w.author_with("NEW.pem", &["release", "ETHER", t.to_str().unwrap()]));

    // A lost key: PAUSE authenticates the author and recovers without the old signature.
    w.keygen("THIRD.pem");
    ok(w.author_with("THIRD.pem", &["claim", "ETHER", "--out", &out]));
    ok(w.import(&["--claim-key", &pem("THIRD.pub.pem"), "--recover"]));
    w.sign(&["timestamp"]);
    let status = ok(w.author_with("THIRD.pem", &["status", "ETHER"]));
    assert!(status.contains("your key signs it"), "{status}");
}

/// Metadata signed as an attacker holding PAUSE's online keys would sign it: canonical
/// JSON, one signature.
fn forged<T: cpantuf_core::metadata::RoleMeta + serde::Serialize>(
    payload: &T,
    key: &str,
) -> Vec<u8> {
    use cpantuf_core::canonical;
    let pem = std::fs::read_to_string(cpantuf_tests::example_keys().join(key)).unwrap();
    let k = cpantuf_core::crypto::Ed25519Signer::from_pkcs8_pem(&pem, None).unwrap();
    let signed = cpantuf_core::metadata::signed_value(payload);
    let sig = k.sign_hex(&canonical::encode(&signed).unwrap());
    let env =
        serde_json::json!({"signatures": [{"keyid": k.keyid(), "sig": sig}], "signed": signed});
    canonical::encode(&env).unwrap()
}

fn parse<T: cpantuf_core::metadata::RoleMeta + serde::de::DeserializeOwned>(path: &Path) -> T {
    let bytes = std::fs::read(path).unwrap();
    cpantuf_core::metadata::Envelope::<T>::from_bytes(&bytes)
        .unwrap()
        .into_unverified()
}

/// `meta` describing `bytes` at `version`, with the fields the published entry had.
fn meta_for(
    old: &cpantuf_core::metadata::MetaFile,
    version: std::num::NonZeroU64,
    bytes: &[u8],
) -> cpantuf_core::metadata::MetaFile {
    let sha = cpantuf_core::target::sha256_hex(bytes);
    cpantuf_core::metadata::MetaFile {
        version,
        length: old.length.map(|_| bytes.len() as u64),
        hashes: old
            .hashes
            .as_ref()
            .map(|_| std::collections::BTreeMap::from([("sha256".to_owned(), sha)])),
    }
}

/// The attack the online registry key allowed before claimed authors moved to the offline
/// top-level targets role: ETHER's prefix role re-delegates `author-ETHER` to PAUSE's key,
/// PAUSE's key signs a role listing another tarball, and a new snapshot and timestamp name
/// them. Every key used is one of PAUSE's online keys (registry, authors, snapshot,
/// timestamp).
fn re_delegate_with_online_keys(w: &World, evil: &[u8]) {
    use cpantuf_core::metadata::{DelegatedRole, Snapshot, Targets, Timestamp};
    let tuf = w.mirror().join("tuf");
    let ts: Timestamp = parse(&tuf.join("timestamp.json"));
    let sv = ts.meta["snapshot.json"].version;
    let snap: Snapshot = parse(&tuf.join(format!("{sv}.snapshot.json")));
    let bump = |v: std::num::NonZeroU64| v.checked_add(1).unwrap();
    let name = "Evil-1.0.tar.gz";
    let sha = cpantuf_core::target::sha256_hex(evil);
    std::fs::write(w.mirror().join(DIR).join(name), evil).unwrap();
    std::fs::write(w.mirror().join(DIR).join(format!("{sha}.{name}")), evil).unwrap();

    let mut files = Vec::new();
    let pv = snap.meta["prefix-E-ET.json"].version;
    let mut prefix: Targets = parse(&tuf.join(format!("{pv}.prefix-E-ET.json")));
    let pause_authors = {
        let pem = std::fs::read_to_string(cpantuf_tests::example_keys().join("authors.pem"));
        cpantuf_core::crypto::Ed25519Signer::from_pkcs8_pem(&pem.unwrap(), None).unwrap()
    };
    let d = prefix.delegations.as_mut().unwrap();
    d.keys.insert(
        pause_authors.keyid().clone(),
        pause_authors.public_key().clone(),
    );
    let roles = d.roles.get_or_insert_with(Vec::new);
    roles.retain(|r| r.name != "author-ETHER");
    roles.insert(
        0,
        DelegatedRole {
            name: "author-ETHER".into(),
            keyids: vec![pause_authors.keyid().clone()],
            threshold: std::num::NonZeroU64::MIN,
            terminating: true,
            paths: Some(vec![format!("{DIR}/*")]),
            path_hash_prefixes: None,
        },
    );
    prefix.version = bump(pv);
    files.push((
        "prefix-E-ET",
        prefix.version,
        forged(&prefix, "registry.pem"),
    ));

    let av = snap.meta["author-ETHER.json"].version;
    let mut author: Targets = parse(&tuf.join(format!("{av}.author-ETHER.json")));
    author.targets.insert(
        format!("{DIR}/{name}"),
        cpantuf_core::metadata::TargetFile {
            length: evil.len() as u64,
            hashes: std::collections::BTreeMap::from([("sha256".to_owned(), sha)]),
            custom: None,
        },
    );
    author.version = bump(av);
    files.push((
        "author-ETHER",
        author.version,
        forged(&author, "authors.pem"),
    ));

    publish_forged(w, &files);
}

/// Writes `files` (role, version, signed bytes) and a snapshot and timestamp naming them,
/// signed with PAUSE's online snapshot and timestamp keys.
fn publish_forged(w: &World, files: &[(&str, std::num::NonZeroU64, Vec<u8>)]) {
    use cpantuf_core::metadata::{Snapshot, Timestamp};
    let tuf = w.mirror().join("tuf");
    let ts: Timestamp = parse(&tuf.join("timestamp.json"));
    let sv = ts.meta["snapshot.json"].version;
    let snap: Snapshot = parse(&tuf.join(format!("{sv}.snapshot.json")));
    let bump = |v: std::num::NonZeroU64| v.checked_add(1).unwrap();
    let mut snap2 = snap.clone();
    for (role, v, bytes) in files {
        std::fs::write(tuf.join(format!("{v}.{role}.json")), bytes).unwrap();
        let key = format!("{role}.json");
        let entry = meta_for(&snap.meta[&key], *v, bytes);
        snap2.meta.insert(key, entry);
    }
    snap2.version = bump(sv);
    let snap_bytes = forged(&snap2, "snapshot.pem");
    std::fs::write(
        tuf.join(format!("{}.snapshot.json", snap2.version)),
        &snap_bytes,
    )
    .unwrap();
    let mut ts2 = ts.clone();
    let entry = meta_for(&ts.meta["snapshot.json"], snap2.version, &snap_bytes);
    ts2.meta.insert("snapshot.json".into(), entry);
    ts2.version = bump(ts.version);
    std::fs::write(tuf.join("timestamp.json"), forged(&ts2, "timestamp.pem")).unwrap();
}

#[test]
fn pause_online_keys_with_the_registry_key_cannot_re_delegate_a_claimed_author() {
    let w = World::new();
    w.keygen("ETHER.pem");
    let out = w.author_dir().display().to_string();
    ok(w.author(&["claim", "ETHER", "--out", &out]));
    let pubkey = w.author_dir().join("ETHER.pub.pem");
    ok(w.import(&["--claim-key", pubkey.to_str().unwrap()]));
    w.sign(&["timestamp"]);
    ok(run(w
        .cpantuf()
        .args(["fetch", &format!("{DIR}/Try-Tiny-0.31.tar.gz")])));

    re_delegate_with_online_keys(&w, b"a tarball ETHER never signed");
    let out = run(w
        .cpantuf()
        .args(["fetch", &format!("{DIR}/Evil-1.0.tar.gz")]));
    let text = fails(&out, "author-ETHER");
    assert!(
        !w.p("home/cache").join(DIR).join("Evil-1.0.tar.gz").exists(),
        "the forged tarball reached the cache:\n{text}"
    );
    // The author sees that their role is no longer what their key signs.
    let status = w.author(&["status", "ETHER"]);
    assert!(!status.status.success());
}

/// The roles in the file `cpantuf author` wrote: a bundle's role names, or the one role.
fn roles_in(file: &Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    match v.get("roles").and_then(|r| r.as_object()) {
        Some(roles) => roles.keys().cloned().collect(),
        None => vec!["author-ETHER".into()],
    }
}

/// The published `author-ETHER` role's hash bins.
fn ether_bins(w: &World) -> cpantuf_core::metadata::SuccinctRoles {
    use cpantuf_core::metadata::{Snapshot, Targets, Timestamp};
    let tuf = w.mirror().join("tuf");
    let ts: Timestamp = parse(&tuf.join("timestamp.json"));
    let sv = ts.meta["snapshot.json"].version;
    let snap: Snapshot = parse(&tuf.join(format!("{sv}.snapshot.json")));
    let av = snap.meta["author-ETHER.json"].version;
    let role: Targets = parse(&tuf.join(format!("{av}.author-ETHER.json")));
    role.delegations.unwrap().succinct_roles.unwrap()
}

/// ADR 0006 for a claimed author: above PAUSE's bin threshold the author signs their own
/// hash bins. The claim signs the role and every bin with the author's key; a release
/// re-signs the one bin its tarball hashes into, which PAUSE checks and publishes and cpanm
/// installs; `--bins` splits the role another way. Refused: a bin uploaded under another
/// bin's name (PAUSE, nothing published), a bin re-signed by PAUSE's online keys (clients).
#[test]
fn a_claimed_author_above_the_bin_threshold_signs_their_own_bins_and_a_release_re_signs_one() {
    let w = World::new();
    let cfg = w.p("signer.json");
    let mut conf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    conf["author_bins_above"] = 2.into();
    std::fs::write(&cfg, conf.to_string()).unwrap();
    for i in 0..4 {
        let f = w.mirror().join(DIR).join(format!("Bulk-{i}.tar.gz"));
        std::fs::write(f, format!("bulk {i}")).unwrap();
    }
    cpantuf_tests::sign_publish(&cfg);
    let pause_bits = ether_bins(&w).bit_length;

    // The claim: the role and all its bins, signed by the author's new key.
    w.keygen("ETHER.pem");
    let dir = w.author_dir().display().to_string();
    let out = ok(w.author(&["claim", "ETHER", "--out", &dir]));
    let role_file = w.author_dir().join("ETHER.role.json");
    let roles = roles_in(&role_file);
    assert_eq!(roles.len(), 1 + (1 << pause_bits), "{out}");
    let pubkey = w.author_dir().join("ETHER.pub.pem");
    let claim = ["--claim-key", pubkey.to_str().unwrap()];
    // A claim that leaves a bin out: PAUSE refuses the new layout, and publishes nothing.
    let ts = || std::fs::read(w.mirror().join("tuf/timestamp.json")).unwrap();
    let before = ts();
    let honest = std::fs::read(&role_file).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&honest).unwrap();
    v["roles"].as_object_mut().unwrap().remove(&roles[1]);
    std::fs::write(&role_file, v.to_string()).unwrap();
    fails(&w.import(&claim), "sign every bin again");
    assert_eq!(ts(), before);
    std::fs::write(&role_file, honest).unwrap();
    ok(w.import(&claim));
    let bins = ether_bins(&w);
    assert_eq!(bins.keyids.len(), 1);
    let status = ok(w.author(&["status", "ETHER"]));
    assert!(
        status.contains("split into") && status.contains("your key signs it"),
        "{status}"
    );

    // A release: one bin, re-signed over the local tarball; PAUSE checks and publishes it.
    let tarball = w.author_dir().join("Acme-Mine-1.0.tar.gz");
    let good = w.p("installed-the-authors-tarball");
    let bytes = marker_tarball("Acme-Mine-1.0", "Acme::Mine", "1.0", &good);
    std::fs::write(&tarball, &bytes).unwrap();
    ok(w.author(&["release", "ETHER", tarball.to_str().unwrap(), "--out", &dir]));
    let released = roles_in(&role_file);
    let bin = bins.role_for_target(&format!("{DIR}/Acme-Mine-1.0.tar.gz"));
    assert_eq!(
        released,
        std::slice::from_ref(&bin),
        "a release re-signs its bin only"
    );
    std::fs::write(w.mirror().join(DIR).join("Acme-Mine-1.0.tar.gz"), &bytes).unwrap();

    // The same bin under another bin's name: PAUSE refuses it, and nothing is published.
    let other = bins.bin_names().find(|b| *b != bin).unwrap();
    let honest = std::fs::read(&role_file).unwrap();
    let renamed = String::from_utf8(honest.clone())
        .unwrap()
        .replace(&format!("\"{bin}\""), &format!("\"{other}\""));
    std::fs::write(&role_file, renamed).unwrap();
    let before = ts();
    fails(&w.import(&[]), "it hashes into");
    assert_eq!(ts(), before);
    // The bin signed by PAUSE's online authors key instead of the author's: refused too.
    let mut v: serde_json::Value = serde_json::from_slice(&honest).unwrap();
    let env = cpantuf_core::canonical::encode(&v["roles"][&bin]).unwrap();
    let t = cpantuf_core::metadata::Envelope::<cpantuf_core::metadata::Targets>::from_bytes(&env)
        .unwrap()
        .into_unverified();
    v["roles"][&bin] = serde_json::from_slice(&forged(&t, "authors.pem")).unwrap();
    std::fs::write(&role_file, v.to_string()).unwrap();
    fails(
        &w.import(&[]),
        &format!("{bin} is not signed by the author's key"),
    );
    assert_eq!(ts(), before);
    std::fs::write(&role_file, honest).unwrap();

    ok(w.import(&[]));
    w.index("Acme::Mine", "1.0", "E/ET/ETHER/Acme-Mine-1.0.tar.gz");
    w.sign(&["timestamp"]);
    ok(w.install("Acme::Mine", &w.p("prefix")));
    assert!(good.exists(), "the author's tarball was not built");

    // Split another way: the role and every bin signed again, and PAUSE takes it.
    let bits = if pause_bits == 1 { 2 } else { 1 };
    let b = bits.to_string();
    ok(w.author(&["renew", "ETHER", "--bins", &b, "--out", &dir]));
    assert_eq!(roles_in(&role_file).len(), 1 + (1 << bits));
    ok(w.import(&[]));
    w.sign(&["timestamp"]);
    let bins = ether_bins(&w);
    assert_eq!(bins.bit_length, bits);
    // PAUSE's audit of the whole repository from the first root: the bins the new layout
    // dropped are retired (empty, still in the snapshot), and nothing else is wrong.
    let audit = ok(run(Command::new(cpantuf_tests::bin("cpantuf-sign"))
        .arg("verify")
        .arg("--mirror")
        .arg(w.mirror())
        .arg("--root")
        .arg(w.mirror().join("tuf/1.root.json"))));
    assert!(audit.contains("retired empty bins"), "{audit}");
    std::fs::remove_dir_all(w.p("home/cache")).unwrap();
    for f in ["Acme-Mine-1.0.tar.gz", "Bulk-0.tar.gz"] {
        ok(run(w.cpantuf().args(["fetch", &format!("{DIR}/{f}")])));
    }
    let status = ok(w.author(&["status", "ETHER"]));
    assert!(
        status.contains(&format!("split into {} hash bins", 1 << bits)),
        "{status}"
    );

    // PAUSE's online keys re-sign one of the author's bins with another file: refused.
    let bin = bins.role_for_target(&format!("{DIR}/Acme-Mine-1.0.tar.gz"));
    let evil = b"a tarball ETHER never signed";
    let name = (0..)
        .map(|i| format!("Evil-{i}.tar.gz"))
        .find(|n| bins.role_for_target(&format!("{DIR}/{n}")) == bin)
        .unwrap();
    let tuf = w.mirror().join("tuf");
    let newest = (1..)
        .take_while(|v| tuf.join(format!("{v}.{bin}.json")).exists())
        .last()
        .unwrap();
    let mut t: cpantuf_core::metadata::Targets = parse(&tuf.join(format!("{newest}.{bin}.json")));
    t.targets.insert(
        format!("{DIR}/{name}"),
        cpantuf_core::metadata::TargetFile {
            length: evil.len() as u64,
            hashes: [("sha256".into(), cpantuf_core::target::sha256_hex(evil))].into(),
            custom: None,
        },
    );
    t.version = t.version.checked_add(1).unwrap();
    std::fs::write(w.mirror().join(DIR).join(&name), evil).unwrap();
    let forged_bin = forged(&t, "authors.pem");
    publish_forged(&w, &[(bin.as_str(), t.version, forged_bin)]);
    let out = run(w.cpantuf().args(["fetch", &format!("{DIR}/{name}")]));
    fails(&out, &bin);
    assert!(!w.p("home/cache").join(DIR).join(&name).exists());
}

/// A claim and a revocation in an offline targets ceremony (ADR 0017, decision 6): PAUSE's
/// online machine checks the upload and prepares top-level targets unsigned, publishing
/// nothing; each targets key holder signs it on their own machine; with one signature of
/// two PAUSE refuses it, with both the claim is published. A release changes no delegation:
/// asked for a ceremony, PAUSE says there is nothing to sign offline.
#[test]
fn a_claim_and_a_revocation_are_signed_in_an_offline_targets_ceremony() {
    let w = World::new();
    let pause = |args: &[&str]| {
        run(Command::new(bin("cpantuf-sign"))
            .arg("author")
            .args(args)
            .arg("--config")
            .arg(w.p("signer.json")))
    };
    let holder = |file: &str, key: &str| {
        ok(run(Command::new(bin("cpantuf-sign"))
            .args(["targets", "sign", file, "--key"])
            .arg(cpantuf_tests::example_keys().join(key))))
    };
    let ts = || std::fs::read(w.mirror().join("tuf/timestamp.json")).unwrap();
    w.keygen("ETHER.pem");
    let dir = w.author_dir().display().to_string();
    ok(w.author(&["claim", "ETHER", "--out", &dir]));
    let role = w.author_dir().join("ETHER.role.json");
    let role = role.to_str().unwrap();
    let pubkey = w.author_dir().join("ETHER.pub.pem");
    let claim = [
        "import",
        "ETHER",
        role,
        "--claim-key",
        pubkey.to_str().unwrap(),
    ];
    let file = w.p("targets.prepared.json");
    let file = file.to_str().unwrap();

    let before = ts();
    let out = ok(pause(&[&claim[..], &["--prepare-targets", file]].concat()));
    assert!(out.contains("nothing published"), "{out}");
    assert_eq!(ts(), before);
    holder(file, "targets-1.pem");
    let signed = [&claim[..], &["--targets-signed", file]].concat();
    fails(&pause(&signed), "has 1 of 2 signature(s)");
    assert_eq!(ts(), before);
    holder(file, "targets-2.pem");
    ok(pause(&signed));
    w.sign(&["timestamp"]);
    let status = ok(w.author(&["status", "ETHER"]));
    assert!(status.contains("your key signs it"), "{status}");

    // A release: no ceremony to hold.
    let tarball = w.author_dir().join("Acme-Mine-1.0.tar.gz");
    let bytes = marker_tarball("Acme-Mine-1.0", "Acme::Mine", "1.0", &w.p("built"));
    std::fs::write(&tarball, &bytes).unwrap();
    ok(w.author(&["release", "ETHER", tarball.to_str().unwrap()]));
    std::fs::write(w.mirror().join(DIR).join("Acme-Mine-1.0.tar.gz"), &bytes).unwrap();
    let release = ["import", "ETHER", role, "--prepare-targets", file];
    fails(&pause(&release), "nothing to sign offline");
    ok(w.import(&[]));

    // The revocation, the same way: ETHER's files are PAUSE's to sign again.
    let file = w.p("targets.revoke.json");
    let file = file.to_str().unwrap();
    ok(pause(&["revoke", "ETHER", "--prepare-targets", file]));
    holder(file, "targets-1.pem");
    holder(file, "targets-2.pem");
    ok(pause(&["revoke", "ETHER", "--targets-signed", file]));
    w.sign(&["timestamp"]);
    fails(&w.author(&["status", "ETHER"]), "NOT your key");
}
