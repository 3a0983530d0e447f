//! What mirror administrators use: the TUF-aware health check and gauges, the start-up
//! warnings, the TOML config file and `check-config`, listen addresses by name, and the JSON
//! access log.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::harness::{build_tree, put_served_metadata, request, Mirror, BIN};

#[path = "../common/listening.rs"]
mod listening;
use listening::spawn_listening;

/// Waits until `/-/health` answers `status`, up to 10 s; returns the last body.
fn health_becomes(m: &Mirror, status: u16) -> String {
    health_says(m, status, "")
}

/// Waits until `/-/health` answers `status` with a body containing `needle`.
fn health_says(m: &Mirror, status: u16, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = m.get("/-/health", &[]);
        let body = String::from_utf8_lossy(&r.body).into_owned();
        if r.status == status && body.contains(needle) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "health stayed {} ({body})",
            r.status
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn health_and_metrics_follow_the_served_timestamp() {
    let m = Mirror::start(&[]);
    assert_eq!(health_becomes(&m, 200), "200 ok\n");
    assert_eq!(m.metric("cpantuf_mirror_served_timestamp_version"), 42.0);
    assert_eq!(m.metric("cpantuf_mirror_served_snapshot_version"), 7.0);
    let left = m.metric("cpantuf_mirror_served_timestamp_expiry_seconds");
    assert!((3000.0..=3600.0).contains(&left), "{left}");
    assert_eq!(m.metric("cpantuf_mirror_served_metadata_ok"), 1.0);
    assert!(m.metric("cpantuf_mirror_certificate_expiry_seconds") > 86_400.0);

    // The sync publishes a timestamp that has already expired: clients will refuse it.
    put_served_metadata(&m.root, Utc::now() - chrono::Duration::minutes(5));
    let why = health_becomes(&m, 503);
    assert!(
        why.starts_with("503 service unavailable: served timestamp version 42 expired at "),
        "{why}"
    );
    assert!(m.admin_get("/health").status == 503);
    assert_eq!(m.metric("cpantuf_mirror_served_metadata_ok"), 0.0);
    assert!(m.metric("cpantuf_mirror_served_timestamp_expiry_seconds") < -250.0);
    assert!(m.stderr().contains("health now fails: served timestamp"));

    // A fresh timestamp: healthy again.
    put_served_metadata(&m.root, Utc::now() + chrono::Duration::hours(2));
    health_becomes(&m, 200);
}

#[test]
fn health_fails_for_a_missing_or_unsigned_timestamp() {
    let m = Mirror::start(&[]);
    health_becomes(&m, 200);
    std::fs::remove_file(m.root.join("tuf/timestamp.json")).unwrap();
    let why = health_becomes(&m, 503);
    assert!(why.contains("tuf/timestamp.json is missing"), "{why}");

    let unsigned = String::from_utf8(crate::harness::served_meta(
        "timestamp",
        43,
        Utc::now() + chrono::Duration::hours(1),
    ))
    .unwrap();
    let start = unsigned.find("[{").unwrap();
    let end = unsigned.find("}]").unwrap() + 2;
    let unsigned = format!("{}[]{}", &unsigned[..start], &unsigned[end..]);
    crate::harness::write_atomic(&m.root.join("tuf/timestamp.json"), unsigned.as_bytes());
    let why = health_says(&m, 503, "unsigned");
    assert!(
        why.ends_with("tuf/timestamp.json is unsigned (no signatures)\n"),
        "{why}"
    );
}

#[test]
fn serve_warns_at_start_about_expired_metadata_and_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    build_tree(&root);
    put_served_metadata(&root, Utc::now() - chrono::Duration::days(1));
    let pki = crate::harness::Pki::new(dir.path());
    pki.issue_until("expired", Some((2021, 1, 1)));
    let out = Command::new(BIN)
        .args(["check-config", "--root"])
        .arg(&root)
        .args(["--listen", "127.0.0.1:0", "--cert"])
        .arg(&pki.cert)
        .arg("--key")
        .arg(&pki.key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("warning: served timestamp version 42 expired"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: the TLS certificate expired at 2021-01-01"),
        "{stdout}"
    );
    // The same warnings from `serve` itself, in its log, before it serves.
    drop(pki);
    let m = Mirror::start_on(dir, root, &[]);
    let log = m.stderr();
    assert!(log.contains("served timestamp version 42 expired"), "{log}");
}

#[test]
fn json_access_log_has_one_object_per_line() {
    let m = Mirror::start(&["--access-log-format", "json"]);
    m.get("/tiny.json", &["User-Agent: cpanm/1.7 \"quoted\""]);
    let log = m.access_log(1);
    let line = log.lines().find(|l| l.contains("/tiny.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["target"], "/tiny.json");
    assert_eq!(v["status"], 200);
    assert_eq!(v["bytes"], 2);
    assert_eq!(v["remote_addr"], "127.0.0.1");
    assert_eq!(v["user_agent"], "cpanm/1.7 \"quoted\"");
    assert_eq!(v["tls"], true);
    assert_eq!(v["complete"], true);
    assert!(v["duration_seconds"].as_f64().unwrap() >= 0.0);
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
}

/// A TOML config for a tree under `dir`.
fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let root = dir.join("mirror");
    if !root.exists() {
        build_tree(&root);
    }
    let file = dir.join("serve.toml");
    let text = format!(
        "root = \"mirror\"\nhttp-listen = [\"localhost:0\"]\nadmin-listen = \"127.0.0.1:0\"\n\
         access-log = \"off\"\nworkers = 1\nidle-timeout = \"2m\"\n{extra}"
    );
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn check_config_prints_the_settings_from_file_and_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), "");
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&file)
        .args(["--max-connections", "77"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let root = dir.path().join("mirror");
    assert!(
        stdout.contains(&format!("root = {}\n", root.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("http-listen = [\"127.0.0.1:0\""),
        "{stdout}"
    );
    assert!(stdout.contains("idle-timeout = 120s\n"), "{stdout}");
    assert!(stdout.contains("max-connections = 77\n"), "{stdout}");
    assert!(
        stdout.ends_with("cpantuf-mirror: configuration ok\n"),
        "{stdout}"
    );
}

#[test]
fn check_config_gives_one_error_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, wanted) in [
        (
            "\nmax-conections = 3\n",
            "line 8: unknown field `max-conections`",
        ),
        (
            "listen = [\":https\"]\n",
            "--listen :https: `https` is not a port number",
        ),
        ("cert = \"nope.pem\"\n", "--cert and --key go together"),
    ] {
        let file = write_config(dir.path(), extra);
        let out = Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("cpantuf-mirror: configuration error: "));
        assert!(stderr.contains(wanted), "{extra}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn serve_runs_from_a_config_file_listening_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), "");
    let mut cmd = Command::new(BIN);
    cmd.args(["-q", "serve", "--config"])
        .arg(&file)
        .args(["--log", "info"]);
    let (mut child, addr, _) = spawn_listening(&mut cmd, "http");
    assert!(addr.ip().is_loopback());
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&request("GET", "/-/health", &["Connection: close"]))
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
}

#[test]
fn quiet_hides_info_and_verbose_is_accepted_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), "");
    // A port already taken: serve logs its first listener (or not), then fails on this one.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    for (flags, info_shown) in [(&["-q"][..], false), (&[][..], true), (&["-v"][..], true)] {
        let mut child = Command::new(BIN)
            .args(flags)
            .args(["serve", "--config"])
            .arg(&file)
            .args(["--admin-listen", &taken, "--http-listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let _ = child.wait();
        assert_eq!(stderr.contains(" INFO "), info_shown, "{flags:?}: {stderr}");
        assert!(!stderr.contains('\u{1b}'), "colour on a pipe: {stderr}");
        let failed = format!("cpantuf-mirror: error: listening on {taken}");
        assert!(stderr.contains(&failed), "{stderr}");
    }
}
