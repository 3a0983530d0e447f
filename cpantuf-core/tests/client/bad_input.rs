//! Bad bytes for every role, fed through the workflow: a clear error, no
//! panic, and the local store keeps its verified copy of the role.

use crate::expect_err;
use crate::sim::{envelope_over, key, sign_value, Repo, Sim, XorShift};
use cpantuf_core::canonical::{self, JsonError};
use cpantuf_core::metadata::{signed_value, Key, KeyId, KeyVal, MetadataError, RoleKeys};
use cpantuf_core::trusted::{TrustedSet, UpdateError};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const TARGET: &str = "authors/id/A/AU/AUTHOR/Pkg-1.0.tar.gz";
const AUTHOR: &str = "author-AUTHOR";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Root,
    Timestamp,
    Snapshot,
    Targets,
    Delegated,
}

const ROLES: [Role; 5] = [
    Role::Root,
    Role::Timestamp,
    Role::Snapshot,
    Role::Targets,
    Role::Delegated,
];

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Timestamp => "timestamp",
            Role::Snapshot => "snapshot",
            Role::Targets => "targets",
            Role::Delegated => AUTHOR,
        }
    }
}

/// A client that found TARGET through a delegation, everything stored.
fn base() -> Sim {
    let mut repo = Repo::new();
    repo.delegate("targets", AUTHOR, &["authors/id/A/AU/AUTHOR/*"], true);
    repo.add_target(AUTHOR, TARGET, b"pkg");
    repo.publish_all();
    let mut sim = Sim::with_repo(repo);
    // Bad timestamps are bounded by this cap before they are parsed; raise
    // it so that the parser sees them.
    sim.limits.timestamp_max_length = 1 << 20;
    assert_eq!(sim.find(TARGET).unwrap().unwrap().role, AUTHOR);
    sim
}

/// A new version of `role` as the repository would publish it.
struct NewVersion {
    /// The client, with the new version (and the versions above it that
    /// name it) published.
    sim: Sim,
    /// The store the client should have after refusing the new version.
    want: BTreeMap<String, Vec<u8>>,
    /// The file the new version is served as.
    file: String,
    /// Its `signed` object.
    signed: Value,
    /// Who signs it.
    signers: Vec<(KeyId, u8)>,
}

fn new_version(base: &Sim, role: Role) -> NewVersion {
    let mut sim = base.clone();
    let mut want = sim.store();
    let (file, signed) = match role {
        Role::Root => {
            sim.repo.bump_root();
            ("2.root.json".to_string(), signed_value(&sim.repo.root))
        }
        Role::Timestamp => {
            sim.repo.update_timestamp();
            ("timestamp.json".into(), signed_value(&sim.repo.timestamp))
        }
        Role::Snapshot => {
            sim.repo.update_snapshot();
            ("2.snapshot.json".into(), signed_value(&sim.repo.snapshot))
        }
        Role::Targets | Role::Delegated => {
            sim.repo.update_targets(role.name());
            (
                format!("2.{}.json", role.name()),
                signed_value(&sim.repo.targets[role.name()]),
            )
        }
    };
    // What the workflow verifies and stores before it reaches `role`.
    if role > Role::Timestamp {
        want.insert("timestamp".into(), sim.repo.file("timestamp.json"));
    }
    if role > Role::Snapshot {
        want.insert("snapshot".into(), sim.repo.file("2.snapshot.json"));
    }
    let signers = sim.repo.signers[role.name()].clone();
    NewVersion {
        sim,
        want,
        file,
        signed,
        signers,
    }
}

impl NewVersion {
    fn canonical_text(&self) -> String {
        String::from_utf8(canonical::encode(&self.signed).unwrap()).unwrap()
    }

    /// Correctly signed envelope over arbitrary `signed` text.
    fn signed_text(&self, text: &str) -> Vec<u8> {
        envelope_over(text.as_bytes(), &self.signers)
    }

    /// The canonical text with the first `from` replaced by `to`, signed.
    fn replace(&self, from: &str, to: &str) -> Vec<u8> {
        let text = self.canonical_text();
        assert!(text.contains(from), "{from} not in the document");
        self.signed_text(&text.replacen(from, to, 1))
    }

    /// The canonical text with `,"zz":<value>` appended to the signed
    /// object (keys stay sorted), signed.
    fn append_field(&self, raw_value: &str) -> Vec<u8> {
        let text = self.canonical_text();
        let text = format!("{},\"zz\":{raw_value}}}", &text[..text.len() - 1]);
        self.signed_text(&text)
    }

