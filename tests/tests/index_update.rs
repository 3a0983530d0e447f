//! A whole CPAN index update through a mirror, on real index data: the synthetic mirror of
//! the 2024 `02packages` (41,980 distribution files, 6,801 authors) is signed by
//! `cpantuf-sign`, served by `cpantuf-mirror serve`, and followed by `cpantuf-mirror sync`;
//! then the upstream moves to the 2026 index (new releases added, releases gone from the
//! index deleted, index files rewritten) and is re-signed, and the next sync must fetch
//! exactly the targets and metadata that changed, and serve the 2026 state.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cpantuf_core::cpan::packages::Packages;
use cpantuf_tests::{bin, run_ok, sign_new_repository, sign_publish, workspace_root};

/// The distribution files an index lists (mirror paths).
fn dists(index: &str) -> BTreeSet<String> {
    let gz = std::fs::read(workspace_root().join("data/cpan-index").join(index)).unwrap();
    let packages = Packages::read_gz(&gz[..]).unwrap();
    packages
        .dists()
        .into_iter()
        .map(|d| d.cpan_path().as_str().to_owned())
        .collect()
}

fn synthesize(index: &str, out: &Path) {
    run_ok(
        Command::new(bin("cpantuf-fixtures"))
            .args(["synthetic", "--index"])
            .arg(workspace_root().join("data/cpan-index").join(index))
            .arg("--out")
            .arg(out),
    );
}

/// `cpantuf-mirror serve` over plain loopback HTTP with an access log. Killed when dropped.
struct Upstream {
    child: Child,
    url: String,
}

impl Upstream {
    fn start(root: &Path, access_log: &Path) -> Upstream {
        let child = Command::new(bin("cpantuf-mirror"))
            .args(["--log", "info", "serve", "--root"])
            .arg(root)
            .args(["--http-listen", "127.0.0.1:0", "--access-log"])
            .arg(access_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Owned at once, so a failed start still kills and reaps it.
        let mut upstream = Upstream {
            child,
            url: String::new(),
        };
        let mut lines = BufReader::new(upstream.child.stderr.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "upstream did not start");
            let line = lines.next().expect("upstream exited early").unwrap();
            if let Some((_, addr)) = line.split_once("listening: http ") {
                std::thread::spawn(move || lines.for_each(drop));
                upstream.url = format!("http://{}/", addr.trim());
                return upstream;
            }
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The request paths in the access log since the last call (the log is truncated after).
fn take_requests(access_log: &Path) -> Vec<String> {
    // The server writes its log from a background task: wait until it stops growing.
    let mut last = u64::MAX;
    loop {
        let len = std::fs::metadata(access_log).map_or(0, |m| m.len());
        if len == last {
            break;
        }
        last = len;
        std::thread::sleep(Duration::from_millis(300));
    }
    let text = std::fs::read_to_string(access_log).unwrap_or_default();
    std::fs::write(access_log, "").unwrap();
    text.lines()
        .filter_map(|l| l.split_once("\"GET /")?.1.split_once(' '))
        .map(|(path, _)| path.to_owned())
        .collect()
}

/// Every regular file of a served state (following `current`), by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let real = std::fs::canonicalize(dir).unwrap();
    cpantuf_tests::snapshot_dir(&real)
        .into_iter()
        .map(|(p, b)| (p.to_string_lossy().into_owned(), b))
        .filter(|(p, _)| !p.starts_with('.'))
        .collect()
}

/// The files of a served tree a client can fetch: `tree` without what an in-place sync keeps
/// for clients of the previous snapshot (listed in `.sync-retained.json`).
fn fetchable(dir: &Path, mut tree: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    let list = std::fs::read(dir.join(".sync-retained.json")).unwrap_or_default();
    let list: Vec<serde_json::Value> = serde_json::from_slice(&list).unwrap_or_default();
    for path in list.iter().filter_map(|r| r["path"].as_str()) {
        tree.remove(path);
    }
    tree
}

/// The version of every role the snapshot of a served state lists.
fn snapshot_versions(state: &Path) -> BTreeMap<String, u64> {
    let read = |name: String| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(state.join("tuf").join(name)).unwrap()).unwrap()
    };
    let ts = read("timestamp.json".into());
    let v = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let snap = read(format!("{v}.snapshot.json"));
    snap["signed"]["meta"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, m)| (k.clone(), m["version"].as_u64().unwrap()))
        .collect()
}

