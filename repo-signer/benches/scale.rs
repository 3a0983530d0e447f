//! Signer benchmark at CPAN scale, against python-tuf in the same run.
//!
//!     CPANTUF_BENCH_MIRRORS=/path/a,/path/b cargo bench -p cpantuf-repo-signer --bench scale
//!
//! Each mirror (made by `cpantuf-fixtures synthetic`) is copied to a scratch
//! tree of hard links, its files read once (page cache warm for both tools),
//! then: `cpantuf-sign init`, a full `publish` (timed,
//! peak RSS by /usr/bin/time), a second full publish, one `add` of a new
//! upload (timed), and `bench/python/sign_mirror.py` (python-tuf, from the
//! venv) over the same mirror. Prints timings and the metadata sizes the
//! issue asks for.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const SIGN: &str = env!("CARGO_BIN_EXE_cpantuf-sign");

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn run(cmd: &mut Command) -> (f64, String, u64) {
    let t = Instant::now();
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("MAXRSS_KIB=%M")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    let out = timed.output().unwrap();
    let secs = t.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{cmd:?} failed: {stderr}");
    let rss = stderr
        .lines()
        .find_map(|l| l.strip_prefix("MAXRSS_KIB="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (secs, String::from_utf8_lossy(&out.stdout).into_owned(), rss)
}

fn gz_len(bytes: &[u8]) -> usize {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap().len()
}

fn newest(tuf: &Path, role: &str) -> Vec<u8> {
    let mut best = (0u64, PathBuf::new());
    for e in std::fs::read_dir(tuf).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(v) = name
            .strip_suffix(&format!(".{role}.json"))
            .and_then(|v| v.parse::<u64>().ok())
        {
            if v > best.0 {
                best = (v, tuf.join(&name));
            }
        }
    }
    std::fs::read(best.1).unwrap()
}

/// Uploads timed per mirror and author (each a new file, one `add` each).
const UPLOADS: usize = 9;

/// `UPLOADS` uploads into `dir`, one `add` each: (median s, min s, peak RSS
/// KiB of the median run). The files are removed afterwards (their entries
/// stay signed; python-tuf's run reads the pristine source mirror).
fn uploads(cfg: &Path, dir: &Path, tag: &str) -> (f64, f64, u64) {
    let mut runs = Vec::new();
    let mut files = Vec::new();
    for i in 0..UPLOADS {
        let upload = dir.join(format!("Bench-Upload-{tag}-{i}.tar.gz"));
        std::fs::write(&upload, format!("bench upload {tag} {i}")).unwrap();
        let mut add = Command::new(SIGN);
        add.arg("add").arg("--config").arg(cfg).arg(&upload);
        let (secs, _, rss) = run(&mut add);
        runs.push((secs, rss));
        files.push(upload);
    }
    for f in files {
        std::fs::remove_file(f).unwrap();
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (median, rss) = runs[UPLOADS / 2];
    (median, runs[0].0, rss)
}

fn bench(src: &Path) {
    let scratch = tempfile::tempdir_in(src.parent().unwrap()).unwrap();
    let mirror = scratch.path().join("mirror");
    // Hard-linked copy: the source stays pristine, the copy costs no disk.
    let st = Command::new("cp")
        .arg("-al")
        .arg(src)
        .arg(&mirror)
        .status()
        .unwrap();
    assert!(st.success());
    let _ = std::fs::remove_dir_all(mirror.join("tuf"));
    // Both tools hash every file; read them all once first so that neither
    // run pays for a cold page cache the other does not.
    let t = Instant::now();
    let st = Command::new("sh")
        .arg("-c")
        .arg("find \"$0\" -type f -print0 | xargs -0 cat > /dev/null")
        .arg(&mirror)
        .status()
        .unwrap();
    assert!(st.success());
    println!(
        "page cache warmed ({:.1} s, untimed)",
        t.elapsed().as_secs_f64()
    );
    let keys = project().join("keys-example");
    let k = |n: &str| keys.join(n);
    let cfg = scratch.path().join("signer.json");
    let mut init = Command::new(SIGN);
    init.arg("init")
        .arg("--mirror")
        .arg(&mirror)
        .arg("--config")
        .arg(&cfg);
    for r in ["root-1.pem", "root-2.pem", "root-3.pem"] {
        init.arg("--root-key").arg(k(r));
    }
    init.args(["--root-threshold", "2", "--targets-threshold", "2"]);
    for t in ["targets-1.pub.pem", "targets-2.pub.pem"] {
        init.arg("--targets-key").arg(k(t));
    }
    for (flag, f) in [
        ("--snapshot-key", "snapshot.pem"),
        ("--timestamp-key", "timestamp.pem"),
        ("--index-key", "index.pem"),
        ("--registry-key", "registry.pem"),
        ("--authors-key", "authors.pem"),
    ] {
        init.arg(flag).arg(k(f));
    }
    init.arg("--no-fsync");
    run(&mut init);
    let mut publish = Command::new(SIGN);
    publish
        .arg("publish")
        .arg("--timings")
        .arg("--config")
        .arg(&cfg)
        .arg("--key")
        .arg(k("targets-1.pem"))
        .arg("--key")
        .arg(k("targets-2.pem"));
    let (full, out, rss) = run(&mut publish);
    println!("== {} ==", src.display());
    print!("{out}");
    println!("cpantuf-sign full publish (first, twins linked): {full:.3} s, peak RSS {rss} KiB");
    let (full2, out2, rss2) = run(&mut publish);
    print!("{out2}");
    println!("cpantuf-sign full publish (again, nothing changed: unchanged roles kept): {full2:.3} s, peak RSS {rss2} KiB");

    // One upload by the first author of the mirror.
    let tuf = mirror.join("tuf");
    let first_author = std::fs::read_dir(&tuf)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.strip_suffix(".json")?
                .split_once(".author-")
                .map(|(_, a)| a.to_owned())
        })
        .min()
        .unwrap();
    let dir = mirror
        .join("authors/id")
        .join(&first_author[..1])
        .join(&first_author[..2])
        .join(&first_author);
    let (one, min, rss_add) = uploads(&cfg, &dir, "first");
    println!(
        "cpantuf-sign add (one upload, whole process, median of {UPLOADS}): {:.1} ms (min {:.1} ms), peak RSS {rss_add} KiB",
        one * 1000.0,
        min * 1000.0
    );

    let snapshot = newest(&tuf, "snapshot");
    let targets = newest(&tuf, "targets");
    // Newest version of each prefix, author and bin role, by name.
    let mut newest_of: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for e in std::fs::read_dir(&tuf).unwrap() {
        let e = e.unwrap();
        let n = e.file_name().to_string_lossy().into_owned();
        let Some((v, role)) = n.strip_suffix(".json").and_then(|s| s.split_once('.')) else {
            continue;
        };
        let Ok(v) = v.parse::<u64>() else { continue };
        if role.starts_with("prefix-") || role.starts_with("author-") {
            let len = e.metadata().unwrap().len();
            let slot = newest_of.entry(role.to_owned()).or_insert((v, len));
            if v >= slot.0 {
                *slot = (v, len);
            }
        }
    }
    let file_of = |role: &str| format!("{}.{role}.json", newest_of[role].0);
    let largest_prefix = newest_of
        .iter()
        .filter(|(r, _)| r.starts_with("prefix-"))
        .map(|(r, (_, len))| (*len, r.clone()))
        .max()
        .unwrap();
    // What a new client fetches for one author's dist: the author role, and
    // for a binned author (ADR 0006) one bin as well: the largest.
    let mut per_author: std::collections::BTreeMap<String, (u64, u64, String)> = Default::default();
    let mut bins = 0;
    for (role, (_, len)) in newest_of.iter().filter(|(r, _)| r.starts_with("author-")) {
        match role.split_once("-bin-") {
            Some((author, _)) => {
                bins += 1;
                let a = per_author.entry(author.to_owned()).or_default();
                if *len > a.1 {
                    a.1 = *len;
                    a.2 = role.clone();
                }
            }
            None => per_author.entry(role.clone()).or_default().0 = *len,
        }
    }
    let binned = per_author.values().filter(|a| a.1 > 0).count();
    let mut author_sizes: Vec<u64> = per_author.values().map(|a| a.0).collect();
    author_sizes.sort();
    let median_author = author_sizes[author_sizes.len() / 2];
    let mut by_cost: Vec<(u64, &String, &(u64, u64, String))> =
        per_author.iter().map(|(a, c)| (c.0 + c.1, a, c)).collect();
    by_cost.sort();
    let (_, worst_author, worst) = by_cost.last().unwrap();
    let largest_leaf = per_author
        .iter()
        .filter(|(_, c)| c.1 == 0)
        .map(|(a, c)| (c.0, a))
        .max()
        .unwrap();
    println!(
        "sizes: snapshot {} B ({} B gz), targets {} B ({} B gz), largest prefix role {} B ({} B gz, {}), median author role {} B, largest unbinned author role {} B ({}); {binned} author(s) binned into {bins} bins",
        snapshot.len(),
        gz_len(&snapshot),
        targets.len(),
        gz_len(&targets),
        largest_prefix.0,
        gz_len(&std::fs::read(tuf.join(file_of(&largest_prefix.1))).unwrap()),
        largest_prefix.1,
        median_author,
        largest_leaf.0,
        largest_leaf.1,
    );
    // A new client installing one dist fetches root, timestamp, snapshot,
    // targets, index (for 02packages), one prefix role, one author role and,
    // if binned, one bin; worst case: the largest prefix and the author
    // whose role plus largest bin is biggest.
    let mut parts = vec![
        std::fs::read(tuf.join("1.root.json")).unwrap(),
        std::fs::read(tuf.join("timestamp.json")).unwrap(),
        snapshot.clone(),
        targets.clone(),
        newest(&tuf, "index"),
        std::fs::read(tuf.join(file_of(&largest_prefix.1))).unwrap(),
        std::fs::read(tuf.join(file_of(worst_author))).unwrap(),
    ];
    if worst.1 > 0 {
        parts.push(std::fs::read(tuf.join(file_of(&worst.2))).unwrap());
    }
    let total: usize = parts.iter().map(|f| gz_len(f)).sum();
    println!(
        "new client, one dist (worst case: {worst_author}{}): {total} B of gzipped metadata (index role excluded: {} B)",
        if worst.1 > 0 { format!(" + {}", worst.2) } else { String::new() },
        total - gz_len(&newest(&tuf, "index"))
    );

    // An upload by the author with the most files (binned: one bin re-signed).
    let (_, big, _) = by_cost.last().unwrap();
    let id = big.trim_start_matches("author-");
    let big_dir = mirror
        .join("authors/id")
        .join(&id[..1])
        .join(&id[..2])
        .join(id);
    let (one_big, min_big, _) = uploads(&cfg, &big_dir, "largest");
    println!(
        "cpantuf-sign add (one upload by {id}, whole process, median of {UPLOADS}): {:.1} ms (min {:.1} ms)",
        one_big * 1000.0,
        min_big * 1000.0
    );

    let py = std::env::var_os("CPANTUF_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| project().join(".venv"))
        .join("bin/python");
    let out_py = scratch.path().join("python-tuf");
    let mut pycmd = Command::new(py);
    pycmd
        .arg(project().join("bench/python/sign_mirror.py"))
        .arg(src)
        .arg(&out_py);
    let (_, py_out, py_rss) = run(&mut pycmd);
    println!("python-tuf: {} (peak RSS {py_rss} KiB)", py_out.trim());
}

fn main() {
    let Some(list) = std::env::var_os("CPANTUF_BENCH_MIRRORS") else {
        eprintln!("set CPANTUF_BENCH_MIRRORS=DIR[,DIR] (mirrors from cpantuf-fixtures synthetic)");
        return;
    };
    for m in list.to_string_lossy().split(',') {
        bench(Path::new(m));
    }
}