    /// Serves `bytes` as the new version and runs the update: refresh, and
    /// for the delegated role the target search.
    fn run(&self, bytes: Vec<u8>) -> (Sim, Result<(), UpdateError>) {
        let mut sim = self.sim.clone();
        sim.repo.files.insert(self.file.clone(), bytes);
        let res = sim.find(TARGET).map(|found| {
            let role = found.map(|f| f.role);
            assert_eq!(
                role.as_deref(),
                Some(AUTHOR),
                "target not found after update"
            );
        });
        (sim, res)
    }

    /// Like [`Self::run`], expecting success.
    #[track_caller]
    fn accept(&self, what: &str, bytes: Vec<u8>) -> Sim {
        let (sim, res) = self.run(bytes);
        if let Err(e) = res {
            panic!("{what}: {} refused: {e}", self.file);
        }
        sim
    }

    /// Like [`Self::run`], expecting a refusal; checks the store.
    #[track_caller]
    fn refuse(&self, what: &str, bytes: Vec<u8>) -> UpdateError {
        match self.run(bytes) {
            (_, Ok(())) => panic!("{what}: bad {} accepted", self.file),
            (sim, Err(e)) => {
                if sim.local != self.want {
                    eprintln!("{what}: {e}");
                }
                sim.assert_store(&self.want);
                e
            }
        }
    }
}

/// Runs `check` for the new version of every role.
fn for_every_role(mut check: impl FnMut(Role, &NewVersion)) {
    let base = base();
    for role in ROLES {
        let nv = new_version(&base, role);
        // Sanity: the genuine new version is accepted.
        let genuine = nv.sim.repo.file(&nv.file);
        let sim = nv.accept(&format!("{role:?} genuine"), genuine.clone());
        assert_eq!(sim.local[role.name()], genuine);
        check(role, &nv);
    }
}

#[track_caller]
fn assert_metadata_err(role: Role, what: &str, e: &UpdateError) -> String {
    match e {
        UpdateError::Metadata { role: r, source } if r == role.name() => source.to_string(),
        other => panic!("{role:?} {what}: expected a Metadata error, got {other:?}"),
    }
}

#[test]
fn malformed_json_trailing_garbage_empty_and_binary_input_refused() {
    for_every_role(|role, nv| {
        let genuine = nv.sim.repo.file(&nv.file);
        let mut rng = XorShift(0x1234_5678 + role as u64);
        let binary: Vec<u8> = (0..600).map(|_| rng.next() as u8).collect();
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("truncated", genuine[..genuine.len() / 2].to_vec()),
            ("unterminated", b"{\"signatures\":[".to_vec()),
            ("not an object", b"[]".to_vec()),
            ("null", b"null".to_vec()),
            ("binary", binary),
            ("nul bytes", vec![0; 64]),
            ("bom", [&b"\xef\xbb\xbf"[..], &genuine].concat()),
        ];
        for garbage in [&b"garbage"[..], b"}", b"{}", b"\0", b" x"] {
            cases.push(("trailing garbage", [&genuine[..], garbage].concat()));
        }
        for (what, bytes) in cases {
            let e = nv.refuse(what, bytes);
            assert_metadata_err(role, what, &e);
        }
        // Trailing whitespace is insignificant JSON: still the same document.
        let mut ws = genuine.clone();
        ws.extend_from_slice(b" \n\t");
        nv.accept(&format!("{role:?} trailing whitespace"), ws);
    });
}

#[test]
fn non_canonical_but_valid_json_is_accepted_when_correctly_signed() {
    for_every_role(|role, nv| {
        let pretty = sign_value(&nv.signed, &nv.signers, true);
        assert!(canonical::scan_canonical(&pretty).is_none());
        let sim = nv.accept(&format!("{role:?} pretty"), pretty.clone());
        assert_eq!(
            sim.local[role.name()],
            pretty,
            "{role:?}: stored as received"
        );
        // An escape canonical form would not use (\u0065 for e)
        // decode to the same document, so the signature still holds.
        let text = nv.canonical_text();
        let escaped = text.replacen("\"expires\"", "\"\\u0065xpires\"", 1);
        assert_ne!(escaped, text);
        assert!(
            matches!(
                nv.run(nv.signed_text(&escaped)).1,
                Err(UpdateError::Signature(_))
            ),
            "{role:?}: signature over non-canonical text must not verify"
        );
        let sig_over_canonical = envelope_over(text.as_bytes(), &nv.signers);
        let body = std::str::from_utf8(&sig_over_canonical).unwrap();
        let body = body.replacen("\"expires\"", "\"\\u0065xpires\"", 1);
        nv.accept(&format!("{role:?} escaped key"), body.into_bytes());
    });
}