fn sync(upstream: &Upstream, root: &Path, dest: &Path) -> String {
    let out = run_ok(
        Command::new(bin("cpantuf-mirror"))
            .args([
                "--log",
                "info",
                "sync",
                "--upstream",
                &upstream.url,
                "--root",
            ])
            .arg(root)
            .arg("--dest")
            .arg(dest),
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn index_update_2024_to_2026_on_the_whole_synthetic_mirror_syncs_only_what_changed() {
    const OLD: &str = "02packages.details.2024-01-11.txt.gz";
    const NEW: &str = "02packages.details.2026-04-02.txt.gz";
    let work = tempfile::tempdir().unwrap();
    let mirror = work.path().join("mirror");
    let cfg = work.path().join("signer.json");
    let dest = work.path().join("dest");
    let log = work.path().join("access.log");
    let (old_dists, new_dists) = (dists(OLD), dists(NEW));
    let t = Instant::now();
    let lap = |what: &str| eprintln!("{:>7.1} s  {what}", t.elapsed().as_secs_f64());

    synthesize(OLD, &mirror);
    lap("2024 mirror generated");
    sign_new_repository(&mirror, &cfg);
    lap("signed");
    let root = work.path().join("root.json");
    std::fs::copy(mirror.join("tuf/1.root.json"), &root).unwrap();
    let upstream = Upstream::start(&mirror, &log);

    let first = sync(&upstream, &root, &dest);
    assert!(first.contains("published state-1"), "{first}");
    lap("first sync");
    take_requests(&log);
    let state1 = tree(&dest.join("current"));
    for d in &old_dists {
        assert!(state1.contains_key(d), "{d} not mirrored");
    }

    // PAUSE moves on to 2026: new releases arrive, releases no longer indexed are deleted,
    // the index files are rewritten; the operator re-signs.
    synthesize(NEW, &mirror);
    for gone in old_dists.difference(&new_dists) {
        std::fs::remove_file(mirror.join(gone)).unwrap();
    }
    lap("2026 mirror generated");
    sign_publish(&cfg);
    lap("re-signed");

    let v1 = snapshot_versions(&dest.join("current"));
    let second = sync(&upstream, &root, &dest);
    assert!(second.contains("updated state-1 in place"), "{second}");
    lap("second sync");
    let requests = take_requests(&log);
    let state2 = fetchable(&dest.join("current"), tree(&dest.join("current")));

    // Served: every 2026 release, none of the deleted ones, the new index.
    for d in &new_dists {
        assert!(state2.contains_key(d), "{d} not mirrored");
    }
    // A deleted release leaves the plain names at once; its twin stays for clients still on
    // the previous snapshot (`--keep-deleted`).
    for gone in old_dists.difference(&new_dists) {
        assert!(
            !dest.join("current").join(gone).exists(),
            "{gone} still served"
        );
        let kept = dest.join("current").join(twin(&state1, gone));
        assert!(kept.is_file(), "{gone}: twin not kept");
    }
    assert!(
        state2["modules/02packages.details.txt.gz"]
            == std::fs::read(workspace_root().join("data/cpan-index").join(NEW)).unwrap()
    );

    // Fetched targets: exactly the files that are new or changed (by their hash-named twins),
    // which are the new releases plus the rewritten index files.
    let changed: BTreeSet<&String> = state2
        .iter()
        .filter(|(p, b)| !p.starts_with("tuf/") && state1.get(*p) != Some(b))
        .map(|(p, _)| p)
        .filter(|p| !is_twin(p))
        .collect();
    let added: BTreeSet<&String> = new_dists.difference(&old_dists).collect();
    assert!(added.iter().all(|d| changed.contains(d)));
    let others: Vec<&&String> = changed.difference(&added).collect();
    assert!(
        others.iter().all(|p| !p.starts_with("authors/id/")),
        "unexpected changed files: {others:?}"
    );
    let fetched_targets: BTreeSet<String> = requests
        .iter()
        .filter(|p| !p.starts_with("tuf/"))
        .cloned()
        .collect();
    let expected_targets: BTreeSet<String> = changed.iter().map(|p| twin(&state2, p)).collect();
    assert_eq!(fetched_targets, expected_targets);

    // Fetched metadata: the root probe, timestamp, snapshot, and only the roles whose
    // version changed.
    let v2 = snapshot_versions(&dest.join("current"));
    let changed_roles: BTreeSet<String> = v2
        .iter()
        .filter(|(role, v)| v1.get(*role) != Some(v))
        .map(|(role, v)| format!("tuf/{v}.{role}"))
        .collect();
    let fetched_roles: BTreeSet<String> = requests
        .iter()
        .filter(|p| p.starts_with("tuf/"))
        .filter(|p| !p.ends_with("root.json") && !p.ends_with("snapshot.json"))
        .filter(|p| *p != "tuf/timestamp.json")
        .cloned()
        .collect();
    assert_eq!(fetched_roles, changed_roles);
    let unchanged_roles = v2.len() - changed_roles.len();
    eprintln!(
        "2024 -> 2026: {} releases added, {} deleted; {} targets fetched of {}; {} roles \
         fetched, {} unchanged roles not fetched",
        added.len(),
        old_dists.difference(&new_dists).count(),
        fetched_targets.len(),
        new_dists.len(),
        changed_roles.len(),
        unchanged_roles
    );
    assert!(unchanged_roles > changed_roles.len());
}

/// Whether a path is a hash-named twin (`<64 hex>.<name>` in its directory).
fn is_twin(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.len() > 65
        && base.as_bytes()[64] == b'.'
        && base[..64].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The twin a consistent-snapshot client fetches for `path`.
fn twin(state: &BTreeMap<String, Vec<u8>>, path: &str) -> String {
    let hash = cpantuf_core::target::sha256_hex(&state[path]);
    let (dir, base) = path.rsplit_once('/').unwrap();
    format!("{dir}/{hash}.{base}")
}
