//! End-to-end tests: real processes on 127.0.0.1.
//!
//! * the whole chain: `cpantuf-sign` signs the sample mirror with the demo
//!   keys, `cpantuf-mirror` serves it over TLS (test CA), `cpantuf install`
//!   runs the real cpanm, which installs Moo (four distributions, two
//!   authors);
//! * CPAN.pm installs Try::Tiny through `cpantuf serve`;
//! * one test per attack, with a malicious mirror ([`EvilMirror`]) between
//!   the signed repository and the client: each fails (or fails over) with a
//!   message naming what happened, and the client's trusted metadata is left
//!   exactly as it was.

use cpantuf_tests::{
    bin, marker_tarball, run, run_ok, snapshot_dir, without_proxies, workspace_root, EvilMirror,
    HostileProxy, Lie,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

const MOO: &str = "authors/id/H/HA/HAARG/Moo-2.005005.tar.gz";
const MOO_SHA256: &str = "fb5a2952649faed07373f220b78004a9c6aba387739133740c1770e9b1f4b108";

fn moo_twin() -> String {
    format!("authors/id/H/HA/HAARG/{MOO_SHA256}.Moo-2.005005.tar.gz")
}

/// A signed copy of the sample mirror, with its signer configuration.
struct Repo {
    dir: tempfile::TempDir,
}

fn keys() -> PathBuf {
    cpantuf_tests::example_keys()
}

fn copy_tree(from: &Path, to: &Path) {
    cpantuf_tests::copy_tree(from, to);
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror");
        copy_tree(
            &workspace_root().join("sample-mirror/authors"),
            &mirror.join("authors"),
        );
        copy_tree(
            &workspace_root().join("sample-mirror/modules"),
            &mirror.join("modules"),
        );
        cpantuf_tests::sign_new_repository(&mirror, &dir.path().join("signer.json"));
        Repo { dir }
    }

    fn mirror(&self) -> PathBuf {
        self.dir.path().join("mirror")
    }

    fn tuf(&self, name: &str) -> PathBuf {
        self.mirror().join("tuf").join(name)
    }

    fn sign(&self, args: &[&str]) -> Output {
        run_ok(
            Command::new(bin("cpantuf-sign"))
                .args(args)
                .arg("--config")
                .arg(self.dir.path().join("signer.json")),
        )
    }

    /// Re-signs with author roles split into hash bins above `n` files
    /// (ADR 0006; the sample authors have 2 and 4 files).
    fn bin_authors_above(&self, n: usize) {
        let cfg = self.dir.path().join("signer.json");
        let mut conf: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
        conf["author_bins_above"] = n.into();
        std::fs::write(&cfg, conf.to_string()).unwrap();
        cpantuf_tests::sign_publish(&cfg);
        assert!(self.tuf("1.author-ETHER-bin-0.json").is_file());
    }

    /// Saves a copy of a metadata file as it is now (for replay attacks).
    fn save(&self, name: &str) -> PathBuf {
        let to = self.dir.path().join(format!("saved-{name}"));
        std::fs::copy(self.tuf(name), &to).unwrap();
        to
    }
}

/// A client home initialised with the repository's root.
struct Client {
    home: tempfile::TempDir,
}

impl Client {
    fn new(repo: &Repo, mirrors: &[String], extra: &[&str]) -> Client {
        let home = tempfile::tempdir().unwrap();
        run_ok(
            Command::new(bin("cpantuf"))
                .arg("--home")
                .arg(home.path())
                .arg("init")
                .args(mirrors)
                .arg("--root")
                .arg(repo.tuf("1.root.json"))
                .args(extra),
        );
        Client { home }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(bin("cpantuf"));
        c.arg("--home")
            .arg(self.home.path())
            .env_remove("CPANTUF_HOME");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run(self.cmd().args(args))
    }

    fn metadata(&self) -> Vec<(PathBuf, Vec<u8>)> {
        snapshot_dir(&self.home.path().join("metadata"))
            .into_iter()
            .filter(|(p, _)| p.extension().is_some_and(|e| e == "json"))
            .collect()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the command failed, its message names the attack, and the
/// trusted metadata is byte-for-byte what it was.
fn assert_refused(out: &Output, client: &Client, before: &[(PathBuf, Vec<u8>)], words: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "must fail, but succeeded:\n{err}");
    assert!(
        words.iter().any(|w| err.contains(w)),
        "message should name the attack ({words:?}):\n{err}"
    );
    assert_eq!(
        digest(&client.metadata()),
        digest(before),
        "trusted metadata changed after a refused update"
    );
}

/// Like [`assert_refused`] when other, valid metadata (a newer timestamp)
/// was legitimately accepted first: only the refused role must be unchanged.
fn assert_refused_file(out: &Output, client: &Client, file: &str, before: &[u8], words: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "must fail, but succeeded:\n{err}");
    assert!(
        words.iter().any(|w| err.contains(w)),
        "message should name the attack ({words:?}):\n{err}"
    );
    let now = std::fs::read(client.home.path().join("metadata").join(file)).unwrap();
    assert!(now == before, "{file} changed after a refused update");
}

/// File names with the sha256 of their bytes (readable assertion output).
fn digest(v: &[(PathBuf, Vec<u8>)]) -> Vec<(PathBuf, String)> {
    v.iter()
        .map(|(p, b)| (p.clone(), cpantuf_core::target::sha256_hex(b)))
        .collect()
}

// ---------------------------------------------------------------- the chain