#[test]
fn duplicate_object_keys_refused_inside_signed_and_at_top_level() {
    for_every_role(|role, nv| {
        let text = nv.canonical_text();
        let version = format!("\"version\":{}", nv.signed["version"]);
        // Inside signed: same value, and a different value.
        for dup in [
            format!("{version},{version}"),
            format!("{version},\"version\":1"),
            format!("\"version\":1,{version}"),
        ] {
            let e = nv.refuse("duplicate in signed", nv.replace(&version, &dup));
            let msg = assert_metadata_err(role, "duplicate in signed", &e);
            assert!(msg.contains("duplicate"), "{role:?}: {msg}");
        }
        // Top level: two `signed` objects (the second one validly signed),
        // and two `signatures` lists.
        let genuine = String::from_utf8(nv.sim.repo.file(&nv.file)).unwrap();
        let sigs_end = genuine.find(",\"signed\":").unwrap();
        let sigs = &genuine["{\"signatures\":".len()..sigs_end];
        let cases = [
            format!("{{\"signatures\":{sigs},\"signed\":{text},\"signed\":{text}}}"),
            format!("{{\"signatures\":{sigs},\"signed\":{{}},\"signed\":{text}}}"),
            format!("{{\"signatures\":[],\"signatures\":{sigs},\"signed\":{text}}}"),
            format!("{{\"signatures\":{sigs},\"signatures\":[],\"signed\":{text}}}"),
            format!("{{\"signed\":{text},\"signatures\":{sigs},\"signed\":{text}}}"),
        ];
        for doc in cases {
            let e = nv.refuse("top-level duplicate", doc.into_bytes());
            let msg = assert_metadata_err(role, "top-level duplicate", &e);
            assert!(msg.contains("duplicate"), "{role:?}: {msg}");
        }
    });
}

#[test]
fn huge_float_negative_and_zero_versions_refused() {
    for_every_role(|role, nv| {
        let version = format!("\"version\":{}", nv.signed["version"]);
        for bad in [
            "1e400",
            "1180591620717411303424", // 2^70
            "18446744073709551616",   // 2^64
            "-18446744073709551617",
            "2.0",
            "2e0",
            "0",
            "-2",
            "-0",
            "0x2",
            "02",
            "NaN",
            "Infinity",
        ] {
            let e = nv.refuse(bad, nv.replace(&version, &format!("\"version\":{bad}")));
            assert_metadata_err(role, bad, &e);
        }
        // A float or a huge integer anywhere (an unknown field) cannot be
        // canonicalised: refused as such, not as a signature failure.
        for bad in ["1.5", "1e400", "1180591620717411303424", "-1.0"] {
            let e = nv.refuse(bad, nv.append_field(bad));
            assert!(
                matches!(
                    &e,
                    UpdateError::Metadata {
                        source: MetadataError::Json(
                            JsonError::NotAnInteger(_) | JsonError::Syntax(_)
                        ),
                        ..
                    }
                ),
                "{role:?} {bad}: {e:?}"
            );
        }
        // Unknown fields with integers are fine (and signed).
        nv.accept(
            &format!("{role:?} unknown field"),
            nv.append_field("[1,-1,18446744073709551615,{\"a\":null}]"),
        );
    });
}

#[test]
fn wrong_type_and_spec_version_refused() {
    for_every_role(|role, nv| {
        let t = role_type(role);
        for other in ["root", "timestamp", "snapshot", "targets", "mirrors", ""] {
            if other == t {
                continue;
            }
            let e = nv.refuse(
                "wrong _type",
                nv.replace(
                    &format!("\"_type\":\"{t}\""),
                    &format!("\"_type\":\"{other}\""),
                ),
            );
            assert!(
                matches!(&e, UpdateError::Metadata { source: MetadataError::WrongType { expected, .. }, .. } if *expected == t),
                "{role:?} {other}: {e:?}"
            );
        }
        let spec = format!("\"spec_version\":{}", nv.signed["spec_version"]);
        for bad in [
            "\"2.0\"",
            "\"2.0.0\"",
            "\"0.9\"",
            "\"1\"",
            "\"1.0.x\"",
            "\"\"",
            "1",
        ] {
            let e = nv.refuse(bad, nv.replace(&spec, &format!("\"spec_version\":{bad}")));
            assert_metadata_err(role, bad, &e);
        }
    });
}

fn role_type(role: Role) -> &'static str {
    match role {
        Role::Delegated => "targets",
        r => r.name(),
    }
}

/// Every node of `v` below the top, as a JSON pointer.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    let esc = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{}", esc(k));
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        _ => {}
    }
}

