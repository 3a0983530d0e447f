//! Benchmark: parse + canonicalise + threshold-verify a large snapshot and a
//! 5 MB targets file with 14,000 delegations (CPAN's per-author layout at
//! full scale, if it were flat). Prints medians; run with
//! `cargo bench -p cpantuf-core --bench verify`.
//!
//! Goal (issue 2): the 5 MB targets verified in at most 30 ms.

use cpantuf_core::canonical;
use cpantuf_core::crypto::Ed25519Signer;
use cpantuf_core::metadata::{
    signed_value, DelegatedRole, Delegations, Envelope, MetaFile, RoleMeta, Snapshot, Targets,
    SPEC_VERSION,
};
use cpantuf_core::verify::{verify_role, Authority};
use serde_json::json;
use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

fn sign_doc<T: RoleMeta + serde::Serialize>(signer: &Ed25519Signer, signed: &T) -> Vec<u8> {
    let value = signed_value(signed);
    let canon = canonical::encode(&value).unwrap();
    let doc = json!({
        "signatures": [{"keyid": signer.keyid().0, "sig": signer.sign_hex(&canon)}],
        "signed": value,
    });
    serde_json::to_vec(&doc).unwrap()
}

fn expires() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::days(365)
}

fn big_targets(signer: &Ed25519Signer, roles: usize) -> Vec<u8> {
    let mut keys = BTreeMap::new();
    let mut list = Vec::with_capacity(roles);
    for i in 0..roles {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        let k = Ed25519Signer::from_seed(&seed);
        keys.insert(k.keyid().clone(), k.public_key().clone());
        let id = format!("AUTHOR{i:05}");
        let dir = format!("authors/id/{}/{}/{id}", &id[..1], &id[..2]);
        list.push(DelegatedRole {
            name: format!("author-{id}"),
            keyids: vec![k.keyid().clone()],
            threshold: NonZeroU64::MIN,
            terminating: true,
            paths: Some(vec![format!("{dir}/*"), format!("{dir}/*/*")]),
            path_hash_prefixes: None,
        });
    }
    let t = Targets {
        spec_version: SPEC_VERSION.into(),
        version: NonZeroU64::MIN,
        expires: expires(),
        targets: BTreeMap::new(),
        delegations: Some(Delegations {
            keys,
            roles: Some(list),
            succinct_roles: None,
        }),
    };
    sign_doc(signer, &t)
}

fn big_snapshot(signer: &Ed25519Signer, entries: usize) -> Vec<u8> {
    let meta = (0..entries)
        .map(|i| {
            (
                format!("author-AUTHOR{i:05}.json"),
                MetaFile {
                    version: NonZeroU64::new(1 + (i as u64 % 97)).unwrap(),
                    length: None,
                    hashes: None,
                },
            )
        })
        .collect();
    let s = Snapshot {
        spec_version: SPEC_VERSION.into(),
        version: NonZeroU64::MIN,
        expires: expires(),
        meta,
    };
    sign_doc(signer, &s)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench<F: FnMut()>(name: &str, bytes: usize, runs: usize, mut f: F) -> Duration {
    f(); // warm-up
    let times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    let m = median(times.clone());
    let min = times.iter().min().unwrap();
    println!(
        "{name:<44} {:>9.2} MB  median {:>8.2} ms  min {:>8.2} ms  ({runs} runs)",
        bytes as f64 / 1e6,
        m.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3
    );
    m
}

fn main() {
    let signer = Ed25519Signer::from_seed(&[42; 32]);
    let mut keys = BTreeMap::new();
    keys.insert(signer.keyid().clone(), signer.public_key().clone());
    let keyids = vec![signer.keyid().clone()];
    let auth = Authority {
        keys: &keys,
        keyids: &keyids,
        threshold: NonZeroU64::MIN,
    };

    // `cargo test --all-targets` runs this without `--bench`: a small smoke
    // run then, so the benchmark code stays exercised but CI stays fast.
    let full = std::env::args().any(|a| a == "--bench");
    let (n_roles, n_entries, runs) = if full {
        (14_000, 10_000, 30)
    } else {
        (200, 200, 1)
    };
    let targets = big_targets(&signer, n_roles);
    let snapshot = big_snapshot(&signer, n_entries);
    println!("cpantuf-core verify benchmark");
    let t = bench(
        "targets with delegations: parse+verify",
        targets.len(),
        runs,
        || {
            let env = Envelope::<Targets>::from_bytes(&targets).unwrap();
            let v = verify_role("targets", env, auth).unwrap();
            assert_eq!(
                v.delegations
                    .as_ref()
                    .unwrap()
                    .roles
                    .as_ref()
                    .unwrap()
                    .len(),
                n_roles
            );
        },
    );
    bench(
        "snapshot, 10,000 entries: parse+verify",
        snapshot.len(),
        50,
        || {
            let env = Envelope::<Snapshot>::from_bytes(&snapshot).unwrap();
            verify_role("snapshot", env, auth).unwrap();
        },
    );
    bench(
        "targets: strict JSON parse only",
        targets.len(),
        runs,
        || {
            canonical::parse(&targets).unwrap();
        },
    );
    // Where the time goes.
    let doc: serde_json::Value = serde_json::from_slice(&targets).unwrap();
    let signed = canonical::encode(&doc["signed"]).unwrap();
    bench(
        "  part: canonical-form scan of signed",
        signed.len(),
        runs,
        || {
            assert!(canonical::scan_canonical(&signed).is_some());
        },
    );
    bench("  part: typed parse of signed", signed.len(), runs, || {
        let _: Targets = serde_json::from_slice(&signed).unwrap();
    });
    let sig = signer.sign_hex(&signed);
    bench(
        "  part: one ed25519 verification",
        signed.len(),
        runs,
        || {
            cpantuf_core::crypto::verify_signature(signer.public_key(), &sig, &signed).unwrap();
        },
    );
    if !full {
        return;
    }
    let goal = Duration::from_millis(30);
    println!(
        "goal: 5 MB targets verified in <= 30 ms: {} ({:.2} ms)",
        if t <= goal { "MET" } else { "NOT MET" },
        t.as_secs_f64() * 1e3
    );
}