struct TlsMirror {
    child: Child,
    port: u16,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for TlsMirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(args: &[&str], dir: &Path) {
    let out = run(Command::new("openssl").args(args).current_dir(dir));
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_tls_mirror(root: &Path) -> TlsMirror {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=cpantuf test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        d,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        d,
    );
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
        d,
    );
    let port = free_port();
    let child = Command::new(bin("cpantuf-mirror"))
        .args(["--log", "warn", "serve", "--access-log", "off"])
        .arg("--root")
        .arg(root)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--cert")
        .arg(d.join("server.pem"))
        .arg("--key")
        .arg(d.join("server.key"))
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    TlsMirror {
        child,
        port,
        ca: d.join("ca.pem"),
        _dir: dir,
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn signer_to_tls_mirror_to_client_cpanm_installs_moo() {
    assert!(
        have("cpanm"),
        "cpanm missing: run scripts/setup-test-deps.sh"
    );
    let repo = Repo::new();
    let tls = start_tls_mirror(&repo.mirror());
    let url = format!("https://127.0.0.1:{}/", tls.port);
    let client = Client::new(&repo, &[url], &["--ca-cert", tls.ca.to_str().unwrap()]);
    let prefix = tempfile::tempdir().unwrap();
    let out = run_ok(
        client
            .cmd()
            .args(["install", "Moo", "--", "-L"])
            .arg(prefix.path())
            .args(["--notest", "--quiet"]),
    );
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(log.contains("4 distributions installed"), "{log}");
    for (dist, role) in [
        ("H/HA/HAARG/Moo-2.005005.tar.gz", "author-HAARG"),
        ("H/HA/HAARG/Role-Tiny-2.002004.tar.gz", "author-HAARG"),
        ("H/HA/HAARG/Sub-Quote-2.006008.tar.gz", "author-HAARG"),
        (
            "E/ET/ETHER/Class-Method-Modifiers-2.14.tar.gz",
            "author-ETHER",
        ),
    ] {
        assert!(
            log.contains(&format!("authors/id/{dist}  [{role}]")),
            "{dist} not served verified by {role}:\n{log}"
        );
    }
    let perl = run_ok(
        Command::new("perl")
            .arg(format!("-I{}", prefix.path().join("lib/perl5").display()))
            .args(["-e", "use Moo 2; print qq{$Moo::VERSION\\n}"]),
    );
    assert_eq!(String::from_utf8_lossy(&perl.stdout).trim(), "2.005005");
}

/// CPAN.pm checks the tarball against the author directory's CHECKSUMS,
/// which `cpantuf serve` generates from verified metadata: here ETHER's
/// role is split into hash bins, so the CHECKSUMS gathers every bin.
#[test]
fn cpan_pm_installs_try_tiny_through_serve() {
    let repo = Repo::new();
    repo.bin_authors_above(1);
    let honest = EvilMirror::start(&repo.mirror());
    let client = Client::new(&repo, &[honest.url()], &[]);
    let port = free_port();
    let mut serve = client
        .cmd()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let work = tempfile::tempdir().unwrap();
    let cpan_home = work.path().join(".cpan");
    let inst = work.path().join("inst");
    write_cpan_config(
        &cpan_home,
        &inst,
        &format!("http://127.0.0.1:{port}/"),
        &[("pushy_https", "0".into()), ("http_proxy", String::new())],
    );
    // Try::Tiny may already be in the system perl (libwww-perl needs it):
    // force makes CPAN.pm fetch, check and install it regardless.
    let out = run(Command::new("perl")
        .env("HOME", work.path())
        .env("PERL_MM_USE_DEFAULT", "1")
        .env("PERL5LIB", &cpan_home)
        .args([
            "-MCPAN::MyConfig",
            "-MCPAN",
            "-e",
            "CPAN::Shell->force(q[install], q[Try::Tiny])",
        ]));
    let _ = serve.kill();
    let _ = serve.wait();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        log.contains("Checksum for") && log.contains("Try-Tiny-0.31.tar.gz ok"),
        "CHECKSUMS not verified:\n{log}"
    );
    assert!(
        inst.join("lib/perl5/Try/Tiny.pm").is_file(),
        "Try::Tiny not installed:\n{log}"
    );
}

/// Writes a complete, non-interactive CPAN.pm configuration into
/// `cpan_home/CPAN/MyConfig.pm`, installing under `inst`, with `overrides`
/// (pushy_https, proxies) and the given urllist.
fn write_cpan_config(cpan_home: &Path, inst: &Path, urllist: &str, overrides: &[(&str, String)]) {
    std::fs::create_dir_all(cpan_home.join("CPAN")).unwrap();
    let mut cfg = String::from("$CPAN::Config = {\n");
    let h = |p: &str| cpan_home.join(p).display().to_string();
    for (k, v) in [
        ("cpan_home", cpan_home.display().to_string()),
        ("build_dir", h("build")),
        ("keep_source_where", h("sources")),
        ("prefs_dir", h("prefs")),
        ("histfile", h("histfile")),
        ("make", "make".into()),
        ("tar", "tar".into()),
        ("gzip", "gzip".into()),
        ("shell", "/bin/sh".into()),
        ("pager", "cat".into()),
        ("prerequisites_policy", "follow".into()),
        ("check_sigs", "0".into()),
        ("connect_to_internet_ok", "1".into()),
        ("auto_commit", "0".into()),
        ("build_requires_install_policy", "yes".into()),
        ("index_expire", "1".into()),
        ("inactivity_timeout", "0".into()),
        ("use_sqlite", "0".into()),
        ("cache_metadata", "0".into()),
        ("scan_cache", "never".into()),
        ("makepl_arg", format!("INSTALL_BASE={}", inst.display())),
        ("mbuildpl_arg", format!("--install_base {}", inst.display())),
        ("make_install_arg", String::new()),
        ("mbuild_install_arg", String::new()),
        ("make_arg", String::new()),
        ("mbuild_arg", String::new()),
        ("build_cache", "10".into()),
        ("halt_on_failure", "1".into()),
        ("recommends_policy", "0".into()),
        ("suggests_policy", "0".into()),
        ("test_report", "0".into()),
        ("yaml_module", "YAML".into()),
        ("load_module_verbosity", "none".into()),
        ("tar_verbosity", "none".into()),
        ("colorize_output", "0".into()),
        ("ftp_proxy", String::new()),
        ("no_proxy", String::new()),
        ("allow_installing_outdated_dists", "yes".into()),
        ("ftp_passive", "1".into()),
        ("mbuild_install_build_command", "./Build".into()),
        ("trust_test_report_history", "0".into()),
        ("term_is_latin", "1".into()),
        ("commandnumber_in_prompt", "0".into()),
        ("perl5lib_verbosity", "none".into()),
        ("yaml_load_code", "0".into()),
        ("version_timeout", "15".into()),
        ("allow_installing_module_downgrades", "yes".into()),
    ]
    .into_iter()
    .chain(overrides.iter().cloned())
    {
        cfg.push_str(&format!("  '{k}' => q[{v}],\n"));
    }
    cfg.push_str(&format!(
        "  'urllist' => [q[{urllist}]],\n}};\n1;\n__END__\n"
    ));
    std::fs::write(cpan_home.join("CPAN/MyConfig.pm"), cfg).unwrap();
}

// ---------------------------------------------------------------- attacks

/// A signed repository, an evil mirror in front of it, and a client that
/// has already trusted the current state.
fn attack_setup() -> (Repo, EvilMirror, Client) {
    let repo = Repo::new();
    let evil = EvilMirror::start(&repo.mirror());
    let client = Client::new(&repo, &[evil.url()], &[]);
    run_ok(client.cmd().arg("refresh"));
    (repo, evil, client)
}

#[test]
fn replayed_timestamp_is_refused() {
    let (repo, evil, client) = attack_setup();
    let old = repo.save("timestamp.json");
    repo.sign(&["timestamp"]);
    run_ok(client.cmd().arg("refresh"));
    let before = client.metadata();
    evil.lie("tuf/timestamp.json", Lie::File(old));
    let out = client.run(&["refresh"]);
    assert_refused(&out, &client, &before, &["rollback refused"]);
}

#[test]
fn rolled_back_snapshot_is_refused() {
    let (repo, evil, client) = attack_setup();
    let v1 = repo.save("1.snapshot.json");
    repo.sign(&["index"]);
    run_ok(client.cmd().arg("refresh"));
    repo.sign(&["index"]);
    let snapshot_before = std::fs::read(client.home.path().join("metadata/snapshot.json")).unwrap();
    // The new timestamp names snapshot 3; the mirror serves snapshot 1 under that name.
    evil.lie("tuf/3.snapshot.json", Lie::File(v1));
    let out = client.run(&["refresh"]);
    assert_refused_file(
        &out,
        &client,
        "snapshot.json",
        &snapshot_before,
        // The timestamp signs the snapshot's hash, so the swap is caught there.
        &["rollback refused", "mix-and-match refused", "hash mismatch"],
    );
}

#[test]
fn expired_metadata_freeze_is_refused() {
    assert!(
        have("faketime"),
        "faketime missing: run scripts/setup-test-deps.sh"
    );
    let (_repo, _evil, client) = attack_setup();
    let before = client.metadata();
    // The mirror keeps serving the same (validly signed) metadata; three days
    // later it has expired: a frozen mirror.
    let out = run(Command::new("faketime")
        .arg("+3 days")
        .arg(bin("cpantuf"))
        .arg("--home")
        .arg(client.home.path())
        .arg("refresh"));
    assert_refused(&out, &client, &before, &["expired"]);
}

#[test]
fn tampered_tarball_is_refused() {
    let (_repo, evil, client) = attack_setup();
    let mut bytes = std::fs::read(_repo.mirror().join(MOO)).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    evil.lie(&moo_twin(), Lie::Bytes(bytes));
    run_ok(client.cmd().args(["resolve", "Moo"])); // loads and trusts the roles on Moo's path
    let before = client.metadata();
    let out = client.run(&["fetch", "Moo"]);
    assert_refused(&out, &client, &before, &["hash mismatch"]);
    assert!(
        !client.home.path().join("cache").join(MOO).exists(),
        "tampered bytes reached the cache"
    );
}

#[test]
fn tampered_tarball_makes_cpanm_install_fail() {
    assert!(
        have("cpanm"),
        "cpanm missing: run scripts/setup-test-deps.sh"
    );
    let (repo, evil, client) = attack_setup();
    evil.lie(&moo_twin(), Lie::Bytes(b"#!/bin/sh\necho owned\n".to_vec()));
    let prefix = tempfile::tempdir().unwrap();
    let out = run(client
        .cmd()
        .args(["install", "Moo", "--", "-L"])
        .arg(prefix.path())
        .args(["--notest", "--quiet"]));
    assert!(!out.status.success(), "install must fail");
    assert!(
        !prefix.path().join("lib/perl5/Moo.pm").exists(),
        "Moo was installed from tampered bytes"
    );
    drop(repo);
}

/// PAUSE's online index key is compromised: 02packages, validly re-signed,
/// points Moo at a tarball in ETHER's directory. ETHER's role never signed
/// such a file, so the client refuses it.
#[test]
fn index_pointing_moo_at_another_authors_tarball_is_refused() {
    use cpantuf_core::cpan::packages::{PackageEntry, Packages};
    use cpantuf_core::cpan::DistPath;
    let (repo, _evil, client) = attack_setup();
    let mirror = repo.mirror();
    let idx_path = mirror.join("modules/02packages.details.txt.gz");
    let idx = Packages::read_gz(std::fs::File::open(&idx_path).unwrap()).unwrap();
    let hijacked = DistPath::new("E/ET/ETHER/Moo-2.005005.tar.gz").unwrap();
    let entries: Vec<PackageEntry> = idx
        .entries()
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if e.package.as_str() == "Moo" {
                e.dist = hijacked.clone();
            }
            e
        })
        .collect();
    let evil_idx = Packages::new(idx.header().clone(), entries).unwrap();
    std::fs::write(&idx_path, evil_idx.to_gz_bytes()).unwrap();
    // The attacker also places the bytes where the index points (unsigned).
    std::fs::copy(
        mirror.join(MOO),
        mirror.join("authors/id/E/ET/ETHER/Moo-2.005005.tar.gz"),
    )
    .unwrap();
    repo.sign(&["index"]);
    let out = client.run(&["fetch", "Moo"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "must fail:\n{err}");
    assert!(
        err.contains("not found in any role allowed to sign it"),
        "{err}"
    );
    assert!(
        !client
            .home
            .path()
            .join("cache/authors/id/E/ET/ETHER/Moo-2.005005.tar.gz")
            .exists(),
        "unsigned tarball reached the cache"
    );
}

