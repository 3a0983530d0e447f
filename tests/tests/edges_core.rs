//! End-to-end tests of the edges of the core and the mirror (issue 11), with real processes:
//!
//! * an expired claimed-author role (the author chooses their own expiry) costs only that
//!   author's subtree: `cpantuf-sign` publishes, `cpantuf-mirror sync` follows the upstream
//!   two hours later (faketime), and TUF clients of the mirror refuse that author alone;
//! * files the client writes (its cache, its metadata, `cpantuf mirror --to`) follow the
//!   umask;
//! * partial downloads a killed client left behind are removed;
//! * the messages a Perl user meets for a swapped, larger tarball and a rolled-back snapshot.

use cpantuf_tests::{bin, run, run_ok, workspace_root, EvilMirror, Lie};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

const MOO: &str = "authors/id/H/HA/HAARG/Moo-2.005005.tar.gz";
const TRY_TINY: &str = "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz";

/// A signed copy of the sample mirror (authors ETHER and HAARG), with its signer config.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror");
        for sub in ["authors", "modules"] {
            cpantuf_tests::copy_tree(
                &workspace_root().join("sample-mirror").join(sub),
                &mirror.join(sub),
            );
        }
        cpantuf_tests::sign_new_repository(&mirror, &dir.path().join("signer.json"));
        Repo { dir }
    }

    fn mirror(&self) -> PathBuf {
        self.dir.path().join("mirror")
    }

    fn root(&self) -> PathBuf {
        self.mirror().join("tuf/1.root.json")
    }

    fn sign(&self, args: &[&str]) -> Output {
        run_ok(
            Command::new(bin("cpantuf-sign"))
                .args(args)
                .arg("--config")
                .arg(self.dir.path().join("signer.json")),
        )
    }

    /// ETHER claims their role, signing it with an expiry one hour from now.
    fn ether_claims_with_one_hour_expiry(&self) {
        let file = self.dir.path().join("ETHER.json");
        let f = file.to_str().unwrap();
        self.sign(&["author", "export", "ETHER", "--out", f]);
        let mut doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let date = run_ok(Command::new("date").args(["-u", "-d", "+1 hour", "+%FT%TZ"]));
        let in_an_hour = String::from_utf8(date.stdout).unwrap();
        doc["signed"]["expires"] = in_an_hour.trim().into();
        std::fs::write(&file, doc.to_string()).unwrap();
        let key = |n: &str| cpantuf_tests::example_keys().join(n);
        run_ok(
            Command::new(bin("cpantuf-sign"))
                .args(["author", "sign", f, "--key"])
                .arg(key("author-ETHER.pem")),
        );
        // A claim changes the top-level targets role: an offline session.
        let (public, t1, t2) = (
            key("author-ETHER.pub.pem"),
            key("targets-1.pem"),
            key("targets-2.pem"),
        );
        self.sign(&[
            "author",
            "import",
            "ETHER",
            f,
            "--claim-key",
            public.to_str().unwrap(),
            "--key",
            t1.to_str().unwrap(),
            "--key",
            t2.to_str().unwrap(),
        ]);
    }
}

/// A client home initialised with `repo`'s root for `mirror`.
struct Client {
    home: tempfile::TempDir,
}

impl Client {
    fn new(repo: &Repo, mirror: &str) -> Client {
        Client::new_through(&[], repo, mirror)
    }

    /// [`Client::new`], `init` run through `prefix`.
    fn new_through(prefix: &[&str], repo: &Repo, mirror: &str) -> Client {
        let client = Client {
            home: tempfile::tempdir().unwrap(),
        };
        let root = repo.root();
        assert_ok(&client.run(prefix, &["init", mirror, "--root", root.to_str().unwrap()]));
        client
    }

