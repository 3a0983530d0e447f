//! Signed metadata files: a payload, signed, as the exact bytes written.
//!
//! The file is the canonical JSON of `{"signatures": [...], "signed": {...}}`
//! (keys sorted, no whitespace): python-tuf and cpantuf's client both read
//! it, and the `signed` part is byte-for-byte what the signatures cover.
//! Whatever is hashed for snapshot and timestamp is these bytes, never a
//! re-serialisation ("hash the bytes you write").

use super::RepoError;
use cpantuf_core::canonical;
use cpantuf_core::crypto::Ed25519Signer;
use cpantuf_core::metadata::{expiry, signed_value, Envelope, RoleMeta, Signature, Snapshot};
use cpantuf_core::verify::{
    check_threshold, check_threshold_over, count_valid_signatures, Authority,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::num::NonZeroU64;

/// A signed metadata file ready to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedFile {
    /// The role name (`root`, `targets`, `author-ETHER`, ...).
    pub role: String,
    /// The metadata version.
    pub version: NonZeroU64,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

impl SignedFile {
    /// The consistent-snapshot file name: `timestamp.json` for the
    /// timestamp, `N.ROLE.json` for every other role (spec 5.5, 5.6, 5.7).
    pub fn file_name(&self) -> String {
        if self.role == "timestamp" {
            "timestamp.json".into()
        } else {
            format!("{}.{}.json", self.version, self.role)
        }
    }

    /// Lowercase hex SHA-256 of the bytes.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }

    /// Parses the file back as role type `T`.
    pub fn envelope<T: RoleMeta + for<'de> Deserialize<'de>>(
        &self,
    ) -> Result<Envelope<T>, RepoError> {
        Envelope::from_bytes(&self.bytes).map_err(|source| RepoError::Metadata {
            file: self.file_name(),
            source,
        })
    }
}

/// The file bytes of an envelope: canonical JSON, `signatures` first.
fn file_bytes(canonical_signed: &[u8], signatures: &[Signature]) -> Vec<u8> {
    let sigs = serde_json::to_value(signatures).expect("signatures serialise");
    let mut out = Vec::with_capacity(canonical_signed.len() + 160 * signatures.len() + 32);
    out.extend_from_slice(b"{\"signatures\":");
    canonical::encode_into(&mut out, &sigs).expect("signatures hold no numbers");
    out.extend_from_slice(b",\"signed\":");
    out.extend_from_slice(canonical_signed);
    out.push(b'}');
    out
}

/// The canonical bytes of a payload's `signed` object.
pub fn canonical_signed<T: RoleMeta + Serialize + 'static>(payload: &T) -> Vec<u8> {
    if let Some(s) = (payload as &dyn std::any::Any).downcast_ref::<Snapshot>() {
        return snapshot_canonical_signed(s);
    }
    canonical::encode(&signed_value(payload)).expect("metadata payloads hold integers only")
}

/// A snapshot's canonical `signed` bytes, written directly: a CPAN-scale
/// snapshot lists tens of thousands of roles, and building a JSON tree of it
/// first took most of an upload's time. Byte-identical to the generic
/// encoder (tested below); keys in canonical (code point) order:
/// `_type`, `expires`, `meta`, `spec_version`, `version`, and in each entry
/// `hashes`, `length`, `version`.
pub(crate) fn snapshot_canonical_signed(s: &Snapshot) -> Vec<u8> {
    use canonical::write_string as string;
    let mut out = Vec::with_capacity(64 + s.meta.len() * 48);
    out.extend_from_slice(b"{\"_type\":");
    string(&mut out, Snapshot::TYPE);
    out.extend_from_slice(b",\"expires\":");
    string(&mut out, &expiry::format(&s.expires));
    out.extend_from_slice(b",\"meta\":{");
    for (i, (name, m)) in s.meta.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(&mut out, name);
        out.extend_from_slice(b":{");
        if let Some(hashes) = &m.hashes {
            out.extend_from_slice(b"\"hashes\":{");
            for (j, (alg, hex)) in hashes.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                string(&mut out, alg);
                out.push(b':');
                string(&mut out, hex);
            }
            out.extend_from_slice(b"},");
        }
        if let Some(length) = m.length {
            out.extend_from_slice(format!("\"length\":{length},").as_bytes());
        }
        out.extend_from_slice(format!("\"version\":{}}}", m.version).as_bytes());
    }
    out.extend_from_slice(b"},\"spec_version\":");
    string(&mut out, &s.spec_version);
    out.extend_from_slice(format!(",\"version\":{}}}", s.version).as_bytes());
    out
}