#[test]
fn mix_and_match_of_snapshot_and_targets_roles_is_refused() {
    let (repo, evil, client) = attack_setup();
    let old_index = repo.save("1.index.json");
    repo.sign(&["index"]);
    let before = client.metadata();
    // New snapshot names index v2; the mirror serves v1 under that name.
    evil.lie("tuf/2.index.json", Lie::File(old_index));
    let out = client.run(&["fetch", "modules/02packages.details.txt.gz"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("mix-and-match refused"),
        "{}",
        stderr(&out)
    );
    // The new top-level metadata verified and was stored; the refused index
    // role was not.
    let after = client.metadata();
    let index_after: Vec<_> = after
        .iter()
        .filter(|(p, _)| p.to_str() == Some("index.json"))
        .collect();
    let index_before: Vec<_> = before
        .iter()
        .filter(|(p, _)| p.to_str() == Some("index.json"))
        .collect();
    assert_eq!(index_after, index_before, "refused index role was stored");
}

#[test]
fn endless_data_is_refused() {
    let (_repo, evil, client) = attack_setup();
    let before = client.metadata();
    evil.lie("tuf/timestamp.json", Lie::Endless);
    let out = client.run(&["refresh"]);
    assert_refused(&out, &client, &before, &["endless-data"]);
}

#[test]
fn slow_retrieval_is_refused() {
    let (_repo, evil, client) = attack_setup();
    evil.lie(&moo_twin(), Lie::Drip(Duration::from_millis(20)));
    run_ok(client.cmd().args(["resolve", "Moo"]));
    let before = client.metadata();
    let started = std::time::Instant::now();
    let out = client.run(&["fetch", "Moo"]);
    assert_refused(&out, &client, &before, &["slow-retrieval", "too slow"]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "gave up too late: {:?}",
        started.elapsed()
    );
    assert!(!client.home.path().join("cache").join(MOO).exists());
}

#[test]
fn one_malicious_mirror_of_two_is_skipped() {
    let repo = Repo::new();
    let evil = EvilMirror::start(&repo.mirror());
    let honest = EvilMirror::start(&repo.mirror());
    evil.lie(&moo_twin(), Lie::Bytes(b"not moo".to_vec()));
    let client = Client::new(&repo, &[evil.url(), honest.url()], &[]);
    let out = run_ok(client.cmd().args(["fetch", "Moo"]));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("mirror {} skipped", evil.url())) && err.contains("length"),
        "{err}"
    );
    let file = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let got = cpantuf_core::target::sha256_hex(&std::fs::read(file).unwrap());
    assert_eq!(got, MOO_SHA256);
    assert!(honest.requests().iter().any(|r| r == &moo_twin()));
}

// ------------------------------------------------------ crash consistency

fn timestamp_version(repo: &Repo) -> u64 {
    let bytes = std::fs::read(repo.tuf("timestamp.json")).unwrap();
    cpantuf_core::metadata::Envelope::<cpantuf_core::metadata::Timestamp>::from_bytes(&bytes)
        .unwrap()
        .unverified()
        .version
        .get()
}

