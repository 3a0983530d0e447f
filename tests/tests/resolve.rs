//! `cpantuf resolve`: the derived lookup copy of the verified 02packages is
//! never trusted when it is stale or edited, `--json` has its documented
//! shape, and `--cache-first` answers offline only while the stored
//! metadata is unexpired.

use cpantuf_tests::{bin, run, run_ok, workspace_root, EvilMirror};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

const INDEX: &str = "cache/modules/02packages.details.txt.gz.cpantuf-index";
const MOO_LINE: &str = "Moo                            2.005005  H/HA/HAARG/Moo-2.005005.tar.gz";
const MOO_ANSWER: &str =
    "Moo\t2.005005\tH/HA/HAARG/Moo-2.005005.tar.gz\tsigned by role author-HAARG";

struct Setup {
    repo: tempfile::TempDir,
    mirror: EvilMirror,
    home: tempfile::TempDir,
}

/// A signed copy of the sample mirror, served, and a client that has
/// refreshed once.
fn setup() -> Setup {
    let repo = tempfile::tempdir().unwrap();
    let m = repo.path().join("mirror");
    for d in ["authors", "modules"] {
        cpantuf_tests::copy_tree(&workspace_root().join("sample-mirror").join(d), &m.join(d));
    }
    cpantuf_tests::sign_new_repository(&m, &repo.path().join("signer.json"));
    let mirror = EvilMirror::start(&m);
    let home = tempfile::tempdir().unwrap();
    run_ok(
        Command::new(bin("cpantuf"))
            .arg("--home")
            .arg(home.path())
            .args(["init", &mirror.url(), "--root"])
            .arg(m.join("tuf/1.root.json")),
    );
    let s = Setup { repo, mirror, home };
    run_ok(s.cmd().arg("refresh"));
    s
}

impl Setup {
    fn cmd(&self) -> Command {
        let mut c = Command::new(bin("cpantuf"));
        c.arg("--home")
            .arg(self.home.path())
            .env_remove("CPANTUF_HOME");
        c
    }

    fn resolve(&self, args: &[&str]) -> Output {
        run(self.cmd().arg("resolve").args(args))
    }

