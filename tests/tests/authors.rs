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

    /// `cpantuf-sign author import ETHER ETHER.role.json ARGS...`, not asserted.
    fn import(&self, args: &[&str]) -> Output {
        run(Command::new(bin("cpantuf-sign"))
            .args(["author", "import", "ETHER"])
            .arg(self.author_dir().join("ETHER.role.json"))
            .args(args)
            .arg("--config")
            .arg(self.p("signer.json")))
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
    w.sign(&[
        "author",
        "import",
        "ETHER",
        role_file.to_str().unwrap(),
        "--claim-key",
        pubkey.to_str().unwrap(),
    ]);

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
