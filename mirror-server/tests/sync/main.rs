//! Integration tests of `cpantuf-mirror sync`: a signed upstream built in the test and served
//! on 127.0.0.1, real `cpantuf-mirror sync` and `serve` processes, and the client's `Updater`.

mod admin;
mod crash;
mod index_update;
mod modes;
mod refused;
mod unchanged;
mod upstream;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cpantuf_client::updater::{Updater, UpdaterConfig};

use upstream::{filler, HttpServer, Upstream, AUTHOR_DIR, AUTHOR_ROLE, PREFIX_ROLE};

const BIN: &str = env!("CARGO_BIN_EXE_cpantuf-mirror");

/// An upstream repository, its HTTP server, and a mirror destination.
struct Setup {
    up: Upstream,
    http: HttpServer,
    dest: PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup::with_upstream(Upstream::new)
    }

    /// A setup whose upstream `make` builds in the given directory.
    fn with_upstream(make: impl FnOnce(&Path) -> Upstream) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let up = make(&dir.path().join("upstream"));
        let http = HttpServer::start(&up.dir);
        Setup {
            up,
            http,
            dest: dir.path().join("mirror"),
            _dir: dir,
        }
    }

    fn sync_args(&self) -> Vec<std::ffi::OsString> {
        self.sync_args_to(&self.dest)
    }

    /// The arguments of a sync of this upstream into `dest`.
    fn sync_args_to(&self, dest: &Path) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = ["--log", "info", "sync", "--upstream"]
            .iter()
            .map(Into::into)
            .collect();
        args.push(self.http.url().into());
        args.push("--root".into());
        args.push(self.up.root_file().into());
        args.push("--dest".into());
        args.push(dest.into());
        args
    }

    fn sync_command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(self.sync_args()).stdin(Stdio::null());
        cmd
    }

    /// Runs one sync to completion.
    fn sync(&self) -> Output {
        self.sync_command().output().unwrap()
    }

    fn sync_ok(&self) -> String {
        self.sync_ok_with(&[])
    }

    /// Runs one sync with more options, which must succeed; returns its log.
    fn sync_ok_with(&self, more: &[&str]) -> String {
        run_ok(self.sync_command().args(more))
    }

    fn current(&self) -> PathBuf {
        self.dest.join("current")
    }
}

/// Runs a sync command, which must succeed; returns its log.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "sync failed: {stderr}");
    stderr
}

/// Every file under `dir` (following the `current` symlink) with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    let real = std::fs::canonicalize(dir).unwrap();
    walk(&real, &real, &mut out);
    out
}

/// The number in `published state-N` / `N resumed` style log fields.
fn count(stderr: &str, after: &str) -> usize {
    let line = stderr
        .lines()
        .rfind(|l| {
            l.contains("published ") || l.contains("up to date") || l.contains(" in place: ")
        })
        .unwrap_or_else(|| panic!("no outcome line in: {stderr}"));
    let i = line
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} not in {line}"));
    line[..i]
        .rsplit(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .unwrap()
        .parse()
        .unwrap()
}

/// A `cpantuf-mirror serve` process on loopback HTTP. Killed when dropped.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Serve {
    fn start(root: &Path) -> Serve {
        let child = Command::new(BIN)
            .args(["--log", "info", "serve", "--root"])
            .arg(root)
            .args([
                "--http-listen",
                "127.0.0.1:0",
                "--access-log",
                "off",
                "--workers",
                "1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Owned by `Serve` at once, so a failed start still kills and reaps it.
        let mut serve = Serve {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
        };
        let mut lines = BufReader::new(serve.child.stderr.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "server did not start");
            let line = lines.next().expect("server exited early").unwrap();
            if let Some((_, addr)) = line.split_once("listening: http ") {
                serve.addr = addr.trim().parse().unwrap();
                std::thread::spawn(move || lines.for_each(drop));
                return serve;
            }
        }
    }
}