/// Audits the repository from the original root. Returns the problems
/// listed (empty when it verifies completely).
fn audit(repo: &Repo, trusted_root: &Path) -> Vec<String> {
    let out = run(Command::new(bin("cpantuf-sign"))
        .arg("verify")
        .arg("--mirror")
        .arg(repo.mirror())
        .arg("--root")
        .arg(trusted_root));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let problems: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("PROBLEM"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        out.status.success(),
        problems.is_empty(),
        "verify exit status and report disagree:\n{text}{}",
        stderr(&out)
    );
    problems
}

/// SIGKILL `cpantuf-sign` at random points of incremental (`add`) and full
/// (`publish`) publishing. After every kill the repository must verify
/// completely from the trusted root, as the old state (timestamp version
/// unchanged; the only finding may be the upload not yet signed) or the new
/// one (version + 1, nothing to report); a retry then publishes cleanly.
/// `CPANTUF_CRASH_TRIALS` sets the number of trials (default 200).
#[test]
fn crash_consistency_sigkill_during_publishing() {
    let trials: u64 = std::env::var("CPANTUF_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let repo = Repo::new();
    let trusted_root = repo.save("1.root.json");
    let k = |n: &str| keys().join(n).to_str().unwrap().to_owned();
    let cfg = repo.dir.path().join("signer.json");
    let sign_cmd = |full: bool, upload: &Path| {
        let mut c = Command::new(bin("cpantuf-sign"));
        if full {
            c.arg("publish")
                .args(["--key", &k("targets-1.pem"), "--key", &k("targets-2.pem")]);
        } else {
            c.arg("add").arg(upload);
        }
        c.arg("--config")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    // How long an undisturbed run takes, to spread kill points over it.
    let probe = repo
        .mirror()
        .join("authors/id/E/ET/ETHER/Probe-0.01.tar.gz");
    std::fs::write(&probe, b"probe").unwrap();
    let t = std::time::Instant::now();
    assert!(sign_cmd(false, &probe).status().unwrap().success());
    let span = t.elapsed().as_micros().max(1000) as u64 * 3 / 2;
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let (mut old_states, mut new_states) = (0u32, 0u32);
    for i in 0..trials {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let full = i % 4 == 3;
        let upload = repo
            .mirror()
            .join(format!("authors/id/E/ET/ETHER/Crash-{i}.tar.gz"));
        std::fs::write(&upload, format!("upload {i}\n")).unwrap();
        let before = timestamp_version(&repo);
        let mut child = sign_cmd(full, &upload).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(rng % span));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let after = timestamp_version(&repo);
        let problems = audit(&repo, &trusted_root);
        let pending = format!("PROBLEM authors/id/E/ET/ETHER/Crash-{i}.tar.gz:");
        if after == before {
            old_states += 1;
            assert!(
                problems.iter().all(|p| p.starts_with(&pending)),
                "trial {i}: old state does not verify: {problems:?}"
            );
        } else {
            new_states += 1;
            assert_eq!(after, before + 1, "trial {i}: timestamp jumped");
            assert!(
                problems.is_empty(),
                "trial {i}: new state does not verify: {problems:?}"
            );
        }
        // The operator retries; the lock died with the process.
        assert!(
            sign_cmd(false, &upload).status().unwrap().success(),
            "trial {i}: retry failed"
        );
        assert!(
            audit(&repo, &trusted_root).is_empty(),
            "trial {i}: after retry"
        );
    }
    eprintln!("{trials} SIGKILL trials: {old_states} left the old state, {new_states} the new one");
    assert_eq!(u64::from(old_states + new_states), trials);
}

/// Trust bootstrap by pin: a root fetched from the mirror is trusted only
/// if its sha256 is the pinned one.
#[test]
fn init_trusts_a_fetched_root_only_when_its_sha256_matches_the_pin() {
    let repo = Repo::new();
    let mirror = EvilMirror::start(&repo.mirror());
    let good = cpantuf_core::target::sha256_hex(&std::fs::read(repo.tuf("1.root.json")).unwrap());
    let home = tempfile::tempdir().unwrap();
    let init = |pin: &str| {
        run(Command::new(bin("cpantuf"))
            .arg("--home")
            .arg(home.path())
            .args(["init", &mirror.url(), "--root-sha256", pin]))
    };
    let bad = init(&"0".repeat(64));
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("refusing to trust an unpinned root"),
        "{}",
        stderr(&bad)
    );
    assert!(!home.path().join("metadata/root.json").exists());
    run_ok(
        Command::new(bin("cpantuf"))
            .arg("--home")
            .arg(home.path())
            .args(["init", &mirror.url(), "--root-sha256", &good.to_uppercase()]),
    );
    let stored = std::fs::read(home.path().join("metadata/root.json")).unwrap();
    assert_eq!(cpantuf_core::target::sha256_hex(&stored), good);
}

// ------------------------------------------- clients that must not fall back

const ROLE_TINY: &str = "authors/id/H/HA/HAARG/Role-Tiny-2.002004.tar.gz";

/// A `cpantuf` command with no proxy variable but those the test sets, and
/// `HOME` (where cpanm, carton and CPAN.pm keep their caches) in `home`.
fn clean_cmd(client: &Client, home: &Path) -> Command {
    let mut c = client.cmd();
    without_proxies(&mut c)
        .env("HOME", home)
        .env_remove("PERL_CPANM_HOME")
        .env_remove("PERL_CPANM_OPT")
        .env_remove("PERL_CARTON_MIRROR");
    c
}

/// Points every proxy variable a downloader reads at `proxy`.
fn through_proxy<'a>(cmd: &'a mut Command, proxy: &HostileProxy) -> &'a mut Command {
    for v in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env(v, proxy.url());
    }
    cmd
}

/// The user's environment names a hostile proxy that answers the request
/// for Role-Tiny's tarball with its own (whose Makefile.PL leaves a
/// marker). With each of cpanm's four downloaders, `cpantuf install` must
/// reach the verifying mirror directly and install the signed Role::Tiny.
#[test]
fn hostile_proxy_cannot_swap_the_tarball_cpanm_installs() {
    assert!(
        have("cpanm"),
        "cpanm missing: run scripts/setup-test-deps.sh"
    );
    let repo = Repo::new();
    let honest = EvilMirror::start(&repo.mirror());
    let client = Client::new(&repo, &[honest.url()], &[]);
    let proxy = HostileProxy::start();
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("owned");
    proxy.swap(
        "/Role-Tiny-2.002004.tar.gz",
        marker_tarball("Role-Tiny-2.002004", "Role::Tiny", "6.66", &marker),
    );
    let backends: [(&str, &[&str]); 4] = [
        ("lwp", &[]),
        ("wget", &["--no-lwp"]),
        ("curl", &["--no-lwp", "--no-wget"]),
        ("http-tiny", &["--no-lwp", "--no-wget", "--no-curl"]),
    ];
    for (backend, flags) in backends {
        let prefix = work.path().join(backend);
        let out = run(through_proxy(&mut clean_cmd(&client, work.path()), &proxy)
            .args(["install", "Role::Tiny", "--", "-L"])
            .arg(&prefix)
            .args(["--notest", "--reinstall"])
            .args(flags));
        assert!(
            !marker.exists(),
            "{backend}: code from the proxy's tarball ran:\n{}",
            stderr(&out)
        );
        assert!(
            out.status.success(),
            "{backend}: install failed:\n{}",
            stderr(&out)
        );
        let pm = std::fs::read_to_string(prefix.join("lib/perl5/Role/Tiny.pm")).unwrap();
        assert!(
            pm.contains("2.002004"),
            "{backend}: not the signed Role::Tiny"
        );
    }
    // cpantuf's own (verified) fetches may tunnel through the proxy; cpanm's
    // plain-HTTP requests for the verifying mirror must not go near it.
    let cpanm_requests: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with(&format!("CONNECT 127.0.0.1:{}", honest.port())))
        .collect();
    assert!(
        cpanm_requests.is_empty(),
        "cpanm sent requests through the user's proxy: {cpanm_requests:?}"
    );
}

