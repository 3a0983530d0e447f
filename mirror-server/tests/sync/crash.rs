//! Crash consistency of `cpantuf-mirror sync`: SIGKILL at random points of a sync from one
//! upstream state to the next, many times. After every kill the served state (`current`) is
//! exactly the old state or exactly the new one, and the next sync completes to the new one.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::upstream::{filler, AUTHOR_DIR, AUTHOR_ROLE};
use crate::{tree, Setup};

/// `cp -a`: the destination with its `current` symlink, states and staging directories.
fn copy_dir(from: &Path, to: &Path) {
    if to.exists() {
        std::fs::remove_dir_all(to).unwrap();
    }
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a failed");
}

fn trials() -> u64 {
    std::env::var("CPANTUF_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

#[test]
fn crash_consistency_sigkill_during_sync() {
    let trials = trials();
    let mut s = Setup::new();
    s.sync_ok();
    let old = tree(&s.current());
    let saved = s.dest.with_file_name("mirror-old");
    copy_dir(&s.dest, &saved);

    // The next upstream state changes every kind of thing a sync handles: new files in an
    // existing author role, a removed file, a new author (new prefix and author roles, a
    // changed top-level targets), a new root version.
    for i in 0..6 {
        s.up.add_target(
            AUTHOR_ROLE,
            &format!("{AUTHOR_DIR}/Crash-{i}.tar.gz"),
            &filler(30_000 + i, 40 + i as u8),
        );
    }
    s.up.remove_target(AUTHOR_ROLE, &format!("{AUTHOR_DIR}/Foo-1.0.tar.gz"));
    let newcomer = s.up.add_author("NEWCOMER");
    s.up.add_target(
        &newcomer,
        "authors/id/N/NE/NEWCOMER/Fresh-0.01.tar.gz",
        &filler(25_000, 77),
    );
    s.up.bump_root();
    s.up.publish();

    // One undisturbed sync gives the new state and the span to spread kill points over.
    let t = Instant::now();
    s.sync_ok();
    let span = t.elapsed().as_micros().max(2_000) as u64 * 3 / 2;
    let new = tree(&s.current());
    assert_ne!(old, new);
    for (path, content) in s.up.targets() {
        assert!(
            new.get(&path) == Some(&content),
            "{path} not in the new state"
        );
    }

    let label = |t: &BTreeMap<String, Vec<u8>>| {
        if *t == old {
            "old"
        } else if *t == new {
            "new"
        } else {
            "mixed"
        }
    };
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let (mut old_states, mut new_states, mut resumed) = (0u32, 0u32, 0u32);
    for i in 0..trials {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        copy_dir(&saved, &s.dest);
        let mut child = s
            .sync_command()
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng % span));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let served = tree(&s.current());
        match label(&served) {
            "old" => old_states += 1,
            "new" => new_states += 1,
            _ => {
                let extra: Vec<_> = served
                    .keys()
                    .filter(|k| !old.contains_key(*k) && !new.contains_key(*k))
                    .collect();
                panic!("trial {i}: served state is neither old nor new (extra files {extra:?})")
            }
        }
        // The admin's next run (cron) completes the sync from whatever was left behind.
        let log = s.sync_ok();
        if log.contains("resuming an interrupted sync") {
            resumed += 1;
        }
        assert!(
            tree(&s.current()) == new,
            "trial {i}: resumed sync did not reach the new state: {log}"
        );
    }
    eprintln!(
        "{trials} SIGKILL trials of sync: {old_states} left the old state, {new_states} the new \
         one; {resumed} next runs resumed a partial download"
    );
    assert_eq!(u64::from(old_states + new_states), trials);
}

/// Whether `path` is a download in flight (written beside its target, hidden).
fn is_part(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with('.') && name.ends_with(".part"))
}

/// The files a client can fetch: hidden names (the sync's own records) are never served.
fn visible(t: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    t.into_iter()
        .filter(|(p, _)| !p.split('/').any(|s| s.starts_with('.')))
        .collect()
}

