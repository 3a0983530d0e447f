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