impl Serve {
    /// cpantuf's updater for this server, trusting `root`, its metadata under `dir`.
    fn client(&self, root: &Path, dir: &Path) -> Updater {
        let md = dir.join("metadata");
        std::fs::create_dir_all(&md).unwrap();
        std::fs::copy(root, md.join("root.json")).unwrap();
        Updater::new(UpdaterConfig::for_mirror(
            md,
            &format!("http://{}/", self.addr),
        ))
        .unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sync_mirrors_a_repository_and_serves_it() {
    let s = Setup::new();
    let log = s.sync_ok();
    assert!(log.contains("published state-1"), "{log}");
    let served = tree(&s.current());
    // Every target and its twin, byte for byte, and the metadata under the upstream's names.
    for (path, content) in s.up.targets() {
        assert!(
            served.get(&path) == Some(&content),
            "{path} missing or different"
        );
        assert_eq!(
            served.get(&s.up.twin_of(&path)),
            Some(&content),
            "twin of {path}"
        );
    }
    for name in [
        "tuf/1.root.json",
        "tuf/root.json",
        "tuf/timestamp.json",
        "tuf/1.snapshot.json",
        "tuf/1.targets.json",
        &format!("tuf/1.{PREFIX_ROLE}.json"),
        &format!("tuf/1.{AUTHOR_ROLE}.json"),
    ] {
        let upstream = std::fs::read(s.up.dir.join(name)).unwrap();
        assert!(
            served.get(name) == Some(&upstream),
            "{name} not as received"
        );
    }
    assert!(std::fs::symlink_metadata(s.current())
        .unwrap()
        .file_type()
        .is_symlink());

    // A client pointed at the served copy verifies a download through the delegation.
    let server = Serve::start(&s.current());
    let client = tempfile::tempdir().unwrap();
    let mut updater = server.client(&s.up.root_file(), client.path());
    let path = format!("{AUTHOR_DIR}/Foo-1.0.tar.gz");
    let found = updater.target_info(&path).unwrap();
    assert_eq!(found.role, AUTHOR_ROLE);
    let dest = client.path().join("Foo-1.0.tar.gz");
    updater.download_target(&found, &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), filler(40_000, 1));
}

#[test]
fn second_sync_fetches_only_what_changed() {
    let mut s = Setup::new();
    s.sync_ok();
    s.http.take_log();

    // Nothing new upstream: one timestamp download (plus the root probe), no new state.
    let log = s.sync_ok();
    assert!(log.contains("up to date: state-1"), "{log}");
    assert_eq!(s.http.take_log(), ["tuf/2.root.json", "tuf/timestamp.json"]);

    // One new release in the delegated role: only that role, the snapshot, the timestamp and
    // the new file are fetched, and the served state is updated in place: the unchanged
    // files are not touched.
    let new = format!("{AUTHOR_DIR}/Foo-1.1.tar.gz");
    s.up.add_target(AUTHOR_ROLE, &new, &filler(50_000, 3));
    s.up.publish();
    let unchanged = s.current().join(format!("{AUTHOR_DIR}/Foo-1.0.tar.gz"));
    use std::os::unix::fs::MetadataExt as _;
    let inode = std::fs::metadata(&unchanged).unwrap().ino();
    let log = s.sync_ok();
    assert!(log.contains("updated state-1 in place"), "{log}");
    let mut requests = s.http.take_log();
    requests.sort();
    let mut expected = vec![
        "tuf/2.root.json".to_string(),
        "tuf/timestamp.json".into(),
        "tuf/2.snapshot.json".into(),
        format!("tuf/2.{AUTHOR_ROLE}.json"),
        s.up.twin_of(&new),
    ];
    expected.sort();
    assert_eq!(requests, expected);
    assert_eq!(count(&log, " downloaded"), 1, "{log}");
    assert_eq!(count(&log, " added or changed"), 1, "{log}");
    assert_eq!(count(&log, " roles changed"), 1, "{log}");
    assert_eq!(
        std::fs::metadata(&unchanged).unwrap().ino(),
        inode,
        "unchanged file touched"
    );
    assert_eq!(
        std::fs::read_link(s.current()).unwrap(),
        PathBuf::from("state-1")
    );
    let served = tree(&s.current());
    assert!(served[&new] == filler(50_000, 3));
    assert!(served.contains_key("tuf/1.targets.json"));
    assert!(served.contains_key(&format!("tuf/2.{AUTHOR_ROLE}.json")));
}

#[test]
fn interrupted_sync_resumes() {
    let mut s = Setup::new();
    s.sync_ok();
    let before = tree(&s.current());
    let names: Vec<String> = (0..4)
        .map(|i| format!("{AUTHOR_DIR}/Slow-{i}.tar.gz"))
        .collect();
    for (i, n) in names.iter().enumerate() {
        s.up.add_target(AUTHOR_ROLE, n, &filler(20_000 + i, 10 + i as u8));
    }
    s.up.publish();
    s.http.take_log();

    // Each target takes 700 ms to start: kill the sync after the first ones arrived.
    s.http
        .target_delay_ms
        .store(700, std::sync::atomic::Ordering::SeqCst);
    // One download at a time, so the kill lands between files.
    let mut child = s
        .sync_command()
        .args(["--jobs", "1", "--no-in-place"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let staged = |s: &Setup| {
        std::fs::read_dir(&s.dest)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".staging-"))
            .map(|e| names.iter().filter(|n| e.path().join(n).is_file()).count())
            .sum::<usize>()
    };
    while staged(&s) < 2 {
        assert!(Instant::now() < deadline, "sync made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "sync finished too fast"
        );
        // `current` is never touched while the sync works.
        assert_eq!(
            std::fs::read_link(s.current()).unwrap(),
            PathBuf::from("state-1")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        tree(&s.current()),
        before,
        "served state changed by a killed sync"
    );
    let staging = s.dest.join(".staging-2");
    let done: Vec<&String> = names.iter().filter(|n| staging.join(n).is_file()).collect();
    assert!(done.len() >= 2 && done.len() < names.len(), "{done:?}");
    s.http.take_log();

    s.http
        .target_delay_ms
        .store(0, std::sync::atomic::Ordering::SeqCst);
    let log = s.sync_ok_with(&["--no-in-place"]);
    assert!(log.contains("published state-2"), "{log}");
    assert!(log.contains("resuming an interrupted sync"), "{log}");
    assert_eq!(count(&log, " resumed"), done.len(), "{log}");
    assert_eq!(
        count(&log, " downloaded"),
        names.len() - done.len(),
        "{log}"
    );
    // What was verified before the kill is hashed again, not downloaded again.
    let second_run = s.http.take_log();
    for n in &done {
        assert!(!second_run.contains(&s.up.twin_of(n)), "{n} fetched twice");
    }
    let served = tree(&s.current());
    for (path, content) in s.up.targets() {
        assert!(
            served.get(&path) == Some(&content),
            "{path} missing or different"
        );
    }
    assert!(!std::fs::read_dir(&s.dest).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".staging-")));
}