/// What a client of the served tree sees after a kill, checked against the old and the new
/// version: the timestamp is one of the two, every file of that version is served with its
/// bytes (in the new version, a plain name may still hold the old bytes until it is replaced:
/// the index that names it is one of those), and every served file holds the bytes of the
/// old or the new version: nothing partial, nothing unverified. Returns which version.
fn served_version(
    served: &BTreeMap<String, Vec<u8>>,
    old: &BTreeMap<String, Vec<u8>>,
    new: &BTreeMap<String, Vec<u8>>,
) -> Result<&'static str, String> {
    let ts = served.get("tuf/timestamp.json");
    let (name, view) = if ts == new.get("tuf/timestamp.json") {
        ("new", new)
    } else if ts == old.get("tuf/timestamp.json") {
        ("old", old)
    } else {
        return Err("the served timestamp is neither the old nor the new one".into());
    };
    for (path, bytes) in view {
        let lagging =
            name == "new" && served.get(path).is_some() && served.get(path) == old.get(path);
        if served.get(path) != Some(bytes) && !lagging {
            return Err(format!("{name} version served without {path}"));
        }
    }
    for (path, bytes) in served {
        if old.get(path) != Some(bytes) && new.get(path) != Some(bytes) {
            return Err(format!("{path} holds bytes of neither version"));
        }
    }
    Ok(name)
}

#[test]
fn crash_consistency_sigkill_during_an_in_place_sync() {
    let trials = trials();
    let mut s = Setup::new();
    s.sync_ok();
    let old = visible(tree(&s.current()));
    let saved = s.dest.with_file_name("mirror-old");
    copy_dir(&s.dest, &saved);

    // An upload of several files, a deletion and a new index: applied in place.
    for i in 0..6 {
        s.up.add_target(
            AUTHOR_ROLE,
            &format!("{AUTHOR_DIR}/Crash-{i}.tar.gz"),
            &filler(30_000 + i, 40 + i as u8),
        );
    }
    s.up.remove_target(AUTHOR_ROLE, &format!("{AUTHOR_DIR}/Foo-1.0.tar.gz"));
    s.up.add_target(
        "targets",
        "modules/02packages.details.txt.gz",
        b"the next index",
    );
    s.up.publish();

    let t = Instant::now();
    let log = s.sync_ok();
    assert!(log.contains("updated state-1 in place"), "{log}");
    let span = t.elapsed().as_micros().max(2_000) as u64 * 3 / 2;
    let new = visible(tree(&s.current()));
    assert_ne!(old, new);
    assert_eq!(served_version(&new, &old, &new), Ok("new"));

    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let (mut old_states, mut new_states, mut parts_left) = (0u32, 0u32, 0u32);
    for i in 0..trials {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        copy_dir(&saved, &s.dest);
        let mut child = s
            .sync_command()
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng % span));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let after_kill = tree(&s.current());
        parts_left += u32::from(after_kill.keys().any(|p| is_part(p)));
        match served_version(&visible(after_kill), &old, &new) {
            Ok("old") => old_states += 1,
            Ok(_) => new_states += 1,
            Err(e) => panic!("trial {i}: {e}"),
        }
        let log = s.sync_ok();
        let recovered = tree(&s.current());
        // Downloads the killed run left beside their targets are removed, not kept forever.
        let stale: Vec<&String> = recovered.keys().filter(|p| is_part(p)).collect();
        assert!(
            stale.is_empty(),
            "trial {i}: downloads left behind: {stale:?}"
        );
        assert!(
            visible(recovered) == new,
            "trial {i}: the next sync did not reach the new version: {log}"
        );
    }
    eprintln!(
        "{trials} SIGKILL trials of an in-place sync: {old_states} left the old version, \
         {new_states} the new one, {parts_left} a download in flight"
    );
    assert_eq!(u64::from(old_states + new_states), trials);
}

/// A download cut short by a kill is removed by the next run even when the next version no
/// longer names its file (so no download reuses the name): hidden, never served, yet it would
/// otherwise stay in the served tree for good.
#[test]
fn download_cut_short_by_a_kill_is_removed_when_no_longer_wanted() {
    let mut s = Setup::new();
    s.sync_ok();
    let big = format!("{AUTHOR_DIR}/Big-1.0.tar.gz");
    s.up.add_target(AUTHOR_ROLE, &big, &filler(32 << 20, 9));
    s.up.publish();
    let mut child = s
        .sync_command()
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let in_flight = |s: &Setup| tree(&s.current()).keys().any(|p| is_part(p));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !in_flight(&s) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before its download was seen"
        );
        assert!(Instant::now() < deadline, "no download in flight seen");
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();

    s.up.remove_target(AUTHOR_ROLE, &big);
    s.up.publish();
    let log = s.sync_ok();
    let stale: Vec<String> = tree(&s.current())
        .into_keys()
        .filter(|p| is_part(p))
        .collect();
    assert!(stale.is_empty(), "downloads left behind: {stale:?}\n{log}");
}
