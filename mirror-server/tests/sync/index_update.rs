//! A CPAN index update on real data: the 2024 and 2026 `02packages` files, cut down to the
//! releases of two authors, published one after the other upstream.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};

use crate::upstream::HttpServer;
use crate::upstream::Upstream;
use crate::{count, tree, Setup};

const AUTHORS: [&str; 2] = ["HAARG", "TODDR"];
const INDEX: &str = "modules/02packages.details.txt.gz";

/// The index lines of `AUTHORS`' releases (no subdirectories), and their mirror paths.
fn subset(file: &str) -> (Vec<u8>, BTreeSet<String>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/cpan-index/");
    let gz = std::fs::read(format!("{path}{file}")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    let (header, body) = text.split_once("\n\n").unwrap();
    let mut lines = Vec::new();
    let mut dists = BTreeSet::new();
    for line in body.lines() {
        let Some(dist) = line.split_whitespace().nth(2) else {
            continue;
        };
        let keep = AUTHORS.iter().any(|a| {
            dist.strip_prefix(&format!("{}/{}/{a}/", &a[..1], &a[..2]))
                .is_some_and(|rest| !rest.contains('/'))
        });
        if keep {
            lines.push(line);
            dists.insert(format!("authors/id/{dist}"));
        }
    }
    let out = format!("{header}\n\n{}\n", lines.join("\n"));
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(out.as_bytes()).unwrap();
    (enc.finish().unwrap(), dists)
}

fn release_bytes(path: &str) -> Vec<u8> {
    format!("placeholder tarball for {path}\n").into_bytes()
}

fn publish(up: &mut Upstream, index: &[u8], dists: &BTreeSet<String>, old: &BTreeSet<String>) {
    up.add_target("targets", INDEX, index);
    for path in old.difference(dists) {
        let id = path.split('/').nth(4).unwrap();
        up.remove_target(&format!("author-{id}"), path);
    }
    for path in dists.difference(old) {
        let id = path.split('/').nth(4).unwrap();
        let role = up.add_author(id);
        up.add_target(&role, path, &release_bytes(path));
    }
    up.publish();
}

#[test]
fn index_update_from_2024_to_2026_fetches_only_new_releases() {
    let s = Setup::new();
    let (index_2024, dists_2024) = subset("02packages.details.2024-01-11.txt.gz");
    let (index_2026, dists_2026) = subset("02packages.details.2026-04-02.txt.gz");
    let mut up = s.up;
    publish(&mut up, &index_2024, &dists_2024, &BTreeSet::new());
    let s = Setup { up, ..s };
    s.sync_ok();
    let first = tree(&s.current());
    assert!(first[INDEX] == index_2024);
    for d in &dists_2024 {
        assert!(first.contains_key(d), "{d}");
    }

    let mut up = s.up;
    publish(&mut up, &index_2026, &dists_2026, &dists_2024);
    let s = Setup { up, ..s };
    let http: &HttpServer = &s.http;
    http.take_log();
    let log = s.sync_ok();
    let new: BTreeSet<_> = dists_2026.difference(&dists_2024).collect();
    let kept = dists_2026.intersection(&dists_2024).count();
    assert!(!new.is_empty() && kept > 0);
    // The same two authors: the change is applied to the served state in place. The new
    // releases and the index are downloaded; the rest is not touched.
    assert!(log.contains("updated state-1 in place"), "{log}");
    let gone: Vec<_> = dists_2024.difference(&dists_2026).collect();
    assert_eq!(count(&log, " downloaded"), new.len() + 1, "{log}");
    assert_eq!(count(&log, " added or changed"), new.len() + 1, "{log}");
    assert_eq!(count(&log, " removed"), gone.len(), "{log}");
    assert_eq!(count(&log, " roles changed"), 3, "{log}");
    let fetched_targets: Vec<String> = http
        .take_log()
        .into_iter()
        .filter(|p| !p.starts_with("tuf/"))
        .collect();
    assert_eq!(fetched_targets.len(), new.len() + 1);
    let served = tree(&s.current());
    assert!(served[INDEX] == index_2026, "index not updated");
    for d in &dists_2026 {
        assert!(served[d] == release_bytes(d), "{d}");
    }
    // A deleted release's plain name goes with the new index; its hash-named twin stays
    // for clients still on the previous snapshot (`--keep-deleted`).
    let retained = std::fs::read_to_string(s.current().join(".sync-retained.json")).unwrap();
    for gone in gone {
        assert!(!served.contains_key(gone), "{gone} still served");
        let hash = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(
            release_bytes(gone),
        ));
        let (dir, base) = gone.rsplit_once('/').unwrap();
        let twin = format!("{dir}/{hash:x}.{base}");
        assert!(served.contains_key(&twin), "{twin} not kept");
        assert!(retained.contains(&twin), "{twin} not listed as retained");
    }
    assert!(kept > 0);
}