/// Runs a sync that must fail, and checks that the served state did not change.
fn assert_refused(s: &Setup, what: &str) -> String {
    let before = tree(&s.current());
    let link = std::fs::read_link(s.current()).unwrap();
    let out = s.sync();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{what}: sync succeeded: {stderr}");
    assert_eq!(std::fs::read_link(s.current()).unwrap(), link, "{what}");
    assert!(tree(&s.current()) == before, "{what}: served files changed");
    stderr
}

#[test]
fn tampered_target_leaves_served_state_untouched() {
    let mut s = Setup::new();
    s.sync_ok();
    let path = format!("{AUTHOR_DIR}/Evil-1.0.tar.gz");
    s.up.add_target(AUTHOR_ROLE, &path, &filler(10_000, 7));
    s.up.publish();

    // The release's bytes swapped on the upstream after signing.
    let twin = s.up.dir.join(s.up.twin_of(&path));
    let mut evil = filler(10_000, 7);
    evil[5000] ^= 1;
    std::fs::remove_file(&twin).unwrap();
    std::fs::write(&twin, &evil).unwrap();
    let err = assert_refused(&s, "tampered target");
    assert!(
        err.contains(&format!("{path}: sha256 hash mismatch")),
        "{err}"
    );
    assert_eq!(err.matches("hash mismatch").count(), 1, "said twice: {err}");
    assert!(!tree(&s.current()).contains_key(&path));

    // Once the upstream serves the signed bytes again, the sync goes through.
    std::fs::remove_file(&twin).unwrap();
    std::fs::write(&twin, filler(10_000, 7)).unwrap();
    let log = s.sync_ok();
    assert!(log.contains("updated state-1 in place"), "{log}");
}