fn wrong_type_for(v: &Value) -> Vec<Value> {
    match v {
        Value::String(_) => vec![json!(7), json!(["x"])],
        Value::Number(_) => vec![json!("7"), json!(true)],
        Value::Bool(_) => vec![json!("true"), json!(1)],
        // Not `[]`: see `struct_fields_given_as_arrays_refused`.
        Value::Object(_) => vec![json!(7), json!("{}")],
        Value::Array(_) => vec![json!({}), json!("[]")],
        Value::Null => vec![json!(1)],
    }
}

#[test]
fn wrong_json_types_for_every_field_refused() {
    let mut tried = 0;
    for_every_role(|role, nv| {
        let mut ptrs = Vec::new();
        pointers(&nv.signed, String::new(), &mut ptrs);
        for ptr in ptrs {
            let original = nv.signed.pointer(&ptr).unwrap().clone();
            for bad in wrong_type_for(&original) {
                let mut doc = nv.signed.clone();
                *doc.pointer_mut(&ptr).unwrap() = bad.clone();
                let bytes = sign_value(&doc, &nv.signers, false);
                let what = format!("{ptr} = {bad}");
                let e = nv.refuse(&what, bytes);
                assert_metadata_err(role, &what, &e);
                tried += 1;
            }
        }
    });
    assert!(tried > 100, "only {tried} cases");
}

#[test]
#[ignore = "bug: serde-derived metadata structs (MetaFile, KeyVal, Key, RoleKeys, ...) also accept a JSON array of their fields in declaration order; python-tuf refuses such documents"]
fn struct_fields_given_as_arrays_refused() {
    // serde's derived `Deserialize` for a struct has a `visit_seq` that
    // takes the fields positionally, so `{"version":2}` may be written
    // `[2]` and `{"public":"ab.."}` `["ab.."]` (or `[]`, missing fields
    // defaulting). TUF metadata objects are JSON objects only; python-tuf
    // fails these documents at `from_dict`. The signature still covers the
    // bytes, so this is a parser differential rather than a bypass.
    let base = base();

    let nv = new_version(&base, Role::Timestamp);
    let mut doc = nv.signed.clone();
    let v = doc["meta"]["snapshot.json"]["version"].clone();
    doc["meta"]["snapshot.json"] = json!([v]);
    let e = nv.refuse("meta entry as array", sign_value(&doc, &nv.signers, false));
    assert_metadata_err(Role::Timestamp, "meta entry as array", &e);

    let nv = new_version(&base, Role::Root);
    for positional in [json!([]), json!(["00"])] {
        let mut doc = nv.signed.clone();
        let keyval = doc["keys"]
            .as_object_mut()
            .unwrap()
            .values_mut()
            .next()
            .unwrap()
            .get_mut("keyval")
            .unwrap();
        *keyval = positional.clone();
        let what = format!("keyval = {positional}");
        let e = nv.refuse(&what, sign_value(&doc, &nv.signers, false));
        assert_metadata_err(Role::Root, &what, &e);
    }
}

#[test]
fn deeply_nested_arrays_refused_without_stack_overflow() {
    let depth = 100_000;
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    for_every_role(|role, nv| {
        for (what, bytes) in [
            ("open brackets only", "[".repeat(depth).into_bytes()),
            ("whole document", deep.clone().into_bytes()),
            ("inside signed", nv.append_field(&deep)),
            (
                "as signatures",
                format!(
                    "{{\"signatures\":{deep},\"signed\":{}}}",
                    nv.canonical_text()
                )
                .into_bytes(),
            ),
        ] {
            let e = nv.refuse(what, bytes);
            assert_metadata_err(role, what, &e);
        }
    });
}

/// A P-256 public key (any valid one: no signature of it is ever valid here).
const P256_PEM: &str = "-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcMvrd6z9iYwT/LTr3CJcpGH6ZQVr\n\
W0JfA3QTQuoQ+iyUnoa/TverpdqnPuXOWoCa6hM/ZRDWf1UD6Sgu8OPnlA==\n\
-----END PUBLIC KEY-----\n";