    /// `cpantuf --home HOME ARGS`, run through `prefix` (e.g. `faketime`, `sh -c umask`).
    fn run(&self, prefix: &[&str], args: &[&str]) -> Output {
        let mut cmd = Command::new(prefix.first().copied().unwrap_or("env"));
        cmd.args(prefix.iter().skip(1))
            .arg(bin("cpantuf"))
            .arg("--home")
            .arg(self.home.path())
            .args(args)
            .env_remove("CPANTUF_HOME");
        run(&mut cmd)
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_ok(o: &Output) -> String {
    assert!(o.status.success(), "failed:\n{}", stderr(o));
    stderr(o)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `cpantuf-mirror sync` of `upstream` into `dest`, run through `prefix`.
fn sync(prefix: &[&str], upstream: &str, root: &Path, dest: &Path) -> Output {
    let mut cmd = Command::new(prefix.first().copied().unwrap_or("env"));
    cmd.args(prefix.iter().skip(1))
        .arg(bin("cpantuf-mirror"))
        .args(["--log", "info", "sync", "--upstream", upstream, "--root"])
        .arg(root)
        .arg("--dest")
        .arg(dest);
    run(&mut cmd)
}

const TWO_HOURS_LATER: [&str; 2] = ["faketime", "+2 hours"];

#[test]
fn one_expired_claimed_author_role_does_not_stop_any_mirror_sync() {
    assert!(
        have("faketime"),
        "faketime missing: run scripts/setup-test-deps.sh"
    );
    let repo = Repo::new();
    repo.ether_claims_with_one_hour_expiry();
    let upstream = EvilMirror::start(&repo.mirror());
    let dest = repo.dir.path().join("synced");
    assert_ok(&sync(&[], &upstream.url(), &repo.root(), &dest));

    // Two hours later ETHER's role has expired; meanwhile HAARG uploads.
    let upload = "authors/id/H/HA/HAARG/Fresh-1.0.tar.gz";
    std::fs::write(repo.mirror().join(upload), b"fresh upload").unwrap();
    repo.sign(&["add", repo.mirror().join(upload).to_str().unwrap()]);
    let out = sync(&TWO_HOURS_LATER, &upstream.url(), &repo.root(), &dest);
    let log = assert_ok(&out);
    assert!(
        log.contains("delegated role author-ETHER") && log.contains("metadata expired"),
        "the refused role and the reason must be named:\n{log}"
    );
    assert!(log.contains("published state-2"), "{log}");
    let current = dest.join("current");
    assert_eq!(
        std::fs::read(current.join(upload)).unwrap(),
        b"fresh upload"
    );
    assert!(
        std::fs::read(current.join(TRY_TINY)).unwrap()
            == std::fs::read(repo.mirror().join(TRY_TINY)).unwrap(),
        "ETHER's verified files must stay"
    );

    // TUF clients of the synced mirror: HAARG's upload verifies, ETHER is refused as expired,
    // exactly as upstream.
    let mirror = EvilMirror::start(&current);
    let client = Client::new(&repo, &mirror.url());
    assert_ok(&client.run(&TWO_HOURS_LATER, &["fetch", upload]));
    let out = client.run(&TWO_HOURS_LATER, &["fetch", TRY_TINY]);
    assert!(!out.status.success(), "ETHER's expired role was accepted");
    let err = stderr(&out);
    assert!(
        err.contains("author-ETHER metadata expired"),
        "refusal must name the role: {err}"
    );
}

/// The permission bits of every file under `dir` that are not `mode`, and the number checked.
fn wrong_modes(dir: &Path, mode: u32) -> (Vec<String>, usize) {
    let mut wrong = Vec::new();
    let mut n = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else if !e.file_name().to_string_lossy().starts_with(".cpantuf.lock") {
                n += 1;
                let m = meta.permissions().mode() & 0o777;
                if m != mode {
                    wrong.push(format!("{} {m:o}", e.path().display()));
                }
            }
        }
    }
    (wrong, n)
}

/// `fetch Moo` and `mirror --to` under `umask`: the cache, the metadata and the mirror's files
/// all get `mode`.
fn client_files_under_umask(umask: &str, mode: u32) {
    let repo = Repo::new();
    let upstream = EvilMirror::start(&repo.mirror());
    let shell = format!("umask {umask} && exec \"$0\" \"$@\"");
    let with_umask = ["sh", "-c", shell.as_str()];
    let client = Client::new_through(&with_umask, &repo, &upstream.url());
    assert_ok(&client.run(&with_umask, &["fetch", "Moo"]));
    let to = client.home.path().join("mirror-to");
    assert_ok(&client.run(&with_umask, &["mirror", "--to", to.to_str().unwrap()]));
    for dir in ["cache", "metadata", "mirror-to"] {
        let (wrong, n) = wrong_modes(&client.home.path().join(dir), mode);
        assert!(n > 0, "nothing written under {dir}");
        assert!(wrong.is_empty(), "umask {umask}: {wrong:?}");
    }
    assert!(to.join(MOO).is_file());
}

#[test]
fn client_cache_and_mirror_to_files_are_readable_by_others_under_umask_022() {
    client_files_under_umask("022", 0o644);
}

#[test]
fn client_cache_and_mirror_to_files_honour_a_stricter_umask() {
    client_files_under_umask("077", 0o600);
}

#[test]
fn partial_download_left_by_a_killed_client_is_removed() {
    let repo = Repo::new();
    let upstream = EvilMirror::start(&repo.mirror());
    let client = Client::new(&repo, &upstream.url());
    assert_ok(&client.run(&[], &["refresh"]));
    let downloads = client.home.path().join("metadata/.downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let (stale, live) = (downloads.join(".part-killed"), downloads.join(".part-live"));
    std::fs::write(&stale, vec![0u8; 100_000]).unwrap();
    std::fs::write(&live, b"another process is downloading this").unwrap();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    assert_ok(&client.run(&[], &["fetch", "Moo"]));
    assert!(!stale.exists(), "abandoned partial download kept");
    assert!(live.exists(), "a recent partial download was removed");
}

#[test]
fn swapped_larger_tarball_is_reported_as_larger_than_its_signed_length() {
    let repo = Repo::new();
    let upstream = EvilMirror::start(&repo.mirror());
    let client = Client::new(&repo, &upstream.url());
    let moo = std::fs::read(repo.mirror().join(MOO)).unwrap();
    let twin = std::fs::read_dir(repo.mirror().join("authors/id/H/HA/HAARG"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.len() > 65 && n.ends_with(".Moo-2.005005.tar.gz"))
        .unwrap();
    let mut bigger = moo.clone();
    bigger.extend_from_slice(b"and a payload");
    upstream.lie(&format!("authors/id/H/HA/HAARG/{twin}"), Lie::Bytes(bigger));
    let out = client.run(&[], &["fetch", "Moo"]);
    assert!(!out.status.success(), "a larger tarball was accepted");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "target {MOO} is larger than its signed length of {} bytes (a substituted or \
             endless file)",
            moo.len()
        )),
        "{err}"
    );
    assert!(!err.contains("endless-data attack"), "{err}");
}