#[test]
fn swapped_larger_target_is_reported_as_larger_than_its_signed_length() {
    let mut s = Setup::new();
    s.sync_ok();
    let path = format!("{AUTHOR_DIR}/Evil-1.0.tar.gz");
    s.up.add_target(AUTHOR_ROLE, &path, &filler(10_000, 7));
    s.up.publish();
    let twin = s.up.dir.join(s.up.twin_of(&path));
    std::fs::remove_file(&twin).unwrap();
    std::fs::write(&twin, filler(10_001, 7)).unwrap();
    let err = assert_refused(&s, "larger target");
    assert!(
        err.contains(&format!(
            "target {path} is larger than its signed length of 10000 bytes (a substituted or \
             endless file): refused"
        )),
        "{err}"
    );
}

#[test]
fn rolled_back_upstream_leaves_served_state_untouched() {
    let mut s = Setup::new();
    let old_timestamp = std::fs::read(s.up.dir.join("tuf/timestamp.json")).unwrap();
    s.up.add_target(
        "targets",
        "modules/02packages.details.txt.gz",
        b"index v2\n",
    );
    s.up.publish();
    s.sync_ok();
    // The upstream serves the previous timestamp again (a rollback or freeze attack).
    std::fs::write(s.up.dir.join("tuf/timestamp.json"), old_timestamp).unwrap();
    let err = assert_refused(&s, "rolled-back timestamp");
    assert!(
        err.contains("timestamp version 1 is older than trusted version 2: rollback refused"),
        "{err}"
    );
}

