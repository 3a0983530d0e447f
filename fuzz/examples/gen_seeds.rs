//! Writes the seed corpora into `corpus/<target>/` (run from `fuzz/`:
//! `cargo run --example gen_seeds`). Deterministic: keys come from fixed
//! seeds and the reference time is fixed, so rerunning rewrites the same
//! files. The 02packages gzip seed is copied from the sample mirror.

use cpantuf_core::canonical;
use cpantuf_fuzz::Fixture;
use std::fs;
use std::path::Path;

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn with(sel: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![sel];
    v.extend_from_slice(bytes);
    v
}

fn main() {
    let fx = Fixture::new();
    let docs: [(&str, &[u8]); 6] = [
        ("root", &fx.root),
        ("root2", &fx.root2),
        ("timestamp", &fx.timestamp),
        ("snapshot", &fx.snapshot),
        ("targets", &fx.targets),
        ("authors", &fx.authors),
    ];

    // metadata_parse: selector byte (0 root, 1 timestamp, 2 snapshot,
    // 3 targets) + a signed document; plus canonical and pretty forms.
    for (name, bytes) in docs {
        let sel = match name {
            "root" | "root2" => 0,
            "timestamp" => 1,
            "snapshot" => 2,
            _ => 3,
        };
        put("metadata_parse", &format!("{name}.json"), &with(sel, bytes));
        let v = canonical::parse(bytes).unwrap();
        put(
            "metadata_parse",
            &format!("{name}.canonical.json"),
            &with(sel, &canonical::encode(&v).unwrap()),
        );
        put(
            "metadata_parse",
            &format!("{name}.pretty.json"),
            &with(sel, &serde_json::to_vec_pretty(&v).unwrap()),
        );
    }
    put(
        "metadata_parse",
        "escapes.json",
        &with(
            3,
            "{\"a\\\\\":[1,-2,\"\\\"q\\u00e9\\n\",null,true],\"\u{e9}\":{}}".as_bytes(),
        ),
    );

    // state_machine: control byte (see the target) + document.
    let slots = [
        ("root2", 0u8, &fx.root2),
        ("timestamp", 1, &fx.timestamp),
        ("snapshot", 2, &fx.snapshot),
        ("targets", 3, &fx.targets),
        ("authors", 4, &fx.authors),
        ("root", 5, &fx.root),
    ];
    for (name, slot, bytes) in slots {
        put(
            "state_machine",
            &format!("{slot}-{name}.json"),
            &with(slot, bytes),
        );
        put(
            "state_machine",
            &format!("{slot}-{name}-twice.json"),
            &with(slot | 16, bytes),
        );
    }
    put("state_machine", "6-valid-run", &[6]);
    put("state_machine", "14-valid-run-local-snapshot", &[6 | 8]);
    for (role, value) in &fx.signed {
        let slot = match *role {
            "root" => 0u8,
            "timestamp" => 1,
            "snapshot" => 2,
            "targets" => 3,
            _ => 4,
        };
        let canon = canonical::encode(value).unwrap();
        put(
            "state_machine",
            &format!("signmode-{slot}-{role}.json"),
            &with(128 | slot, &canon),
        );
        put(
            "state_machine",
            &format!("signmode-twice-{slot}-{role}.json"),
            &with(128 | 16 | slot, &canon),
        );
    }

    // packages_parse: the PAUSE-format sample of the core unit tests, and
    // the sample mirror's gzipped index.
    put(
        "packages_parse",
        "02packages.details.txt",
        b"File:         02packages.details.txt
URL:          http://mirror.invalid/modules/02packages.details.txt
Description:  Package names found in directory $CPAN/authors/id/
Columns:      package name, version, path
Intended-For: Automated fetch routines, namespace documentation.
Written-By:   PAUSE version 1.005
Line-Count:   6
Last-Updated: Thu, 02 Apr 2026 01:17:03 GMT

Abstract::Meta::Attribute::Method  0.06  A/AD/ADRIANWIT/Abstract-Meta-Class-0.11.tar.gz
Moo                            2.005005  H/HA/HAARG/Moo-2.005005.tar.gz
Moo::_Utils                       undef  H/HA/HAARG/Moo-2.005005.tar.gz
Moo::HandleMoose                  undef  H/HA/HAARG/Moo-2.005005.tar.gz
oo                                undef  H/HA/HAARG/Moo-2.005005.tar.gz
Try::Tiny                          0.31  E/ET/ETHER/Try-Tiny-0.31.tar.gz
",
    );
    let gz = fs::read("../sample-mirror/modules/02packages.details.txt.gz").unwrap();
    put(
        "packages_parse",
        "sample-mirror-02packages.details.txt.gz",
        &gz,
    );

    // cpan_path: paths, ids, role names, and pattern\0target pairs.
    let paths: &[&[u8]] = &[
        b"authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
        b"authors/id/E/ET/ETHER/sub/dir/Foo-1.0.tar.gz",
        b"authors/id/E/ET/ETHER/CHECKSUMS",
        b"authors/id/N/N-/N-AB/Foo-1.0.meta",
        b"modules/02packages.details.txt.gz",
        b"authors/01mailrc.txt.gz",
        b"ETHER",
        b"author-ETHER",
        b"prefix-N-N-",
        b"index",
        b"authors/id/*/*/*/*.meta\0authors/id/E/ET/ETHER/x.meta",
        b"authors/id/E/ET/ETHER/*\0authors/id/E/ET/ETHER/a/b",
        b"a/[!b-d]?c*\0a/xyc",
        b"foo/bar.txt\0foo/bar.txt",
    ];
    for (i, p) in paths.iter().enumerate() {
        put("cpan_path", &format!("seed-{i:02}"), p);
    }

    // server_request_path: request targets, valid and hostile.
    let reqs = [
        "/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
        "/modules/02packages.details.txt.gz",
        "/",
        "//authors///id/",
        "/authors/%2e%2e/%2E%2e/etc/passwd",
        "/a%2fb",
        "/a%5Cb",
        "/.sync-tmp/x",
        "/caf%C3%A9/%25",
        "/a/%00",
        "/metadata/1.root.json",
    ];
    for (i, r) in reqs.iter().enumerate() {
        put("server_request_path", &format!("seed-{i:02}"), r.as_bytes());
    }
}