/// `cpantuf install URL|PATH|git` used to run cpanm on it, unverified, and
/// still report every file as verified. Such arguments are refused, before
/// or after `--`, and nothing from them runs.
#[test]
fn install_refuses_modules_given_as_urls_paths_or_git() {
    let (repo, evil, client) = attack_setup();
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("owned");
    let tarball = marker_tarball("Evil-1.0", "Evil", "1.0", &marker);
    std::fs::write(repo.mirror().join("Evil-1.0.tar.gz"), &tarball).unwrap();
    std::fs::write(work.path().join("Evil-1.0.tar.gz"), &tarball).unwrap();
    run_ok(
        Command::new("tar")
            .args(["xzf", "Evil-1.0.tar.gz"])
            .current_dir(work.path()),
    );
    let local = work.path().join("Evil-1.0.tar.gz").display().to_string();
    let cases: Vec<(Vec<String>, Vec<String>)> = [
        format!("{}Evil-1.0.tar.gz", evil.url()),
        format!("{}{ROLE_TINY}", evil.url()),
        format!("file://{local}"),
        local.clone(),
        "Evil-1.0.tar.gz".into(),
        "./Evil-1.0".into(),
        "Evil-1.0".into(),
        "git://127.0.0.1/evil.git".into(),
        "https://127.0.0.1/evil.git@main".into(),
    ]
    .into_iter()
    .map(|a| (vec![a], vec![]))
    .chain([(vec!["Role::Tiny".into()], vec!["./Evil-1.0".into()])])
    .collect();
    for (modules, extra) in cases {
        let prefix = work.path().join("prefix");
        let out = run(clean_cmd(&client, work.path())
            .current_dir(work.path())
            .arg("install")
            .args(&modules)
            .args(["--", "-L"])
            .arg(&prefix)
            .arg("--notest")
            .args(&extra));
        let err = stderr(&out);
        assert!(
            !out.status.success(),
            "{modules:?} {extra:?} was installed:\n{err}"
        );
        assert!(
            !marker.exists(),
            "{modules:?} {extra:?}: unverified code ran:\n{err}"
        );
        assert!(
            err.contains("cpantuf cannot verify"),
            "{modules:?} {extra:?}:\n{err}"
        );
        assert!(!prefix.exists(), "{modules:?} {extra:?}: cpanm ran:\n{err}");
    }
}

/// cpanm options that add or change where it looks (another mirror, another
/// index, metacpan, cpanmetadb), abbreviated or bundled as cpanm's option
/// parser allows, are refused before cpanm starts.
#[test]
fn install_refuses_cpanm_options_that_add_sources() {
    let (_repo, evil, client) = attack_setup();
    let work = tempfile::tempdir().unwrap();
    let index = work.path().join("02packages.details.txt");
    std::fs::write(&index, "").unwrap();
    let url = evil.url();
    let idx = index.display().to_string();
    let cases: Vec<Vec<String>> = vec![
        vec!["--mirror".into(), url.clone()],
        vec![format!("--mirror={url}")],
        vec!["--mirr".into(), url.clone()],
        vec!["-M".into(), url.clone()],
        vec![format!("-M{url}")],
        vec!["-nM".into(), url.clone()],
        vec!["--from".into(), url.clone()],
        vec!["--mirror-index".into(), idx],
        vec!["--cascade-search".into()],
        vec!["--no-mirror-only".into()],
        vec!["--metacpan".into()],
        vec!["--cpanmetadb".into(), url.clone()],
        vec!["--dev".into()],
    ];
    for opts in cases {
        let prefix = work.path().join("prefix");
        let out = run(clean_cmd(&client, work.path())
            .args(["install", "Role::Tiny", "--", "-L"])
            .arg(&prefix)
            .arg("--notest")
            .args(&opts));
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{opts:?} not refused as a usage error:\n{err}"
        );
        assert!(err.contains("cpanm option"), "{opts:?}:\n{err}");
        assert!(!prefix.exists(), "{opts:?}: cpanm ran:\n{err}");
    }
}

/// The mirror tampers with a newly signed index. cpanm must not fall back
/// on the copy it cached from an earlier install through the same port, and
/// the last word is cpantuf's: what was refused and why, once, exit 1.
#[test]
fn refused_index_is_the_last_word_of_install_not_a_stale_cpanm_copy() {
    use cpantuf_core::cpan::packages::Packages;
    assert!(
        have("cpanm"),
        "cpanm missing: run scripts/setup-test-deps.sh"
    );
    let (repo, evil, client) = attack_setup();
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let prefix = work.path().join("prefix");
    let install = || {
        run(clean_cmd(&client, work.path())
            .args(["install", "--listen", &format!("127.0.0.1:{port}")])
            .args(["Role::Tiny", "--", "-L"])
            .arg(&prefix)
            .args(["--notest", "--reinstall"]))
    };
    let first = install();
    assert!(first.status.success(), "{}", stderr(&first));
    let idx_path = repo.mirror().join("modules/02packages.details.txt.gz");
    let idx = Packages::read_gz(std::fs::File::open(&idx_path).unwrap()).unwrap();
    let fewer: Vec<_> = idx
        .entries()
        .iter()
        .filter(|e| e.package.as_str() != "Try::Tiny")
        .cloned()
        .collect();
    let bytes = Packages::new(idx.header().clone(), fewer)
        .unwrap()
        .to_gz_bytes();
    std::fs::write(&idx_path, &bytes).unwrap();
    repo.sign(&["index"]);
    let twin = format!(
        "modules/{}.02packages.details.txt.gz",
        cpantuf_core::target::sha256_hex(&bytes)
    );
    evil.lie(&twin, Lie::Bytes(b"not the signed index".to_vec()));
    let second = install();
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(1), "must fail:\n{err}");
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        last.starts_with("cpantuf: refused modules/02packages.details.txt.gz")
            && (last.contains("length") || last.contains("hash")),
        "last line must say what was refused and why:\n{err}"
    );
    assert!(
        !err.contains("WARN") && !err.contains('\u{1b}'),
        "tracing output:\n{err}"
    );
    let reason_lines = err
        .lines()
        .filter(|l| l.contains("not the signed") || l.contains("signed length"))
        .count();
    assert!(reason_lines <= 1, "the reason is repeated:\n{err}");
}