    fn index(&self) -> PathBuf {
        self.home.path().join(INDEX)
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

/// Rewrites the derived file with `edit` applied, keeping its mtime (so
/// that only what `edit` changes can give it away).
fn edit_keeping_mtime(p: &Path, edit: impl Fn(&str) -> String) {
    let t = mtime(p);
    let text = std::fs::read_to_string(p).unwrap();
    let new = edit(&text);
    assert_ne!(new, text, "the edit changed nothing");
    std::fs::write(p, new).unwrap();
    File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn assert_real_answer(out: &Output) {
    assert!(out.status.success(), "{}", stderr(out));
    assert_eq!(stdout(out).trim_end(), MOO_ANSWER, "{}", stderr(out));
}

#[test]
fn resolve_builds_the_derived_index_and_answers_from_it() {
    let s = setup();
    assert_real_answer(&s.resolve(&["Moo"]));
    let idx = s.index();
    assert!(idx.is_file(), "no derived index was written");
    let first = mtime(&idx);
    assert_real_answer(&s.resolve(&["Moo"]));
    assert_eq!(mtime(&idx), first, "a current derived index was rebuilt");
    let out = s.resolve(&["No::Such::Module"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not in the verified 02packages index"));
}

/// A derived file whose tag names another sha256 (an older index, or a
/// forged tag) is not used: the answer is rebuilt from the verified file.
#[test]
fn derived_index_with_a_stale_tag_is_rebuilt_not_believed() {
    let s = setup();
    assert_real_answer(&s.resolve(&["Moo"]));
    let idx = s.index();
    let lie = MOO_LINE.replace("2.005005  H", "9.999999  H");
    edit_keeping_mtime(&idx, |t| {
        let (tag, rest) = t.split_once('\n').unwrap();
        let sha = tag.split("sha256=").nth(1).unwrap()[..64].to_owned();
        let stale = tag.replace(&sha, &"0".repeat(64));
        format!("{stale}\n{}", rest.replace(MOO_LINE, &lie))
    });
    assert_real_answer(&s.resolve(&["Moo"]));
    let rebuilt = std::fs::read_to_string(&idx).unwrap();
    assert!(rebuilt.contains(MOO_LINE) && !rebuilt.contains(&lie));
}

/// A derived file edited after cpantuf wrote it (same length, tag intact)
/// is given away by its modification time, and rebuilt.
#[test]
fn edited_derived_index_is_rebuilt_not_believed() {
    let s = setup();
    assert_real_answer(&s.resolve(&["Moo"]));
    let idx = s.index();
    let lie = MOO_LINE.replace("2.005005  H", "9.999999  H");
    let text = std::fs::read_to_string(&idx).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(&idx, text.replace(MOO_LINE, &lie)).unwrap();
    assert_real_answer(&s.resolve(&["Moo"]));
    assert!(!std::fs::read_to_string(&idx).unwrap().contains(&lie));
}

/// A line that is not as PAUSE writes it, in an otherwise matching derived
/// file, makes the whole file count as damaged: warned about and rebuilt.
#[test]
fn damaged_line_in_derived_index_is_rebuilt_not_believed() {
    let s = setup();
    assert_real_answer(&s.resolve(&["Moo"]));
    let idx = s.index();
    let bad = MOO_LINE.replacen("Moo ", "Moo;", 1);
    edit_keeping_mtime(&idx, |t| t.replace(MOO_LINE, &bad));
    let out = s.resolve(&["Moo"]);
    assert_real_answer(&out);
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&idx).unwrap().contains(MOO_LINE));
}

#[test]
fn resolve_json_has_the_documented_shape() {
    let s = setup();
    let out = s.resolve(&["--json", "Moo", "Moo::_Utils"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "one object per module, one per line");
    assert_eq!(
        lines[0],
        serde_json::json!({
            "package": "Moo",
            "version": "2.005005",
            "dist": "H/HA/HAARG/Moo-2.005005.tar.gz",
            "target": "authors/id/H/HA/HAARG/Moo-2.005005.tar.gz",
            "signed_by": "author-HAARG",
            "offline": false,
        })
    );
    assert_eq!(lines[1]["package"], "Moo::_Utils");
    assert_eq!(
        lines[1]["version"],
        serde_json::Value::Null,
        "undef is null"
    );
}

/// With unexpired stored metadata, `--cache-first` makes no request at all
/// and says the answer came from the cache.
#[test]
fn cache_first_resolve_answers_offline_while_metadata_is_unexpired() {
    let s = setup();
    assert_real_answer(&s.resolve(&["Moo"])); // caches the index and Moo's roles
    let before = s.mirror.requests().len();
    let out = s.resolve(&["--cache-first", "--json", "Moo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["offline"], true);
    assert_eq!(v["signed_by"], "author-HAARG");
    assert_eq!(s.mirror.requests().len(), before, "a mirror was contacted");
    let out = s.resolve(&["--cache-first", "Moo"]);
    assert_real_answer(&out);
    assert!(stderr(&out).contains("answered from the verified cache"));
    // Without the flag, resolve refreshes as before.
    assert_real_answer(&s.resolve(&["Moo"]));
    assert!(
        s.mirror.requests().len() > before,
        "resolve no longer refreshes"
    );
}

/// Once the stored metadata has expired, `--cache-first` must refresh, and
/// fails when the mirror only has the same (now expired) metadata.
#[test]
fn cache_first_resolve_refuses_expired_metadata() {
    let s = setup();
    assert_real_answer(&s.resolve(&["Moo"]));
    let out = run(Command::new("faketime")
        .arg("+3 days")
        .arg(bin("cpantuf"))
        .arg("--home")
        .arg(s.home.path())
        .args(["resolve", "--cache-first", "--json", "Moo"]));
    assert!(!out.status.success(), "answered from expired metadata");
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    drop(s.repo);
}