#[test]
fn unknown_key_types_and_bad_signature_encodings_do_not_count() {
    // Root v1 lets the timestamp be signed by any one of: the ed25519 key,
    // a DSA key (unsupported type) or an ECDSA key.
    let mut repo = Repo::new();
    let (ed_id, ed_seed) = repo.signers["timestamp"][0].clone();
    let dsa = KeyId("dsa-key".into());
    let ecdsa = KeyId("ecdsa-key".into());
    repo.root.keys.insert(
        dsa.clone(),
        Key {
            keytype: "dsa".into(),
            scheme: "dsa-sha1".into(),
            keyval: KeyVal {
                public: Some("00".into()),
            },
        },
    );
    repo.root.keys.insert(
        ecdsa.clone(),
        Key {
            keytype: "ecdsa".into(),
            scheme: "ecdsa-sha2-nistp256".into(),
            keyval: KeyVal {
                public: Some(P256_PEM.into()),
            },
        },
    );
    repo.root.roles.insert(
        "timestamp".into(),
        RoleKeys {
            keyids: vec![ed_id.clone(), dsa.clone(), ecdsa.clone()],
            threshold: crate::sim::nz(1),
        },
    );
    repo.publish_root();
    repo.publish_timestamp();
    let mut base = Sim::with_repo(repo);
    base.refresh().unwrap();
    base.repo.update_timestamp();
    let canon = canonical::encode(&signed_value(&base.repo.timestamp)).unwrap();
    let good = crate::sim::signer(ed_seed).sign_hex(&canon);

    let doc = |sigs: &[(&KeyId, &str)]| -> Vec<u8> {
        let sigs: Vec<Value> = sigs
            .iter()
            .map(|(k, s)| json!({"keyid": k.0, "sig": s}))
            .collect();
        let mut out = b"{\"signatures\":".to_vec();
        out.extend(canonical::encode(&Value::Array(sigs)).unwrap());
        out.extend_from_slice(b",\"signed\":");
        out.extend_from_slice(&canon);
        out.push(b'}');
        out
    };
    let bad_sigs: Vec<(&KeyId, String, &str)> = vec![
        (&dsa, "00".repeat(40), "unsupported key type"),
        (&ecdsa, "deadbeef".into(), "malformed"),
        (&ecdsa, "3006020101020101".into(), "does not verify"),
        (&ecdsa, String::new(), "malformed"),
        (&ed_id, "zz".repeat(64), "malformed"),
        (&ed_id, String::new(), "malformed"),
        (&ed_id, "00".repeat(63), "malformed"),
        (&ed_id, "00".repeat(65), "malformed"),
        (&ed_id, good[..127].to_string(), "malformed"),
        (&ed_id, "00".repeat(64), "does not verify"),
        (&ed_id, format!("{}00", &good[..126]), "does not verify"),
    ];
    for (keyid, sig, why) in &bad_sigs {
        let mut sim = base.clone();
        let before = sim.store();
        sim.repo
            .files
            .insert("timestamp.json".into(), doc(&[(keyid, sig)]));
        let e = expect_err!(sim.refresh(), UpdateError::Signature(_));
        let UpdateError::Signature(t) = e else {
            unreachable!()
        };
        assert_eq!(t.valid, 0);
        assert_eq!(t.rejected.len(), 1, "{t}");
        assert!(t.rejected[0].1.contains(why), "{keyid} {sig:?}: {t}");
        sim.assert_store(&before);

        // Beside a valid ed25519 signature the bad one is ignored.
        if *keyid != &ed_id {
            let bytes = doc(&[(keyid, sig), (&ed_id, &good)]);
            sim.repo
                .files
                .insert("timestamp.json".into(), bytes.clone());
            sim.refresh().unwrap();
            assert_eq!(sim.local["timestamp"], bytes);
        }
    }
    // A signature for a key id the root does not know is ignored.
    let mut sim = base.clone();
    let stranger = key(200).0;
    sim.repo
        .files
        .insert("timestamp.json".into(), doc(&[(&stranger, &good)]));
    let e = expect_err!(sim.refresh(), UpdateError::Signature(_));
    let UpdateError::Signature(t) = e else {
        unreachable!()
    };
    assert_eq!((t.valid, t.rejected.len()), (0, 0));
}

#[test]
fn bad_initial_root_refused() {
    let base = base();
    let root = base.local["root"].clone();
    for (what, bytes) in [
        ("empty", Vec::new()),
        ("truncated", root[..root.len() - 1].to_vec()),
        ("trailing garbage", [&root[..], b"x"].concat()),
    ] {
        let r = TrustedSet::new(&bytes, crate::sim::now());
        assert!(
            matches!(&r, Err(UpdateError::Metadata { role, .. }) if role == "root"),
            "{what}"
        );
    }
    // Signed by a key that is not its own root key.
    let mut repo = base.repo.clone();
    repo.signers.insert("root".into(), vec![(key(1).0, 77)]);
    repo.publish_root();
    let r = TrustedSet::new(&repo.file("1.root.json"), crate::sim::now());
    assert!(matches!(r, Err(UpdateError::Signature(_))));
}