/// One mirror, one failure: one line, leading with the reason.
#[test]
fn a_single_mirror_failure_is_one_line_leading_with_the_reason() {
    let (_repo, evil, client) = attack_setup();
    evil.lie(&moo_twin(), Lie::Bytes(b"not moo".to_vec()));
    run_ok(client.cmd().args(["resolve", "Moo"]));
    let out = client.run(&["fetch", "Moo"]);
    let err = stderr(&out);
    assert!(!out.status.success());
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{err}");
    assert!(
        lines[0].starts_with("cpantuf: error: target authors/id/H/HA/HAARG/Moo-2.005005.tar.gz")
            && lines[0].contains("length")
            && lines[0].contains(&evil.url()),
        "{err}"
    );
}

/// `cpantuf serve` used to hold the home's lock for its whole life: any
/// other command on the same home hung without a word.
#[test]
fn serve_does_not_block_other_commands_on_the_same_home() {
    let repo = Repo::new();
    let honest = EvilMirror::start(&repo.mirror());
    let client = Client::new(&repo, &[honest.url()], &[]);
    let port = free_port();
    let mut serve = client
        .cmd()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    let mut resolve = client
        .cmd()
        .args(["resolve", "Moo"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = resolve.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = resolve.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = serve.kill();
    let _ = serve.wait();
    let status = status.expect("`cpantuf resolve` hung while `cpantuf serve` ran");
    assert!(status.success());
}

fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// `init --ca-cert ca.pem` stored the relative path: every later command
/// run elsewhere failed. A CA that has gone missing names the config file.
#[test]
fn relative_ca_cert_given_to_init_works_from_another_directory() {
    let repo = Repo::new();
    let tls = start_tls_mirror(&repo.mirror());
    let url = format!("https://127.0.0.1:{}/", tls.port);
    let home = tempfile::tempdir().unwrap();
    let setup = tempfile::tempdir().unwrap();
    std::fs::copy(&tls.ca, setup.path().join("ca.pem")).unwrap();
    let cpantuf = |dir: &Path, args: &[&str]| {
        run(Command::new(bin("cpantuf"))
            .arg("--home")
            .arg(home.path())
            .args(args)
            .current_dir(dir))
    };
    let root = repo.tuf("1.root.json").display().to_string();
    let init = cpantuf(
        setup.path(),
        &["init", &url, "--root", &root, "--ca-cert", "ca.pem"],
    );
    assert!(init.status.success(), "{}", stderr(&init));
    let elsewhere = cpantuf(Path::new("/"), &["refresh"]);
    assert!(elsewhere.status.success(), "{}", stderr(&elsewhere));
    std::fs::remove_file(setup.path().join("ca.pem")).unwrap();
    let missing = cpantuf(Path::new("/"), &["refresh"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("config.json"),
        "{}",
        stderr(&missing)
    );
}

/// The consistent-snapshot name a mirror serves a target under.
fn twin_of(repo: &Repo, path: &str) -> String {
    let bytes = std::fs::read(repo.mirror().join(path)).unwrap();
    let (dir, name) = path.rsplit_once('/').unwrap();
    format!("{dir}/{}.{name}", cpantuf_core::target::sha256_hex(&bytes))
}

/// Requests that are not cpantuf's own (verified) fetches tunnelled to
/// `mirror`.
fn foreign_requests(proxy: &HostileProxy, mirror: &EvilMirror) -> Vec<String> {
    let own = format!("CONNECT 127.0.0.1:{}", mirror.port());
    proxy
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with(&own))
        .collect()
}

/// Carton puts `http://cpan.metacpan.org/` and `http://backpan.perl.org/`
/// behind its mirror: a tarball the verifying mirror refuses, and a module
/// missing from the signed index, would be fetched again from there,
/// unverified. Through `cpantuf carton install` nothing is tried anywhere
/// else: neither the proxy in the user's environment nor cpantuf's
/// sinkhole (which would report any request for another host) sees an
/// attempt, and the last word is the refusal.
#[test]
fn carton_cannot_fall_back_past_a_refusal() {
    assert!(
        have("carton"),
        "carton missing: run scripts/setup-test-deps.sh"
    );
    let (repo, evil, client) = attack_setup();
    evil.lie(
        &twin_of(&repo, ROLE_TINY),
        Lie::Bytes(b"not role-tiny".to_vec()),
    );
    let proxy = HostileProxy::start();
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("cpanfile"),
        "requires 'Role::Tiny';\nrequires 'Not::In::The::Signed::Index';\n",
    )
    .unwrap();
    let out = run(through_proxy(&mut clean_cmd(&client, work.path()), &proxy)
        .current_dir(&project)
        .args(["carton", "install"]));
    let err = stderr(&out);
    let log = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
    assert!(!out.status.success(), "carton install must fail:\n{log}");
    assert!(
        !project.join("local/lib/perl5/Role/Tiny.pm").exists(),
        "Role::Tiny installed from elsewhere:\n{log}"
    );
    assert_eq!(
        foreign_requests(&proxy, &evil),
        Vec::<String>::new(),
        "{log}"
    );
    for host in ["metacpan", "backpan", "cpanmetadb"] {
        assert!(!log.contains(host), "carton tried {host}:\n{log}");
    }
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        last.starts_with(&format!("cpantuf: refused {ROLE_TINY}")),
        "last line must be the refusal:\n{log}"
    );
}

/// CPAN.pm with `pushy_https` on (its default) ignores `urllist` and
/// downloads from `https://cpan.org/`; its configuration may also name a
/// proxy. `cpantuf cpan` overrides both for the run: the user's hostile
/// proxy (configured, and in the environment) sees nothing, and the signed
/// Role::Tiny is installed.
#[test]
fn cpantuf_cpan_ignores_pushy_https_other_mirrors_and_proxies() {
    let repo = Repo::new();
    let honest = EvilMirror::start(&repo.mirror());
    let client = Client::new(&repo, &[honest.url()], &[]);
    let proxy = HostileProxy::start();
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("owned");
    proxy.swap(
        "Role-Tiny-2.002004.tar.gz",
        marker_tarball("Role-Tiny-2.002004", "Role::Tiny", "6.66", &marker),
    );
    let cpan_home = work.path().join(".cpan");
    let inst = work.path().join("inst");
    write_cpan_config(
        &cpan_home,
        &inst,
        &proxy.url(),
        &[
            ("pushy_https", "1".into()),
            ("http_proxy", proxy.url()),
            ("https_proxy", proxy.url()),
        ],
    );
    let out = run(through_proxy(&mut clean_cmd(&client, work.path()), &proxy)
        .env("PERL_MM_USE_DEFAULT", "1")
        .args(["cpan", "Role::Tiny"]));
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        !marker.exists(),
        "code from the proxy's tarball ran:\n{log}"
    );
    assert!(out.status.success(), "cpantuf cpan failed:\n{log}");
    let pm = std::fs::read_to_string(inst.join("lib/perl5/Role/Tiny.pm"))
        .unwrap_or_else(|e| panic!("Role::Tiny not installed ({e}):\n{log}"));
    assert!(pm.contains("2.002004"), "not the signed Role::Tiny");
    assert!(
        log.contains("Role-Tiny-2.002004.tar.gz ok"),
        "CHECKSUMS not checked:\n{log}"
    );
    assert_eq!(
        foreign_requests(&proxy, &honest),
        Vec::<String>::new(),
        "{log}"
    );
}

