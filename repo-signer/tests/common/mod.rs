//! Helpers shared by the signer's integration tests: the signed sample
//! mirror, running `cpantuf-sign`, and the claim steps of author ETHER.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

pub const SIGN: &str = env!("CARGO_BIN_EXE_cpantuf-sign");

pub fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn keys() -> PathBuf {
    project().join("keys-example")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

pub fn sign(args: &[&str]) -> std::process::Output {
    Command::new(SIGN).args(args).output().unwrap()
}

pub fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "cpantuf-sign failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn fails(out: std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success");
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
}

pub const SUB_FILE: &str = "authors/id/E/ET/ETHER/sub/dir/Extra-0.01.tar.gz";
pub const TRY_TINY: &str = "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz";
pub const MOO: &str = "authors/id/H/HA/HAARG/Moo-2.005005.tar.gz";
pub const PACKAGES: &str = "modules/02packages.details.txt.gz";

/// A signed copy of the sample mirror plus a file two directories below an
/// author directory. Returns (tempdir, mirror, config).
pub fn signed_sample() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    copy_dir(
        &project().join("sample-mirror/authors"),
        &mirror.join("authors"),
    );
    copy_dir(
        &project().join("sample-mirror/modules"),
        &mirror.join("modules"),
    );
    let sub = mirror.join(SUB_FILE);
    std::fs::create_dir_all(sub.parent().unwrap()).unwrap();
    std::fs::write(&sub, b"not really a tarball, but signed like one\n").unwrap();
    let cfg = tmp.path().join("signer.json");
    let k = |n: &str| keys().join(n).to_str().unwrap().to_owned();
    ok(sign(&[
        "init",
        "--mirror",
        mirror.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--root-key",
        &k("root-1.pem"),
        "--root-key",
        &k("root-2.pem"),
        "--root-key",
        &k("root-3.pem"),
        "--root-threshold",
        "2",
        "--targets-key",
        &k("targets-1.pub.pem"),
        "--targets-key",
        &k("targets-2.pub.pem"),
        "--targets-threshold",
        "2",
        "--snapshot-key",
        &k("snapshot.pem"),
        "--timestamp-key",
        &k("timestamp.pem"),
        "--index-key",
        &k("index.pem"),
        "--registry-key",
        &k("registry.pem"),
        "--authors-key",
        &k("authors.pem"),
        "--no-fsync",
    ]));
    ok(sign(&[
        "publish",
        "--config",
        cfg.to_str().unwrap(),
        "--key",
        &k("targets-1.pem"),
        "--key",
        &k("targets-2.pem"),
    ]));
    (tmp, mirror, cfg)
}

/// A full `publish` with both demo targets keys; its report line.
pub fn publish_with_targets_keys(cfg: &str) -> String {
    ok(sign(&[
        "publish",
        "--config",
        cfg,
        "--key",
        keys().join("targets-1.pem").to_str().unwrap(),
        "--key",
        keys().join("targets-2.pem").to_str().unwrap(),
    ]))
}

/// `verify` of the whole repository from its first root.
pub fn audit(mirror: &Path) -> std::process::Output {
    sign(&[
        "verify",
        "--mirror",
        mirror.to_str().unwrap(),
        "--root",
        mirror.join("tuf/1.root.json").to_str().unwrap(),
    ])
}

/// [`audit`], which must find nothing; its report.
pub fn verify_from_first_root(mirror: &Path) -> String {
    ok(audit(mirror))
}

/// Sets one field of the signer configuration file.
pub fn set_config(cfg: &Path, field: &str, value: serde_json::Value) {
    let mut conf: serde_json::Value = serde_json::from_slice(&std::fs::read(cfg).unwrap()).unwrap();
    conf[field] = value;
    std::fs::write(cfg, conf.to_string()).unwrap();
}

/// PAUSE exports ETHER's role to `p`.
pub fn export_ether(cfg: &str, p: &str) {
    ok(sign(&[
        "author", "export", "--config", cfg, "ETHER", "--out", p,
    ]));
}

/// ETHER signs the role file `p` offline with ETHER's demo key.
pub fn ether_signs(p: &str) -> std::process::Output {
    let key = keys().join("author-ETHER.pem");
    sign(&["author", "sign", p, "--key", key.to_str().unwrap()])
}

/// PAUSE imports `p`, registering ETHER's demo public key (claim): in an
/// offline session, since claimed authors are delegated by top-level targets.
pub fn import_claiming_ether(cfg: &str, p: &str) -> std::process::Output {
    let key = keys().join("author-ETHER.pub.pem");
    let (t1, t2) = (keys().join("targets-1.pem"), keys().join("targets-2.pem"));
    sign(&[
        "author",
        "import",
        "--config",
        cfg,
        "ETHER",
        p,
        "--claim-key",
        key.to_str().unwrap(),
        "--key",
        t1.to_str().unwrap(),
        "--key",
        t2.to_str().unwrap(),
    ])
}

/// Replaces a file (not through its hard links) with other bytes of the
/// same length.
pub fn tamper(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, bytes).unwrap();
}

pub fn twin(mirror: &Path, target: &str) -> PathBuf {
    let bytes = std::fs::read(mirror.join(target)).unwrap();
    let hash = cpantuf_core::target::sha256_hex(&bytes);
    let (dir, base) = target.rsplit_once('/').unwrap();
    mirror.join(dir).join(format!("{hash}.{base}"))
}

/// Snapshot of every file under `tuf/` (name -> bytes).
pub fn tuf_state(mirror: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(mirror.join("tuf"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// The newest `N.ROLE.json` version on disk.
pub fn newest_version(mirror: &Path, role: &str) -> u64 {
    std::fs::read_dir(mirror.join("tuf"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(&format!(".{role}.json"))?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0)
}
