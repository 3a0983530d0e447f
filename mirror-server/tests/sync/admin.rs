//! The sync's administrator-facing parts: the trusted-root pin, the `--trusted-root` name (and
//! the old `--root` spelling the other tests use), and the status file that `serve` turns into
//! its last-sync gauge, over a really synced and signed tree.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output};

use crate::{Setup, BIN};

#[path = "../common/listening.rs"]
mod listening;
use listening::spawn_listening;

/// The sync arguments with the new option name, plus `extra`.
fn sync_trusted_root(s: &Setup, extra: &[&str]) -> Output {
    let args: Vec<std::ffi::OsString> = s
        .sync_args()
        .into_iter()
        .map(|a| {
            if a == "--root" {
                "--trusted-root".into()
            } else {
                a
            }
        })
        .collect();
    Command::new(BIN).args(args).args(extra).output().unwrap()
}

/// The sync arguments with no root file at all, plus `extra`.
fn sync_without_root_file(s: &Setup, extra: &[&str]) -> Output {
    let mut args = s.sync_args();
    let i = args.iter().position(|a| a == "--root").unwrap();
    args.drain(i..i + 2);
    Command::new(BIN).args(args).args(extra).output().unwrap()
}

fn sha256_of(path: &std::path::Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// The one error line of a sync `out` that refused its trust anchor, after checking that it
/// exited 1 and stored and published nothing.
fn refusal(s: &Setup, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(!s.dest.join(".sync/metadata/root.json").exists());
    assert!(!s.current().exists());
    errors[0].to_owned()
}

#[test]
fn root_sha256_refuses_a_root_file_with_another_digest() {
    let s = Setup::new();
    let actual = sha256_of(&s.up.root_file());
    let wrong = "0".repeat(64);
    let error = refusal(&s, &sync_trusted_root(&s, &["--root-sha256", &wrong]));
    assert!(error.contains(&format!("has sha256 {actual}, not the pinned {wrong}")));

    let out = sync_trusted_root(&s, &["--root-sha256", &actual.to_ascii_uppercase()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("published state-1"), "{stderr}");
}

#[test]
fn root_sha256_alone_trusts_the_upstream_root_with_that_digest() {
    let s = Setup::new();
    let pin = sha256_of(&s.up.root_file());
    let out = sync_without_root_file(&s, &["--root-sha256", &pin]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("published state-1"), "{stderr}");
    assert_eq!(
        std::fs::read(s.dest.join(".sync/metadata/root.json")).unwrap(),
        std::fs::read(s.up.root_file()).unwrap()
    );
}

#[test]
fn root_sha256_alone_refuses_an_upstream_root_with_another_digest() {
    let s = Setup::new();
    let wrong = "0".repeat(64);
    let error = refusal(&s, &sync_without_root_file(&s, &["--root-sha256", &wrong]));
    assert!(error.contains(&format!(
        "no root on the upstream has the pinned sha256 {wrong}"
    )));
    assert!(error.contains(&format!("has sha256 {}", sha256_of(&s.up.root_file()))));
}

#[test]
fn sync_without_trusted_root_or_pin_is_a_usage_error() {
    let s = Setup::new();
    let out = sync_without_root_file(&s, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--trusted-root"));
}

#[test]
fn root_sha256_must_be_64_hex_digits() {
    let s = Setup::new();
    let out = sync_trusted_root(&s, &["--root-sha256", "abc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be 64 hex digits"));
}

/// `serve` over `root` with an admin listener; returns the process and the admin address.
fn serve_with_admin(root: &std::path::Path) -> (std::process::Child, SocketAddr) {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--root"])
        .arg(root)
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--access-log", "off", "--workers", "1"]);
    let (child, addr, before) = spawn_listening(&mut cmd, "admin");
    let warnings: Vec<String> = before.into_iter().filter(|l| l.contains("WARN")).collect();
    assert!(warnings.is_empty(), "start-up warnings: {warnings:?}");
    (child, addr)
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn synced_tree_is_healthy_and_its_sync_time_is_in_the_metrics() {
    let s = Setup::new();
    let before = chrono::Utc::now().timestamp();
    s.sync_ok();
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.dest.join(".sync/status.json")).unwrap()).unwrap();
    assert_eq!(status["state"], "state-1");
    assert_eq!(status["published"], true);

    let (mut child, admin) = serve_with_admin(&s.current());
    let health = get(admin, "/health");
    let metrics = get(admin, "/metrics");
    let _ = child.kill();
    let _ = child.wait();
    assert!(health.starts_with("HTTP/1.1 200 "), "{health}");
    let value = |name: &str| -> i64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    // The upstream's timestamp and snapshot are both version 1, signed and in date.
    assert_eq!(value("cpantuf_mirror_served_timestamp_version"), 1);
    assert_eq!(value("cpantuf_mirror_served_snapshot_version"), 1);
    assert!(value("cpantuf_mirror_served_timestamp_expiry_seconds") > 0);
    assert_eq!(value("cpantuf_mirror_served_metadata_ok"), 1);
    let synced = value("cpantuf_mirror_last_sync_success_timestamp_seconds");
    assert!(synced >= before - 1 && synced <= chrono::Utc::now().timestamp() + 1);
}