#[test]
fn corrupt_local_store_is_ignored_and_repaired() {
    let base = base();
    for role in ["timestamp", "snapshot", "targets", AUTHOR] {
        for junk in [&b""[..], b"{", b"\xff\xfe", b"[[[[[[[["] {
            let mut sim = base.clone();
            let good = sim.local[role].clone();
            sim.local.insert(role.into(), junk.to_vec());
            sim.find(TARGET).unwrap().unwrap();
            assert_eq!(sim.local[role], good, "{role} repaired");
            assert_eq!(sim.local_rejected, [role]);
        }
    }
}

/// Mutates `bytes` in place: 1-3 random edits (byte replaced, bit flipped,
/// JSON-significant byte inserted or replaced, byte deleted).
fn mutate(rng: &mut XorShift, bytes: &mut Vec<u8>) {
    const INTERESTING: &[u8] = b" \n\t\"\\{}[],:0189-.eEaAfF\x00\x7f\xff";
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(bytes.len());
        match rng.below(5) {
            0 => bytes[i] = rng.next() as u8,
            1 => bytes[i] ^= 1 << rng.below(8),
            2 => bytes[i] = INTERESTING[rng.below(INTERESTING.len())],
            3 => bytes.insert(i, INTERESTING[rng.below(INTERESTING.len())]),
            _ => {
                bytes.remove(i);
            }
        }
    }
}