#[test]
fn rolled_back_snapshot_message_names_the_timestamp_that_signed_it() {
    let repo = Repo::new();
    let upstream = EvilMirror::start(&repo.mirror());
    let client = Client::new(&repo, &upstream.url());
    let v1 = repo.mirror().join("tuf/1.snapshot.json");
    let saved = repo.dir.path().join("saved-1.snapshot.json");
    std::fs::copy(&v1, &saved).unwrap();
    assert_ok(&client.run(&[], &["refresh"]));
    // A new upload gives snapshot 2; the mirror serves snapshot 1 under its name.
    let upload = repo.mirror().join("authors/id/H/HA/HAARG/Fresh-1.0.tar.gz");
    std::fs::write(&upload, b"fresh upload").unwrap();
    repo.sign(&["add", upload.to_str().unwrap()]);
    let ts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.mirror().join("tuf/timestamp.json")).unwrap())
            .unwrap();
    let (ts_version, snap) = (
        ts["signed"]["version"].as_u64().unwrap(),
        ts["signed"]["meta"]["snapshot.json"]["version"]
            .as_u64()
            .unwrap(),
    );
    upstream.lie(&format!("tuf/{snap}.snapshot.json"), Lie::File(saved));
    let out = client.run(&[], &["refresh"]);
    assert!(!out.status.success(), "a rolled-back snapshot was accepted");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("timestamp version {ts_version} says"))
            && err.contains("a rollback")
            && err.contains("mix-and-match"),
        "{err}"
    );
}