#[test]
fn interval_mode_follows_the_upstream_and_prunes_old_states() {
    let mut s = Setup::new();
    let child = s
        .sync_command()
        .args(["--interval", "1", "--keep-states", "2", "--no-in-place"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Reaped on every path, including a failed assertion.
    struct Reap(Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Reap(child);
    let wait_for = |s: &Setup, state: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::read_link(s.current()).ok() != Some(PathBuf::from(state)) {
            assert!(Instant::now() < deadline, "{state} never published");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&s, "state-1");
    for (i, state) in [(2u8, "state-2"), (3, "state-3"), (4, "state-4")] {
        s.up.add_target(
            AUTHOR_ROLE,
            &format!("{AUTHOR_DIR}/Next-{i}.tar.gz"),
            &filler(1000, i),
        );
        s.up.publish();
        wait_for(&s, state);
    }
    // Pruning follows the switch in the same run.
    let states = || {
        let mut v: Vec<String> = std::fs::read_dir(&s.dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("state-"))
            .collect();
        v.sort();
        v
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while states() != ["state-3", "state-4"] {
        assert!(Instant::now() < deadline, "not pruned: {:?}", states());
        std::thread::sleep(Duration::from_millis(50));
    }
    let served = tree(&s.current());
    for (path, content) in s.up.targets() {
        assert!(
            served.get(&path) == Some(&content),
            "{path} missing or different"
        );
    }
}

#[test]
fn paths_a_role_may_not_sign_are_not_mirrored() {
    let mut s = Setup::new();
    // The author role lists a file in someone else's directory, and overrides the index that
    // only `targets` may sign: the delegation search does not accept either from it.
    let foreign = "authors/id/O/OT/OTHER/Evil-1.0.tar.gz";
    s.up.add_target(AUTHOR_ROLE, foreign, b"not yours");
    s.up.add_target(
        AUTHOR_ROLE,
        "modules/02packages.details.txt.gz",
        b"forged index\n",
    );
    s.up.publish();
    let log = s.sync_ok();
    assert!(log.contains("not mirrored"), "{log}");
    let served = tree(&s.current());
    assert!(!served.contains_key(foreign));
    assert_eq!(
        served["modules/02packages.details.txt.gz"],
        b"index v1\n".to_vec(),
        "the index must come from the role allowed to sign it"
    );
    assert_eq!(
        served[&format!("{AUTHOR_DIR}/Foo-1.0.tar.gz")],
        filler(40_000, 1)
    );
}

#[test]
fn new_root_versions_are_mirrored_for_clients_on_older_roots() {
    let mut s = Setup::new();
    s.sync_ok();
    s.up.bump_root();
    s.up.bump_root();
    let log = s.sync_ok();
    assert!(log.contains("published state-2"), "{log}");
    let served = tree(&s.current());
    for name in [
        "tuf/1.root.json",
        "tuf/2.root.json",
        "tuf/3.root.json",
        "tuf/root.json",
    ] {
        let upstream = std::fs::read(s.up.dir.join(name)).unwrap();
        assert!(
            served.get(name) == Some(&upstream),
            "{name} not as received"
        );
    }
    // A client that still trusts root v1 walks to v3 through the mirror.
    let server = Serve::start(&s.current());
    let client = tempfile::tempdir().unwrap();
    let mut updater = server.client(&s.up.root_file(), client.path());
    updater.refresh().unwrap();
    assert_eq!(updater.trusted().unwrap().root().version.get(), 3);
}

#[test]
fn more_roles_than_allowed_are_refused_not_mirrored_in_part() {
    let s = Setup::new();
    // targets, prefix-E-EX and author-EXAMPLE: three roles.
    let out = s
        .sync_command()
        .args(["--max-roles", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("more than 2 targets roles"), "{err}");
    assert!(
        std::fs::symlink_metadata(s.current()).is_err(),
        "published anyway"
    );
    let out = s
        .sync_command()
        .args(["--max-roles", "3"])
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn a_deleted_file_stays_served_for_keep_deleted_then_goes() {
    let mut s = Setup::new();
    s.sync_ok();
    let gone = format!("{AUTHOR_DIR}/Foo-1.0.tar.gz");
    let twin = s.up.twin_of(&gone);
    s.up.remove_target(AUTHOR_ROLE, &gone);
    s.up.publish();
    let log = s.sync_ok();
    assert!(log.contains("updated state-1 in place"), "{log}");
    assert_eq!(count(&log, " removed"), 1, "{log}");
    // The plain name goes with the new version; the twin a TUF client on the previous
    // snapshot fetches stays, and so does the superseded role version.
    let served = tree(&s.current());
    assert!(!served.contains_key(&gone));
    assert!(served.contains_key(&twin));
    assert!(served.contains_key(&format!("tuf/1.{AUTHOR_ROLE}.json")));

    // The next change, with no retention left, removes them.
    s.up.add_target(AUTHOR_ROLE, &format!("{AUTHOR_DIR}/Foo-2.0.tar.gz"), b"2.0");
    s.up.publish();
    let log = s.sync_ok_with(&["--keep-deleted", "0s"]);
    assert!(log.contains("updated state-1 in place"), "{log}");
    let served = tree(&s.current());
    assert!(!served.contains_key(&twin), "retired twin still served");
    for superseded in [1, 2] {
        let name = format!("tuf/{superseded}.{AUTHOR_ROLE}.json");
        assert!(!served.contains_key(&name), "{name} still served");
    }
    assert!(served.contains_key(&format!("tuf/3.{AUTHOR_ROLE}.json")));
}

/// What a client can fetch from a served tree, without the files an in-place sync keeps for
/// clients on the previous snapshot (listed in its `.sync-retained.json`).
fn fetchable(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let retained = std::fs::read(dir.join(".sync-retained.json")).unwrap_or_default();
    let retained: Vec<serde_json::Value> = serde_json::from_slice(&retained).unwrap_or_default();
    let retained: Vec<&str> = retained.iter().filter_map(|r| r["path"].as_str()).collect();
    tree(dir)
        .into_iter()
        .filter(|(p, _)| !p.split('/').any(|s| s.starts_with('.')))
        .filter(|(p, _)| !retained.contains(&p.as_str()))
        .collect()
}

#[test]
fn in_place_sync_serves_exactly_what_a_full_sync_serves() {
    let mut s = Setup::new();
    s.sync_ok();
    let full_dest = s.dest.with_file_name("mirror-full");
    let full_sync = |s: &Setup| {
        run_ok(
            Command::new(BIN)
                .args(s.sync_args_to(&full_dest))
                .arg("--no-in-place"),
        )
    };
    full_sync(&s);
    // (what changes, whether it is applied in place, the files in the author's directory a
    // role lists but no client may fetch (blocked by a terminating delegation), the change).
    // A terminating delegation withdrawn while a later one covers the same paths declines:
    // the paths it blocked are not in the served state, and finding them would take a search
    // of every later role.
    type Change = fn(&mut Upstream);
    let changes: [(&str, bool, &[&str], Change); 11] = [
        ("an upload", true, &[], |up| {
            up.add_target(AUTHOR_ROLE, &format!("{AUTHOR_DIR}/Up-1.tar.gz"), b"up")
        }),
        ("a new author under a new prefix", true, &[], |up| {
            let role = up.add_author("NEWCOMER");
            up.add_target(&role, "authors/id/N/NE/NEWCOMER/New-0.01.tar.gz", b"new");
        }),
        ("a new author under a known prefix", true, &[], |up| {
            let role = up.add_author("EXAMPLER");
            up.add_target(&role, "authors/id/E/EX/EXAMPLER/Other-1.tar.gz", b"other");
        }),
        ("a deletion and a new index", true, &[], |up| {
            up.remove_target(AUTHOR_ROLE, &format!("{AUTHOR_DIR}/Foo-1.0.tar.gz"));
            up.add_target("targets", "modules/02packages.details.txt.gz", b"index 2");
        }),
        ("a sub-delegation of an author", true, &[], |up| {
            let sub = format!("{AUTHOR_ROLE}-sub");
            up.delegate(AUTHOR_ROLE, &sub, &format!("{AUTHOR_DIR}/Deep-*"));
            up.add_target(&sub, &format!("{AUTHOR_DIR}/Deep-1.tar.gz"), b"deep");
        }),
        ("a terminating sub-delegation withdrawn", true, &[], |up| {
            up.undelegate(AUTHOR_ROLE, &format!("{AUTHOR_ROLE}-sub"));
        }),
        ("a non-terminating sub-delegation", true, &[], |up| {
            let sub = format!("{AUTHOR_ROLE}-open");
            up.delegate_with(AUTHOR_ROLE, &sub, &format!("{AUTHOR_DIR}/Open-*"), false);
            up.add_target(&sub, &format!("{AUTHOR_DIR}/Open-1.tar.gz"), b"open");
        }),
        (
            "a non-terminating sub-delegation taken back",
            true,
            &[],
            |up| {
                up.undelegate(AUTHOR_ROLE, &format!("{AUTHOR_ROLE}-open"));
            },
        ),
        (
            "a terminating delegation hiding a later one",
            true,
            &["Hidden-1.tar.gz"],
            |up| {
                up.delegate(AUTHOR_ROLE, "hide", &format!("{AUTHOR_DIR}/Hid*"));
                up.delegate_with(AUTHOR_ROLE, "later", &format!("{AUTHOR_DIR}/*"), false);
                up.add_target("later", &format!("{AUTHOR_DIR}/Hidden-1.tar.gz"), b"hidden");
            },
        ),
        ("the hiding delegation withdrawn", false, &[], |up| {
            up.undelegate(AUTHOR_ROLE, "hide");
        }),
        (
            "a new terminating delegation ahead of an author",
            true,
            &["Bar-1.0.tar.gz"],
            |up| {
                up.delegate_first("targets", "takeover", &format!("{AUTHOR_DIR}/Bar-*"));
                // It does not list Bar-1.0, which the author still lists.
                let path = format!("{AUTHOR_DIR}/Bar-2.0.tar.gz");
                up.add_target("takeover", &path, b"taken over");
            },
        ),
    ];
    for (what, in_place, blocked, change) in changes {
        change(&mut s.up);
        s.up.publish();
        let log = s.sync_ok();
        let said = if in_place {
            " in place: "
        } else {
            "building a new state: "
        };
        assert!(log.contains(said), "{what}: {log}");
        let full_log = full_sync(&s);
        let full = fetchable(&full_dest.join("current"));
        assert!(
            fetchable(&s.current()) == full,
            "{what}: in place differs from a full sync"
        );
        let blocked: Vec<String> = blocked
            .iter()
            .map(|f| format!("{AUTHOR_DIR}/{f}"))
            .collect();
        for (path, content) in s.up.targets() {
            if blocked.contains(&path) {
                assert!(!full.contains_key(&path), "{what}: {path} served");
                continue;
            }
            assert!(
                full.get(&path) == Some(&content),
                "{what}: {path} not served\nin place: {log}\nfull: {full_log}"
            );
        }
    }
}

#[test]
fn a_tuf_client_reads_a_mirror_updated_in_place() {
    let mut s = Setup::new();
    s.sync_ok();
    let server = Serve::start(&s.current());
    let client = tempfile::tempdir().unwrap();
    let mut updater = server.client(&s.up.root_file(), client.path());
    updater.refresh().unwrap();

    let new = format!("{AUTHOR_DIR}/Foo-1.1.tar.gz");
    s.up.add_target(AUTHOR_ROLE, &new, b"foo 1.1");
    s.up.publish();
    let log = s.sync_ok();
    assert!(log.contains("updated state-1 in place"), "{log}");
    // The same server, not restarted, serves the new version to a returning client.
    updater.refresh().unwrap();
    let found = updater.target_info(&new).unwrap();
    let file = client.path().join("Foo-1.1.tar.gz");
    updater.download_target(&found, &file).unwrap();
    assert_eq!(std::fs::read(file).unwrap(), b"foo 1.1");
}

/// Copies the regular files of `from` to `to` (a stand-in for an rsync mirror's tree).
fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in tree(from) {
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
}

#[test]
fn a_first_sync_over_an_rsync_copy_takes_its_verified_files_and_downloads_the_rest() {
    let s = Setup::new();
    let rsync_copy = s.dest.with_file_name("rsync-copy");
    copy_tree(&s.up.dir, &rsync_copy);
    // The copy is stale or tampered for one file, and lacks the index (but has its twin).
    let bar = format!("{AUTHOR_DIR}/Bar-1.0.tar.gz");
    std::fs::write(rsync_copy.join(&bar), filler(30_000, 9)).unwrap();
    let bar_twin = s.up.twin_of(&bar);
    std::fs::write(rsync_copy.join(&bar_twin), filler(30_000, 9)).unwrap();
    std::fs::remove_file(rsync_copy.join("modules/02packages.details.txt.gz")).unwrap();
    s.http.take_log();

    let log = s.sync_ok_with(&["--reuse", rsync_copy.to_str().unwrap()]);
    assert!(log.contains("; 2 verified in --reuse"), "{log}");
    assert_eq!(count(&log, " downloaded"), 1, "{log}");
    let fetched: Vec<String> = s
        .http
        .take_log()
        .into_iter()
        .filter(|p| !p.starts_with("tuf/"))
        .collect();
    assert_eq!(fetched, [bar_twin], "only the file the copy got wrong");
    let served = tree(&s.current());
    for (path, content) in s.up.targets() {
        assert!(
            served.get(&path) == Some(&content),
            "{path} not served as signed"
        );
    }
}