/// One signature per signer over `canonical`.
fn signatures_over(canonical: &[u8], signers: &[&Ed25519Signer]) -> Vec<Signature> {
    signers
        .iter()
        .map(|s| Signature {
            keyid: s.keyid().clone(),
            sig: s.sign_hex(canonical),
        })
        .collect()
}

/// Signs `payload` with every signer given (possibly none, for a change
/// prepared for offline signing).
pub fn sign<T: RoleMeta + Serialize + 'static>(
    role: &str,
    payload: &T,
    signers: &[&Ed25519Signer],
) -> SignedFile {
    let canonical = canonical_signed(payload);
    let signatures = signatures_over(&canonical, signers);
    SignedFile {
        role: role.to_owned(),
        version: payload.version(),
        bytes: file_bytes(&canonical, &signatures),
    }
}

/// Signs `payload` and checks the result against `authority` with the
/// client's threshold code, over the very bytes written (no re-parse: the
/// snapshot of a CPAN-scale repository is half a megabyte).
pub fn sign_checked<T: RoleMeta + Serialize + 'static>(
    role: &str,
    payload: &T,
    signers: &[&Ed25519Signer],
    authority: Authority<'_>,
) -> Result<SignedFile, RepoError> {
    sign_checked_canonical(
        role,
        payload.version(),
        canonical_signed(payload),
        signers,
        authority,
    )
}

/// [`sign_checked`] over `signed` bytes already in canonical form (a
/// snapshot spliced by [`super::snapindex::SnapshotIndex::splice`]).
pub fn sign_checked_canonical(
    role: &str,
    version: NonZeroU64,
    canonical: Vec<u8>,
    signers: &[&Ed25519Signer],
    authority: Authority<'_>,
) -> Result<SignedFile, RepoError> {
    let signatures = signatures_over(&canonical, signers);
    let bytes = file_bytes(&canonical, &signatures);
    check_threshold_over(role, &canonical, &signatures, authority)?;
    Ok(SignedFile {
        role: role.to_owned(),
        version,
        bytes,
    })
}

/// Adds (or replaces) `signer`'s signature on an existing file, keeping the
/// `signed` bytes exactly as they were: multi-party signing, each key holder
/// on their own machine.
pub fn add_signature<T: RoleMeta + for<'de> Deserialize<'de>>(
    file: &SignedFile,
    signer: &Ed25519Signer,
) -> Result<SignedFile, RepoError> {
    let env: Envelope<T> = file.envelope()?;
    let mut sigs: Vec<Signature> = env
        .signatures()
        .iter()
        .filter(|s| &s.keyid != signer.keyid())
        .cloned()
        .collect();
    sigs.push(Signature {
        keyid: signer.keyid().clone(),
        sig: signer.sign_hex(env.canonical_signed()),
    });
    Ok(SignedFile {
        role: file.role.clone(),
        version: file.version,
        bytes: file_bytes(env.canonical_signed(), &sigs),
    })
}

/// How many distinct keys of `authority` have validly signed `file`.
pub fn valid_signatures<T: RoleMeta + for<'de> Deserialize<'de>>(
    file: &SignedFile,
    authority: Authority<'_>,
) -> Result<u64, RepoError> {
    let env: Envelope<T> = file.envelope()?;
    Ok(count_valid_signatures(authority, env.canonical_signed(), env.signatures()).0)
}

