//! Interop, python-tuf writes and cpantuf reads: python-tuf's Metadata API
//! builds repositories (`tests/interop/make_repos.py`: valid ones with
//! ed25519, ECDSA and mixed keys, nested, terminating and hashed-bin
//! delegations, root rotation; and tampered ones), `serve_dir.py` serves
//! them on 127.0.0.1, and cpantuf's updater must do exactly what each
//! scenario's `scenario.json` says.
//!
//! Needs the venv made by `scripts/setup-test-deps.sh` (`.venv/`, or
//! `CPANTUF_VENV`); without it these tests fail with that instruction.

use cpantuf_client::fetcher::FetchConfig;
use cpantuf_client::updater::{ClientError, Updater, UpdaterConfig};
use cpantuf_core::workflow::Limits;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn python() -> PathBuf {
    let venv = std::env::var_os("CPANTUF_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join(".venv"));
    let py = venv.join("bin/python");
    assert!(
        py.is_file(),
        "python-tuf venv not found at {}: run scripts/setup-test-deps.sh first",
        venv.display()
    );
    py
}

struct Fixture {
    dir: tempfile::TempDir,
    port: u16,
    _server: ServerGuard,
}

struct ServerGuard(Child);
impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds every scenario once and serves them for the whole test binary.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let py = python();
        let dir = tempfile::tempdir().unwrap();
        let script = project_root().join("tests/interop/make_repos.py");
        let status = Command::new(&py)
            .arg(&script)
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "make_repos.py failed");
        let mut child = Command::new(&py)
            .arg(project_root().join("tests/interop/serve_dir.py"))
            .arg(dir.path())
            .arg("--exit-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .parse()
            .expect("serve_dir.py prints its port first");
        Fixture {
            dir,
            port,
            _server: ServerGuard(child),
        }
    })
}

fn run_scenario(name: &str) {
    let f = fixture();
    let scen_dir = f.dir.path().join(name);
    let scenario: Value =
        serde_json::from_slice(&std::fs::read(scen_dir.join("scenario.json")).unwrap()).unwrap();
    let md = tempfile::tempdir().unwrap();
    std::fs::copy(
        scen_dir.join("initial_root.json"),
        md.path().join("root.json"),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{}/{name}", f.port);
    let mut up = Updater::new(UpdaterConfig {
        metadata_dir: md.path().to_owned(),
        metadata_url: format!("{base}/metadata/"),
        targets_url: format!("{base}/targets/"),
        limits: Limits::default(),
        fetch: FetchConfig::default(),
    })
    .unwrap();
    let root_before = std::fs::read(md.path().join("root.json")).unwrap();
    let refreshed = up.refresh();
    match scenario["refresh_expect"].as_str().unwrap() {
        "ok" => {
            refreshed.unwrap_or_else(|e| panic!("{name}: refresh must succeed: {e}"));
            let want = scenario["trusted_root_version"].as_u64().unwrap();
            assert_eq!(
                up.trusted().unwrap().root().version.get(),
                want,
                "{name}: trusted root version"
            );
        }
        _ => {
            let err = refreshed.expect_err(&format!("{name}: refresh must be refused"));
            eprintln!("{name}: refused as expected: {err}");
            // Trusted state intact: only the initial root, unchanged.
            assert_eq!(
                std::fs::read(md.path().join("root.json")).unwrap(),
                root_before
            );
            // ... and the refused role was not written.
            let refused_file = match name {
                "bad_snapshot_signature" => "snapshot.json",
                "targets_signed_by_wrong_key" | "snapshot_hash_mismatch_for_targets" => {
                    "targets.json"
                }
                "expired_timestamp" => "timestamp.json",
                _ => "2.root.json",
            };
            assert!(
                !md.path().join(refused_file).exists(),
                "{name}: {refused_file} must not be stored"
            );
            return;
        }
    }
    for d in scenario["downloads"].as_array().unwrap() {
        let target = d["target"].as_str().unwrap();
        let dest = out.path().join(target.replace('/', "_"));
        let result = up
            .target_info(target)
            .and_then(|found| up.download_target(&found, &dest));
        match d["expect"].as_str().unwrap() {
            "ok" => {
                result.unwrap_or_else(|e| panic!("{name}: {target} must download: {e}"));
                let got = hex::encode(Sha256::digest(std::fs::read(&dest).unwrap()));
                assert_eq!(got, d["sha256"].as_str().unwrap(), "{name}: {target} bytes");
            }
            _ => {
                let err =
                    result.expect_err(&format!("{name}: {target} must be refused ({})", d["why"]));
                eprintln!("{name}: {target} refused as expected: {err}");
                assert!(
                    !dest.exists(),
                    "{name}: refused bytes must not reach the destination"
                );
                assert!(
                    matches!(err, ClientError::TargetNotFound(_) | ClientError::Update(_)),
                    "{name}: unexpected error kind {err:?}"
                );
            }
        }
    }
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => { $( #[test] fn $name() { run_scenario(stringify!($name)); } )* };
}

scenarios!(
    ed25519_basic,
    ecdsa_keys,
    mixed_key_types_threshold,
    nested_delegations,
    terminating_delegation,
    non_terminating_delegation_fallthrough,
    hashed_bins,
    root_rotation,
    tampered_target,
    bad_snapshot_signature,
    targets_signed_by_wrong_key,
    delegated_role_signs_outside_its_paths,
    expired_timestamp,
    rollback_of_root_rotation_missing_old_signature,
    length_mismatch_in_targets,
    delegated_threshold_not_met,
    snapshot_hash_mismatch_for_targets,
);

/// Every scenario the generator knows is covered by a test above.
#[test]
fn every_generated_scenario_has_a_test() {
    let out = Command::new(python())
        .arg(project_root().join("tests/interop/make_repos.py"))
        .arg("--list")
        .output()
        .unwrap();
    let listed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let src = include_str!("interop_python_tuf.rs");
    for name in &listed {
        assert!(
            src.contains(&format!("    {name},")),
            "scenario {name} has no test"
        );
    }
    assert!(listed.len() >= 17);
}