/// A bare HTTP/1.0 GET; returns the status and the body.
fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET /{path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// A long-running `cpantuf serve` used to refresh only when asked for the
/// index, so it went on serving tarballs under metadata that had expired.
/// Its clock (libfaketime, read from a file the test rewrites) jumps three
/// days while it runs: the next tarball request must be refused.
#[test]
fn serve_refuses_to_serve_under_metadata_that_has_expired_since() {
    let lib = Path::new("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1");
    assert!(
        lib.is_file(),
        "libfaketime missing: run scripts/setup-test-deps.sh"
    );
    let (_repo, _evil, client) = attack_setup();
    let work = tempfile::tempdir().unwrap();
    let clock = work.path().join("clock");
    std::fs::write(&clock, "+0d\n").unwrap();
    let port = free_port();
    let mut serve = client
        .cmd()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("LD_PRELOAD", lib)
        .env("FAKETIME_TIMESTAMP_FILE", &clock)
        .env("FAKETIME_NO_CACHE", "1")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    let (before, _) = http_get(port, MOO);
    std::fs::write(&clock, "+3d\n").unwrap();
    let (after, body) = http_get(port, MOO);
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(before, 200, "serve did not serve Moo at first");
    let start: String = body.chars().take(120).collect();
    assert_eq!(after, 502, "served under expired metadata: {start:?}");
    assert!(body.contains("expired"), "{body}");
}

// ------------------------------- what a user reads when something goes wrong

/// The one `cpantuf: error...` line of a failed command.
fn error_line(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("cpantuf: error"))
        .collect();
    assert_eq!(lines.len(), 1, "expected one error line:\n{err}");
    lines[0].to_owned()
}

/// A mirror that was down read "fetching 2.root.json: io: Connection
/// refused", and the exit status was that of any other failure.
#[test]
fn a_mirror_that_is_down_is_unreachable_not_an_io_error() {
    let repo = Repo::new();
    let evil = EvilMirror::start(&repo.mirror());
    let client = Client::new(&repo, &[evil.url()], &[]);
    drop(evil);
    let out = client.run(&["refresh"]);
    let line = error_line(&out);
    assert_eq!(out.status.code(), Some(3), "{line}");
    assert!(line.contains("cannot reach the mirror"), "{line}");
    assert!(!line.contains("root.json"), "{line}");
    assert!(!line.contains("io:"), "{line}");
}

/// A root of another repository was "timestamp has 0 valid signature(s)",
/// and `init` trusted it anyway.
#[test]
fn init_refuses_a_root_that_is_not_the_mirrors_repository() {
    let ours = Repo::new();
    let other_keys = tempfile::tempdir().unwrap();
    copy_tree(&keys(), other_keys.path());
    run_ok(
        Command::new(bin("cpantuf-sign"))
            .args(["keygen", "--force"])
            .arg(other_keys.path().join("timestamp.pem")),
    );
    let theirs = tempfile::tempdir().unwrap();
    let mirror = theirs.path().join("mirror");
    copy_tree(&ours.mirror().join("authors"), &mirror.join("authors"));
    copy_tree(&ours.mirror().join("modules"), &mirror.join("modules"));
    cpantuf_tests::sign_new_repository_with_keys(
        &mirror,
        &theirs.path().join("signer.json"),
        other_keys.path(),
    );
    let evil = EvilMirror::start(&mirror);
    let home = tempfile::tempdir().unwrap();
    let out = run(Command::new(bin("cpantuf"))
        .arg("--home")
        .arg(home.path())
        .args(["init", &evil.url(), "--root"])
        .arg(ours.tuf("1.root.json")));
    let line = error_line(&out);
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert!(line.contains("serves another repository"), "{line}");
    assert!(!home.path().join("config.json").exists());
    assert!(!home.path().join("metadata/root.json").exists());
}

/// "root metadata refused: expected root metadata, got _type "timestamp":
/// root metadata refused: expected root metadata, got _type "timestamp"".
#[test]
fn a_timestamp_served_as_the_next_root_is_reported_once() {
    let (repo, evil, client) = attack_setup();
    evil.lie("tuf/2.root.json", Lie::File(repo.tuf("timestamp.json")));
    let out = client.run(&["refresh"]);
    let line = error_line(&out);
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert_eq!(line.matches("expected root metadata").count(), 1, "{line}");
}

/// A path that no role lists read like an attack ("not found in any role
/// allowed to sign it") when it is simply not on CPAN.
#[test]
fn a_file_no_role_lists_is_not_on_cpan_rather_than_an_attack() {
    let (_repo, _evil, client) = attack_setup();
    let out = client.run(&["fetch", "authors/id/N/NO/NOBODY/Nothing-1.0.tar.gz"]);
    let line = error_line(&out);
    assert_eq!(out.status.code(), Some(4), "{line}");
    assert!(line.contains("is not on this CPAN"), "{line}");
    assert!(!line.contains("role allowed to sign"), "{line}");
}

/// Makes `dir` unwritable, even for root (by `chattr +i`); `None`, with the
/// reason printed, where this machine cannot.
fn make_unwritable(dir: &Path) -> Option<()> {
    let probe = dir.join(".probe");
    let mut perms = std::fs::metadata(dir).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(dir, perms).unwrap();
    if std::fs::write(&probe, b"").is_err() {
        return Some(());
    }
    let _ = std::fs::remove_file(&probe);
    let chattr = Command::new("chattr").arg("+i").arg(dir).output();
    if chattr.is_ok_and(|o| o.status.success()) && std::fs::write(&probe, b"").is_err() {
        return Some(());
    }
    eprintln!("SKIPPED: cannot make a directory unwritable here (root without chattr +i)");
    None
}

fn make_writable(dir: &Path) {
    let _ = Command::new("chattr").arg("-i").arg(dir).output();
    let mut perms = std::fs::metadata(dir).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir, perms).unwrap();
}

/// A read-only home gave "mirror ... skipped ... every mirror failed", and
/// every other mirror was tried: the failure is this machine's, named as
/// such with its path, and no other mirror is asked.
#[test]
fn a_read_only_home_is_a_local_error_and_no_other_mirror_is_tried() {
    let repo = Repo::new();
    let first = EvilMirror::start(&repo.mirror());
    let second = EvilMirror::start(&repo.mirror());
    let client = Client::new(&repo, &[first.url(), second.url()], &[]);
    run_ok(client.cmd().arg("refresh"));
    repo.sign(&["timestamp"]);
    let metadata = client.home.path().join("metadata");
    let Some(()) = make_unwritable(&metadata) else {
        return;
    };
    let asked_before = second.requests().len();
    let out = client.run(&["refresh"]);
    make_writable(&metadata);
    let line = error_line(&out);
    assert_eq!(out.status.code(), Some(5), "{line}");
    assert!(line.starts_with("cpantuf: error on this machine"), "{line}");
    assert!(line.contains(&metadata.display().to_string()), "{line}");
    assert!(!line.contains("every other mirror"), "{line}");
    assert_eq!(second.requests().len(), asked_before, "{line}");
}