/// Checks a signed file against the threshold of its delegator, with the
/// same function the client uses (spec 5.3.4 / 5.7.x).
pub fn check<T: RoleMeta + for<'de> Deserialize<'de>>(
    file: &SignedFile,
    authority: Authority<'_>,
) -> Result<Envelope<T>, RepoError> {
    let env: Envelope<T> = file.envelope()?;
    check_threshold(&file.role, &env, authority)?;
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpantuf_core::metadata::Timestamp;
    use std::collections::BTreeMap;

    fn ts() -> Timestamp {
        let doc = serde_json::json!({"_type":"timestamp","spec_version":"1.0.31","version":4,
            "expires":"2030-01-01T00:00:00Z","meta":{"snapshot.json":{"version":1}}});
        serde_json::from_value(doc).unwrap()
    }

    #[test]
    fn the_direct_snapshot_encoder_matches_the_generic_one() {
        use cpantuf_core::metadata::MetaFile;
        let v = |n: u64| NonZeroU64::new(n).unwrap();
        let mut meta = BTreeMap::new();
        meta.insert(
            "targets.json".to_owned(),
            MetaFile {
                version: v(7),
                length: None,
                hashes: None,
            },
        );
        meta.insert(
            "author-\u{e9}t\"\\.json".to_owned(),
            MetaFile {
                version: v(u64::MAX),
                length: Some(123),
                hashes: Some(BTreeMap::from([
                    ("sha256".to_owned(), "ab".repeat(32)),
                    ("sha512".to_owned(), "cd".repeat(64)),
                ])),
            },
        );
        meta.insert(
            "index.json".to_owned(),
            MetaFile {
                version: v(1),
                length: Some(0),
                hashes: None,
            },
        );
        meta.insert(
            "prefix-A-AB.json".to_owned(),
            MetaFile {
                version: v(2),
                length: None,
                hashes: Some(BTreeMap::new()),
            },
        );
        for meta in [meta, BTreeMap::new()] {
            let snap = Snapshot {
                spec_version: "1.0.31".into(),
                version: v(42),
                expires: expiry::parse("2030-01-02T03:04:05Z").unwrap(),
                meta,
            };
            let generic = canonical::encode(&signed_value(&snap)).unwrap();
            assert_eq!(
                String::from_utf8(snapshot_canonical_signed(&snap)).unwrap(),
                String::from_utf8(generic).unwrap()
            );
        }
    }

    #[test]
    fn signed_file_round_trips_and_verifies() {
        let a = Ed25519Signer::from_seed(&[1; 32]);
        let b = Ed25519Signer::from_seed(&[2; 32]);
        let f = sign("timestamp", &ts(), &[&a]);
        assert_eq!(f.file_name(), "timestamp.json");
        let mut keys = BTreeMap::new();
        keys.insert(a.keyid().clone(), a.public_key().clone());
        keys.insert(b.keyid().clone(), b.public_key().clone());
        let ids = vec![a.keyid().clone(), b.keyid().clone()];
        let two = Authority {
            keys: &keys,
            keyids: &ids,
            threshold: NonZeroU64::new(2).unwrap(),
        };
        assert!(check::<Timestamp>(&f, two).is_err());
        let f2 = add_signature::<Timestamp>(&f, &b).unwrap();
        check::<Timestamp>(&f2, two).unwrap();
        // Signing again with the same key replaces, never duplicates.
        let f3 = add_signature::<Timestamp>(&f2, &b).unwrap();
        assert_eq!(valid_signatures::<Timestamp>(&f3, two).unwrap(), 2);
        // The bytes are canonical: parsing and re-encoding changes nothing.
        let v = canonical::parse(&f3.bytes).unwrap();
        assert_eq!(canonical::encode(&v).unwrap(), f3.bytes);
    }
}
