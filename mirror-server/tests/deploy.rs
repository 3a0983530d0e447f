//! The shipped deployment files (`deploy/`): the systemd units pass `systemd-analyze verify`
//! (where it is installed), and every command line they and the container image run parses
//! with the real binary, against the shipped config files.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cpantuf-mirror");
const INSTALLED: &str = "/usr/local/bin/cpantuf-mirror";
const UNITS: [&str; 3] = [
    "cpantuf-mirror-serve.service",
    "cpantuf-mirror-sync.service",
    "cpantuf-mirror-sync.timer",
];

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(deploy().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The values of `key=` in a unit file, continuation lines joined.
fn directive(unit: &str, key: &str) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

/// The stdout of `out`, after checking that it exited 0 (else failing with its stderr).
fn stdout_of_success(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A directory standing in for `/etc/cpantuf` and `/srv/cpan`: a mirror tree, a certificate
/// pair, and `file` (a shipped config) with its paths moved there.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("srv/cpan/state-1");
        std::fs::create_dir_all(tree.join("tuf")).unwrap();
        std::os::unix::fs::symlink("state-1", dir.path().join("srv/cpan/current")).unwrap();
        let tls = dir.path().join("etc/cpantuf/tls");
        std::fs::create_dir_all(&tls).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(tls.join("fullchain.pem"), cert.pem()).unwrap();
        std::fs::write(tls.join("privkey.pem"), key.serialize_pem()).unwrap();
        std::fs::create_dir_all(dir.path().join("var/log/cpantuf")).unwrap();
        Site { dir }
    }

    /// `text` with the absolute paths of the deployment moved under the site.
    fn localise(&self, text: &str) -> String {
        let base = self.dir.path().display().to_string();
        text.replace(INSTALLED, BIN)
            .replace("/etc/cpantuf", &format!("{base}/etc/cpantuf"))
            .replace("/srv/cpan", &format!("{base}/srv/cpan"))
            .replace("/var/log/cpantuf", &format!("{base}/var/log/cpantuf"))
    }

    /// Installs a shipped config file as `etc/cpantuf/serve.toml`.
    fn install_config(&self, rel: &str) {
        let text = self.localise(&read(rel));
        std::fs::write(self.dir.path().join("etc/cpantuf/serve.toml"), text).unwrap();
    }

    /// Runs one command line (already localised), split on whitespace as systemd would for
    /// these unquoted lines.
    fn run(&self, line: &str) -> std::process::Output {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], BIN, "{line}");
        Command::new(words[0]).args(&words[1..]).output().unwrap()
    }
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        println!("skipped: systemd-analyze is not installed");
        return;
    };
    assert!(probe.status.success());
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for unit in UNITS {
        // The binary where the test built it: verify checks that ExecStart is executable.
        let text = read(&format!("systemd/{unit}")).replace(INSTALLED, BIN);
        let path = dir.path().join(unit);
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown keys and bad values are only warnings: they fail this test too.
    assert!(stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn serve_unit_command_lines_check_out_with_the_shipped_config() {
    let site = Site::new();
    site.install_config("config/serve.toml");
    let unit = site.localise(&read("systemd/cpantuf-mirror-serve.service"));
    let pre = directive(&unit, "ExecStartPre");
    let start = directive(&unit, "ExecStart");
    assert_eq!((pre.len(), start.len()), (1, 1));
    stdout_of_success(&site.run(&pre[0]));
    // `serve` itself would bind :443; `check-config` takes the same arguments and stops there.
    assert!(start[0].contains(" serve "), "{}", start[0]);
    let stdout = stdout_of_success(&site.run(&start[0].replace(" serve ", " check-config ")));
    assert!(stdout.contains("listen = [\"[::]:443\"]"), "{stdout}");
    assert!(stdout.contains("admin-listen = 127.0.0.1:9464"), "{stdout}");
}

#[test]
fn sync_unit_command_line_parses() {
    let site = Site::new();
    let unit = site.localise(&read("systemd/cpantuf-mirror-sync.service"));
    let start = directive(&unit, "ExecStart");
    assert_eq!(start.len(), 1);
    // No root file in the stand-in /etc/cpantuf: the arguments parse (a usage error would be
    // exit 2), and the run stops at the first thing it reads, before any network access.
    let out = site.run(&start[0]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("reading the root"), "{stderr}");
    assert!(unit.contains("User=cpantuf-sync"));
    let serve = read("systemd/cpantuf-mirror-serve.service");
    assert!(
        serve.contains("User=cpantuf\n"),
        "serve and sync run as different users"
    );
}

#[test]
fn container_image_files_exist_and_its_command_checks_out() {
    let containerfile = read("Containerfile");
    for line in containerfile
        .lines()
        .filter(|l| l.starts_with("COPY deploy/"))
    {
        let src = line.split_whitespace().nth(1).unwrap();
        assert!(deploy().join("..").join(src).is_file(), "{line}");
    }
    let cmd_line = containerfile
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .expect("a CMD");
    let cmd: Vec<String> = serde_json::from_str(cmd_line).unwrap();
    assert_eq!(cmd[0], "serve");
    let site = Site::new();
    site.install_config("config/container-serve.toml");
    let args: Vec<String> = std::iter::once("check-config".to_owned())
        .chain(cmd[1..].iter().map(|a| site.localise(a)))
        .collect();
    let stdout = stdout_of_success(&Command::new(BIN).args(&args).output().unwrap());
    assert!(stdout.contains("listen = [\"0.0.0.0:8443\"]"), "{stdout}");
    assert!(stdout.contains("access-log-format = json"), "{stdout}");
}
