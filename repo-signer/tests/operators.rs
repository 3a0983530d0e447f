//! What a PAUSE operator meets when something is wrong (issue 17): the
//! message for a wrong key file, `status` as a monitoring check, passphrases.

mod common;
use common::*;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A wrong signer key read "no key given for role timestamp", naming
/// neither the configured file nor the key it holds.
#[test]
fn a_wrong_timestamp_key_file_is_named_with_the_key_it_holds() {
    let (tmp, _mirror, cfg) = signed_sample();
    let other = tmp.path().join("other-timestamp.pem");
    ok(sign(&["keygen", other.to_str().unwrap()]));
    let mut conf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    conf["online_keys"]["timestamp"] = other.to_str().unwrap().into();
    std::fs::write(&cfg, conf.to_string()).unwrap();
    let out = sign(&["timestamp", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains(other.to_str().unwrap()), "{err}");
    assert!(err.contains("which root does not name"), "{err}");
    assert!(!err.contains("no key given"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `status` exited 0 whatever had expired: a monitoring check could not use it.
#[test]
fn status_exits_4_when_a_role_expires_within_the_warning_window() {
    let (_tmp, _mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let fresh = sign(&["status", "--config", cfg]);
    assert_eq!(fresh.status.code(), Some(0), "{}", stderr_of(&fresh));
    let online = sign(&["status", "--config", cfg, "--warn-within", "400days"]);
    assert_eq!(online.status.code(), Some(4), "{}", stderr_of(&online));
    let out = String::from_utf8_lossy(&online.stdout).into_owned();
    let renew = |role: &str| {
        out.lines()
            .any(|l| l.starts_with(role) && l.ends_with("<- renew"))
    };
    assert!(renew("timestamp") && !renew("root"), "{out}");
    let offline = sign(&[
        "status",
        "--config",
        cfg,
        "--warn-offline-within",
        "4000days",
    ]);
    assert_eq!(offline.status.code(), Some(4));
    let out = String::from_utf8_lossy(&offline.stdout).into_owned();
    assert!(
        out.lines()
            .any(|l| l.starts_with("root") && l.ends_with("<- renew")),
        "{out}"
    );
}

/// An encrypted key with no passphrase given and no terminal to ask on is
/// one line that says how to give it; with a terminal it is asked for
/// (not echoed), which a test cannot type.
/// `cpantuf-sign ARGS` with no passphrase in its environment and no terminal.
fn sign_without_passphrase(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cpantuf-sign"))
        .args(args)
        .env_remove("CPANTUF_SIGN_PASSPHRASE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn an_encrypted_key_without_a_passphrase_says_how_to_give_one() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("k.pem");
    let key_arg = key.to_str().unwrap();
    let out = sign_without_passphrase(&["keygen", "--encrypt", key_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("no terminal to ask on"), "{out:?}");
    assert!(!key.exists());
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_cpantuf-sign"))
        .args(["keygen", "--encrypt", key_arg])
        .env("CPANTUF_SIGN_PASSPHRASE", "correct horse")
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr_of(&made));
    let (_repo, _mirror, cfg) = signed_sample();
    let cfg = cfg.to_str().unwrap();
    let out = sign_without_passphrase(&["publish", "--config", cfg, "--key", key_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("needs a passphrase"), "{out:?}");
}

#[test]
fn every_subcommand_help_names_the_exit_statuses() {
    for sub in [
        "keygen",
        "init",
        "publish",
        "add",
        "remove",
        "index",
        "timestamp",
        "status",
        "author",
        "root",
        "targets",
        "verify",
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cpantuf-sign"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub}");
        assert!(
            help.contains("Exit status: 0 success"),
            "{sub} --help: {help}"
        );
    }
}