#[test]
fn random_mutations_never_panic_and_only_signature_neutral_ones_pass() {
    let base = base();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for role in ROLES {
        let nv = new_version(&base, role);
        let genuine = nv.sim.repo.file(&nv.file);
        let want = canonical::encode(&nv.signed).unwrap();
        let local_root = nv.sim.local["root"].clone();
        let files = &nv.sim.repo.files;
        // The state machine, loaded up to the role under test.
        let prepared = || -> TrustedSet {
            let mut t = TrustedSet::new(&local_root, crate::sim::now()).unwrap();
            if role > Role::Timestamp {
                t.update_timestamp(&files["timestamp.json"]).unwrap();
            }
            if role > Role::Snapshot {
                t.update_snapshot(&files["2.snapshot.json"], false).unwrap();
            }
            if role > Role::Targets {
                t.update_targets(&files["1.targets.json"], "targets", "root")
                    .unwrap();
            }
            t
        };
        // A refused update leaves the set as it was, so one set serves until
        // a mutation is accepted.
        let mut t = prepared();
        for _ in 0..2_000 {
            let mut bytes = genuine.clone();
            mutate(&mut rng, &mut bytes);
            let got: Option<Vec<u8>> = match role {
                Role::Root => t
                    .update_root(&bytes)
                    .ok()
                    .map(|()| t.root().envelope().canonical_signed().to_vec()),
                Role::Timestamp => t.update_timestamp(&bytes).ok().map(|_| {
                    t.timestamp()
                        .unwrap()
                        .envelope()
                        .canonical_signed()
                        .to_vec()
                }),
                Role::Snapshot => t
                    .update_snapshot(&bytes, false)
                    .ok()
                    .map(|()| t.snapshot().unwrap().envelope().canonical_signed().to_vec()),
                Role::Targets | Role::Delegated => {
                    let delegator = if role == Role::Targets {
                        "root"
                    } else {
                        "targets"
                    };
                    t.update_targets(&bytes, role.name(), delegator)
                        .ok()
                        .map(|()| {
                            t.targets(role.name())
                                .unwrap()
                                .envelope()
                                .canonical_signed()
                                .to_vec()
                        })
                }
            };
            if let Some(canon) = got {
                accepted += 1;
                t = prepared();
                assert_eq!(
                    canon,
                    want,
                    "{role:?}: accepted a mutation that changes the signed content: {}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
    }
    // Whitespace insertions and hex case changes in signatures are expected
    // to pass; if none did, the mutator is not reaching them.
    assert!(accepted > 0);
}

#[test]
fn invalid_utf8_inside_signed_refused() {
    let mut accepted = Vec::new();
    for_every_role(|role, nv| {
        let text = nv.canonical_text();
        // An unknown field whose string value is not UTF-8, signed over the
        // exact bytes, in an otherwise canonical document (the fast path),
        // and the same document pretty-printed around `signed` (slow path).
        for bad in [
            &b"\"\xff\""[..],
            b"\"\xc3\"",
            b"\"\xed\xa0\x80\"",
            b"[\"a\xfe\"]",
        ] {
            let mut signed = text.as_bytes()[..text.len() - 1].to_vec();
            signed.extend_from_slice(b",\"zz\":");
            signed.extend_from_slice(bad);
            signed.push(b'}');
            let fast = envelope_over(&signed, &nv.signers);
            let mut slow = b"{ \"signatures\" : ".to_vec();
            slow.extend_from_slice(&fast[b"{\"signatures\":".len()..]);
            for (path, bytes) in [("fast", fast), ("slow", slow)] {
                let what = format!("{role:?} {path} {}", String::from_utf8_lossy(bad));
                match nv.run(bytes) {
                    (_, Ok(())) => accepted.push(what),
                    (sim, Err(e)) => {
                        sim.assert_store(&nv.want);
                        assert_metadata_err(role, &what, &e);
                    }
                }
            }
        }
    });
    assert!(accepted.is_empty(), "accepted: {accepted:#?}");
}

#[test]
fn metadata_signed_by_another_roles_key_refused() {
    for_every_role(|role, nv| {
        for other in ["root", "timestamp", "snapshot", "targets", AUTHOR] {
            if other == role.name() {
                continue;
            }
            let signers = nv.sim.repo.signers[other].clone();
            let bytes = sign_value(&nv.signed, &signers, false);
            let e = nv.refuse(other, bytes);
            assert!(
                matches!(&e, UpdateError::Signature(t) if t.valid == 0),
                "{role:?} signed by {other}: {e:?}"
            );
            // Claiming the right key id does not help either.
            let forged: Vec<(KeyId, u8)> = nv
                .signers
                .iter()
                .map(|(id, _)| (id.clone(), signers[0].1))
                .collect();
            let e = nv.refuse(other, sign_value(&nv.signed, &forged, false));
            assert!(
                matches!(&e, UpdateError::Signature(t) if t.valid == 0),
                "{role:?} signed by {other} under the right key id: {e:?}"
            );
        }
    });
}

#[test]
fn delegation_to_a_top_level_role_name_refused() {
    let base = base();
    let nv = new_version(&base, Role::Targets);
    for name in ["root", "timestamp", "snapshot", "targets"] {
        let mut doc = nv.signed.clone();
        doc["delegations"]["roles"][0]["name"] = json!(name);
        let e = nv.refuse(name, sign_value(&doc, &nv.signers, false));
        assert_metadata_err(Role::Targets, name, &e);
    }
    // And a role delegated twice under one name.
    let mut doc = nv.signed.clone();
    let first = doc["delegations"]["roles"][0].clone();
    doc["delegations"]["roles"]
        .as_array_mut()
        .unwrap()
        .push(first);
    let e = nv.refuse("twice", sign_value(&doc, &nv.signers, false));
    assert_metadata_err(Role::Targets, "twice", &e);
}

#[test]
fn large_metadata_parallel_parse_path_refuses_what_the_small_path_refuses() {
    // A delegated role over 256 KiB takes the two-thread parse.
    let mut repo = Repo::new();
    repo.delegate("targets", AUTHOR, &["authors/id/A/AU/AUTHOR/*"], true);
    for i in 0..2_500 {
        repo.add_target(
            AUTHOR,
            &format!("authors/id/A/AU/AUTHOR/Pkg-{i}.tar.gz"),
            b"x",
        );
    }
    repo.add_target(AUTHOR, TARGET, b"pkg");
    repo.publish_all();
    let mut sim = Sim::with_repo(repo);
    sim.find(TARGET).unwrap().unwrap();
    let nv = new_version(&sim, Role::Delegated);
    let genuine = nv.sim.repo.file(&nv.file);
    assert!(genuine.len() > 256 * 1024, "{} bytes", genuine.len());
    nv.accept("large genuine", genuine.clone());
    nv.accept("large pretty", sign_value(&nv.signed, &nv.signers, true));

    let entry = format!(
        "\"authors/id/A/AU/AUTHOR/Pkg-0.tar.gz\":{{\"hashes\":{{\"sha256\":\"{}\"}},\"length\":1}}",
        cpantuf_core::target::sha256_hex(b"x")
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // The same target listed twice, the second with another length.
        (
            "duplicate target",
            nv.replace(
                &entry,
                &format!("{entry},{}", entry.replace("\"length\":1", "\"length\":2")),
            ),
        ),
        (
            "float length",
            nv.replace("\"length\":1}", "\"length\":1.0}"),
        ),
        (
            "string length",
            nv.replace("\"length\":1}", "\"length\":\"1\"}"),
        ),
        (
            "negative length",
            nv.replace("\"length\":1}", "\"length\":-1}"),
        ),
        (
            "wrong _type",
            nv.replace("\"_type\":\"targets\"", "\"_type\":\"snapshot\""),
        ),
        ("float at the end", nv.append_field("0.5")),
    ];
    for (what, bytes) in cases {
        assert!(bytes.len() > 256 * 1024);
        let e = nv.refuse(what, bytes);
        assert_metadata_err(Role::Delegated, what, &e);
    }
    // One byte of signed content changed: the signature no longer holds.
    let s = String::from_utf8(genuine).unwrap();
    let s = s.replacen("\"length\":1}", "\"length\":9}", 1);
    let e = nv.refuse("tampered", s.into_bytes());
    assert!(matches!(e, UpdateError::Signature(_)), "{e:?}");
}

#[test]
fn metadata_rule_violations_refused() {
    let base = base();
    // (role, what, edit of the signed object)
    type Edit = fn(&mut Value);
    let cases: Vec<(Role, &str, Edit)> = vec![
        (Role::Root, "threshold 0", |d| {
            d["roles"]["root"]["threshold"] = json!(0)
        }),
        (Role::Root, "duplicate keyid", |d| {
            let id = d["roles"]["timestamp"]["keyids"][0].clone();
            d["roles"]["timestamp"]["keyids"] = json!([id.clone(), id]);
        }),
        (Role::Root, "role missing", |d| {
            d["roles"].as_object_mut().unwrap().remove("snapshot");
        }),
        (Role::Root, "extra role", |d| {
            let r = d["roles"]["root"].clone();
            d["roles"]["mirror"] = r;
        }),
        (Role::Root, "no keys", |d| {
            d.as_object_mut().unwrap().remove("keys");
        }),
        (Role::Timestamp, "no snapshot.json", |d| {
            let m = d["meta"]["snapshot.json"].clone();
            d["meta"] = json!({ "snapshot": m });
        }),
        (Role::Timestamp, "empty hashes", |d| {
            d["meta"]["snapshot.json"]["hashes"] = json!({});
        }),
        (Role::Timestamp, "expires with offset", |d| {
            d["expires"] = json!("2031-06-01T12:00:00+00:00");
        }),
        (Role::Timestamp, "expires with fraction", |d| {
            d["expires"] = json!("2031-06-01T12:00:00.5Z");
        }),
        (Role::Timestamp, "expires date only", |d| {
            d["expires"] = json!("2031-06-01")
        }),
        (Role::Timestamp, "no version", |d| {
            d.as_object_mut().unwrap().remove("version");
        }),
        (Role::Snapshot, "meta version 0", |d| {
            d["meta"]["targets.json"]["version"] = json!(0);
        }),
        (Role::Snapshot, "meta negative length", |d| {
            d["meta"]["targets.json"]["length"] = json!(-1);
        }),
        (Role::Targets, "both paths and hash prefixes", |d| {
            d["delegations"]["roles"][0]["path_hash_prefixes"] = json!(["ab"]);
        }),
        (Role::Targets, "neither paths nor hash prefixes", |d| {
            d["delegations"]["roles"][0]
                .as_object_mut()
                .unwrap()
                .remove("paths");
        }),
        (Role::Targets, "roles and succinct_roles", |d| {
            d["delegations"]["succinct_roles"] = json!({
                "keyids": [], "threshold": 1, "bit_length": 8, "name_prefix": "bin"
            });
        }),
        (Role::Targets, "neither roles nor succinct_roles", |d| {
            d["delegations"].as_object_mut().unwrap().remove("roles");
        }),
        (Role::Targets, "delegated threshold 0", |d| {
            d["delegations"]["roles"][0]["threshold"] = json!(0);
        }),
        (Role::Delegated, "target without hashes", |d| {
            d["targets"][TARGET]["hashes"] = json!({});
        }),
        (Role::Delegated, "target without length", |d| {
            d["targets"][TARGET]
                .as_object_mut()
                .unwrap()
                .remove("length");
        }),
    ];
    for (role, what, edit) in cases {
        let nv = new_version(&base, role);
        let mut doc = nv.signed.clone();
        edit(&mut doc);
        assert_ne!(doc, nv.signed, "{what}: no change");
        let e = nv.refuse(what, sign_value(&doc, &nv.signers, false));
        assert_metadata_err(role, what, &e);
    }
    // Succinct bins outside 1..=32 bits.
    for bits in [0, 33] {
        let nv = new_version(&base, Role::Targets);
        let mut doc = nv.signed.clone();
        doc["delegations"] = json!({"keys": {}, "succinct_roles": {
            "keyids": [], "threshold": 1, "bit_length": bits, "name_prefix": "bin"
        }});
        let e = nv.refuse("bit_length", sign_value(&doc, &nv.signers, false));
        assert_metadata_err(Role::Targets, "bit_length", &e);
    }
}