/// An unknown CA never mentioned `--ca-cert`, and sync's `UnknownIssuer`
/// came three times in one line.
#[test]
fn an_unknown_certificate_authority_names_the_ca_cert_option() {
    let repo = Repo::new();
    let tls = start_tls_mirror(&repo.mirror());
    let url = format!("https://127.0.0.1:{}/", tls.port);
    let home = tempfile::tempdir().unwrap();
    let cpantuf = |args: &[&str]| {
        run(Command::new(bin("cpantuf"))
            .arg("--home")
            .arg(home.path())
            .args(args))
    };
    let root = repo.tuf("1.root.json").display().to_string();
    let init = cpantuf(&["init", &url, "--root", &root]);
    assert!(init.status.success(), "{}", stderr(&init));
    assert!(
        stderr(&init).contains("could not check the root against the mirror"),
        "{}",
        stderr(&init)
    );
    let out = cpantuf(&["refresh"]);
    let line = error_line(&out);
    assert_eq!(out.status.code(), Some(3), "{line}");
    assert!(line.contains("--ca-cert FILE"), "{line}");
    assert!(line.matches("UnknownIssuer").count() <= 1, "{line}");
    assert!(!stderr(&out).contains("ERROR"), "{}", stderr(&out));
}

/// `init` replaced a home's trust without being asked, and took a URL with
/// no scheme, or plain http to another host.
#[test]
fn init_refuses_to_replace_trust_without_force_and_checks_the_url() {
    let repo = Repo::new();
    let evil = EvilMirror::start(&repo.mirror());
    let client = Client::new(&repo, &[evil.url()], &[]);
    let root = repo.tuf("1.root.json").display().to_string();
    let again = client.run(&["init", &evil.url(), "--root", &root]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(error_line(&again).contains("--force"));
    let forced = client.run(&["init", &evil.url(), "--root", &root, "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    for bad in [
        "cpan.example.org",
        "http://cpan.example.org/",
        "ftp://127.0.0.1/",
    ] {
        let out = client.run(&["init", bad, "--root", &root, "--force"]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(error_line(&out).contains("mirror URL"), "{bad}");
    }
}

/// Output piped to a file carried ANSI colour codes, and `-q` still printed
/// notes and warnings.
#[test]
fn piped_output_has_no_colour_and_quiet_prints_only_errors() {
    let repo = Repo::new();
    let evil = EvilMirror::start(&repo.mirror());
    let url = evil.url();
    drop(evil);
    let home = tempfile::tempdir().unwrap();
    let root = repo.tuf("1.root.json").display().to_string();
    let init = |extra: &[&str]| {
        run(Command::new(bin("cpantuf"))
            .arg("--home")
            .arg(home.path())
            .args(extra)
            .args(["init", &url, "--root", &root, "--force"]))
    };
    let loud = init(&["-v"]);
    assert!(loud.status.success(), "{}", stderr(&loud));
    assert!(stderr(&loud).contains("note:"), "{}", stderr(&loud));
    assert!(!stderr(&loud).contains('\u{1b}'), "{:?}", stderr(&loud));
    let quiet = init(&["-q"]);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert_eq!(stderr(&quiet), "");
    let failed = run(Command::new(bin("cpantuf"))
        .arg("--home")
        .arg(home.path())
        .args(["-v", "refresh"]));
    assert!(!stderr(&failed).contains('\u{1b}'), "{:?}", stderr(&failed));
}

/// There was no way to ask a home what it trusts: `cpantuf status` reports
/// the root's version and keys, each role's version and expiry, when each
/// mirror last answered and the cache's size, without the network; and a
/// store that no longer verifies is reported as such, with exit 1.
#[test]
fn status_reports_what_the_home_trusts_without_the_network() {
    let (_repo, evil, client) = attack_setup();
    let refresh = run_ok(client.cmd().args(["refresh", "--json"]));
    let versions: serde_json::Value = serde_json::from_slice(&refresh.stdout).unwrap();
    let fetched = run_ok(client.cmd().args(["fetch", "--json", MOO]));
    let fetched: serde_json::Value = serde_json::from_slice(&fetched.stdout).unwrap();
    assert_eq!(fetched["path"], MOO);
    assert_eq!(fetched["sha256"], MOO_SHA256);
    assert!(Path::new(fetched["file"].as_str().unwrap()).is_file());
    drop(evil);
    let out = run_ok(client.cmd().args(["status", "--json"]));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["verified"], true, "{st}");
    assert_eq!(st["root"]["version"], 1);
    let roles = st["root"]["roles"].as_array().unwrap();
    let root_keys = roles.iter().find(|r| r["role"] == "root").unwrap();
    assert_eq!(root_keys["threshold"], 2);
    assert_eq!(root_keys["keys"].as_array().unwrap().len(), 3);
    let ts = st["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "timestamp");
    assert_eq!(ts.unwrap()["version"], versions["timestamp"], "{st}");
    assert!(ts.unwrap()["expires_in_seconds"].as_i64().unwrap() > 0);
    assert!(st["mirrors"][0]["last_answered"].is_string(), "{st}");
    assert!(st["cache"]["files"].as_u64().unwrap() >= 1, "{st}");
    let text = run_ok(client.cmd().arg("status"));
    assert!(String::from_utf8_lossy(&text.stdout).contains("verified now"));

    let stored = client.home.path().join("metadata/timestamp.json");
    let mut bytes = std::fs::read(&stored).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&stored, bytes).unwrap();
    let out = client.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["verified"], false, "{st}");
    assert!(st["problem"].is_string(), "{st}");
}

/// A shared machine had no system-wide trust: every user had to find and
/// pin the root alone. A home never initialised starts from the system's
/// home (its mirrors and trusted root), which is only read.
#[test]
fn a_new_home_starts_from_the_system_wide_trust() {
    let repo = Repo::new();
    let evil = EvilMirror::start(&repo.mirror());
    let system = Client::new(&repo, &[evil.url()], &[]);
    let before = snapshot_dir(system.home.path());
    let user = tempfile::tempdir().unwrap();
    let cpantuf = |home: &Path, system: &Path| {
        run(Command::new(bin("cpantuf"))
            .arg("--home")
            .arg(home)
            .env("CPANTUF_SYSTEM_TRUST", system)
            .args(["resolve", "Moo"]))
    };
    let out = cpantuf(user.path(), system.home.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("system-wide trust"),
        "{}",
        stderr(&out)
    );
    assert!(user.path().join("metadata/timestamp.json").is_file());
    assert_eq!(snapshot_dir(system.home.path()), before);
    let nobody = tempfile::tempdir().unwrap();
    let out = cpantuf(nobody.path(), &nobody.path().join("no-such-dir"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(error_line(&out).contains("is not initialised"));
}
