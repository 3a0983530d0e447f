//! What `sync` publishes is read by `serve`, which runs as another user: its files follow the
//! umask (0644 and 0755 under the usual 022), and a stricter umask is honoured.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use crate::{run_ok, Setup, BIN};

/// Runs one sync under `umask`.
fn sync_with_umask(s: &Setup, umask: &str) {
    run_ok(
        Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(BIN)
            .args(s.sync_args()),
    );
}

/// Every file and directory of the served state whose permission bits are not `file` or `dir`.
fn wrong_modes(root: &Path, file: u32, dir: u32) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut stack = vec![std::fs::canonicalize(root).unwrap()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            let (want, name) = (if meta.is_dir() { dir } else { file }, e.path());
            if meta.is_dir() {
                stack.push(name.clone());
            } else {
                files += 1;
            }
            let mode = meta.permissions().mode() & 0o777;
            if mode != want {
                wrong.push(format!("{} {mode:o}", name.display()));
            }
        }
    }
    assert!(files > 10, "only {files} files served");
    wrong
}

#[test]
fn sync_output_is_readable_by_other_users_under_umask_022() {
    let s = Setup::new();
    sync_with_umask(&s, "022");
    assert!(s.current().join("tuf/timestamp.json").is_file());
    let wrong = wrong_modes(&s.current(), 0o644, 0o755);
    assert!(
        wrong.is_empty(),
        "not readable by the server's user: {wrong:?}"
    );
}

#[test]
fn sync_output_honours_a_stricter_umask() {
    let s = Setup::new();
    sync_with_umask(&s, "077");
    let wrong = wrong_modes(&s.current(), 0o600, 0o700);
    assert!(wrong.is_empty(), "umask 077 not honoured: {wrong:?}");
}
