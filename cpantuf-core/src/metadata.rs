//! The TUF 1.0.x metadata model: root, timestamp, snapshot, targets and
//! delegated targets, and the signed envelope around them.
//!
//! Parsing keeps two views of one document: the typed payload that the
//! client reasons about, and the canonical bytes of the *whole* `signed`
//! object, unknown fields included, that the signatures cover. Unknown fields
//! are therefore never lost for verification, even though the typed view
//! ignores them (spec 4.2: "implementations ... MUST preserve unrecognized
//! fields").
//!
//! Validation follows python-tuf's Metadata API, the reference
//! implementation, so that both accept the same documents: `_type` must match
//! the role, `spec_version` must be `1.0` or `1.x.y`, versions are positive
//! integers, `expires` is `YYYY-MM-DDTHH:MM:SSZ`, role key ids are unique,
//! thresholds are at least 1, signature key ids are unique.

use crate::canonical::{self, JsonError};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::num::NonZeroU64;

/// The four top-level role names, in the order the client loads them.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "timestamp", "snapshot", "targets"];

/// Above this size the canonical-form scan and the typed parse of a
/// document run on two threads.
const PARALLEL_PARSE_BYTES: usize = 256 * 1024;

/// The spec version this implementation writes.
pub const SPEC_VERSION: &str = "1.0.31";

/// A key id, as declared in metadata. Key ids are never recomputed from the
/// key material when verifying (spec 4.2 leaves their derivation to the
/// repository; python-tuf and the conformance suite take them as declared).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(pub String);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A public key as it appears in root or delegating targets metadata.
///
/// The key material is kept as declared; it is interpreted only when a
/// signature is checked (see [`crate::crypto`]), so that a key of an
/// unsupported type makes its signatures count for nothing instead of making
/// the whole document unreadable (spec 4.2 allows unknown key types).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    /// `ed25519`, `ecdsa`, `ecdsa-sha2-nistp256`, `rsa`, ...
    pub keytype: String,
    /// `ed25519`, `ecdsa-sha2-nistp256`, `rsassa-pss-sha256`, ...
    pub scheme: String,
    /// Key material.
    pub keyval: KeyVal,
}

/// The `keyval` object of a key. Only `public` is read; other fields are
/// not needed by a verifier (they stay covered by the signature through the
/// canonical bytes of the document).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    /// The public key (hex for ed25519, PEM for ECDSA and RSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<String>,
}

impl Key {
    /// The `keyval.public` string, if present.
    pub fn public(&self) -> Option<&str> {
        self.keyval.public.as_deref()
    }
}

/// One entry of the `signatures` list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The key id the signature claims to be made with.
    pub keyid: KeyId,
    /// The signature, hex-encoded.
    pub sig: String,
}

/// Key ids and threshold for one role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// Key ids allowed to sign the role (unique).
    pub keyids: Vec<KeyId>,
    /// How many distinct keys must sign.
    pub threshold: NonZeroU64,
}

/// Version and expiry shared by every role.
pub trait RoleMeta {
    /// The `_type` value of this role.
    const TYPE: &'static str;
    /// The metadata version.
    fn version(&self) -> NonZeroU64;
    /// The expiry time.
    fn expires(&self) -> DateTime<Utc>;
    /// Checks the invariants serde cannot express.
    fn validate(&self) -> Result<(), String>;
    /// Whether the metadata is expired at `reference_time` (spec 5.x:
    /// "expiration timestamp ... is higher than the fixed update start time"
    /// means valid; equal or lower means expired).
    fn is_expired(&self, reference_time: DateTime<Utc>) -> bool {
        reference_time >= self.expires()
    }
}

/// Root metadata (spec 4.3).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Root {
    /// Spec version this document claims.
    pub spec_version: String,
    /// Metadata version.
    pub version: NonZeroU64,
    /// Expiry.
    #[serde(with = "expiry")]
    pub expires: DateTime<Utc>,
    /// Whether the repository publishes consistent snapshots.
    #[serde(default)]
    pub consistent_snapshot: bool,
    /// All keys used by the top-level roles.
    pub keys: BTreeMap<KeyId, Key>,
    /// Keys and threshold of each top-level role.
    pub roles: BTreeMap<String, RoleKeys>,
}

/// Information about a metadata file in timestamp or snapshot (spec 4.4/4.5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    /// Version of the metadata file.
    pub version: NonZeroU64,
    /// Length in bytes, optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Hashes, optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
}

/// Timestamp metadata (spec 4.6).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Timestamp {
    /// Spec version this document claims.
    pub spec_version: String,
    /// Metadata version.
    pub version: NonZeroU64,
    /// Expiry.
    #[serde(with = "expiry")]
    pub expires: DateTime<Utc>,
    /// Must hold `snapshot.json`.
    pub meta: BTreeMap<String, MetaFile>,
}

impl Timestamp {
    /// The snapshot entry (presence checked by `validate`).
    pub fn snapshot_meta(&self) -> &MetaFile {
        &self.meta["snapshot.json"]
    }
}

/// Snapshot metadata (spec 4.4).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// Spec version this document claims.
    pub spec_version: String,
    /// Metadata version.
    pub version: NonZeroU64,
    /// Expiry.
    #[serde(with = "expiry")]
    pub expires: DateTime<Utc>,
    /// `ROLE.json` -> version (and optional length and hashes) of every
    /// targets-type role.
    #[serde(deserialize_with = "sorted_map::deserialize")]
    pub meta: BTreeMap<String, MetaFile>,
}

/// Information about one target file (spec 4.5 TARGETS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFile {
    /// Exact length in bytes.
    pub length: u64,
    /// At least one hash; every listed hash must match.
    pub hashes: BTreeMap<String, String>,
    /// Opaque application data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
}

/// A delegation from a targets role to another (spec 4.5 DELEGATIONS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedRole {
    /// The delegated role's name.
    pub name: String,
    /// Keys allowed to sign it.
    pub keyids: Vec<KeyId>,
    /// Distinct keys needed.
    pub threshold: NonZeroU64,
    /// Whether the search stops here when this delegation matches.
    #[serde(default)]
    pub terminating: bool,
    /// Glob patterns of target paths (exclusive with `path_hash_prefixes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of the sha256 of target paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
}

/// Succinct hash-bin delegations (TAP 15).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccinctRoles {
    /// Keys allowed to sign every bin.
    pub keyids: Vec<KeyId>,
    /// Distinct keys needed.
    pub threshold: NonZeroU64,
    /// Number of leading hash bits that select the bin (1..=32).
    pub bit_length: u32,
    /// Bin role names are `{name_prefix}-{hex suffix}`.
    pub name_prefix: String,
}

/// The `delegations` object of a targets role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegations {
    /// Keys of the delegated roles.
    pub keys: BTreeMap<KeyId, Key>,
    /// Ordered delegations (exclusive with `succinct_roles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    /// Succinct hash bins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
}

/// Targets metadata, top-level or delegated (spec 4.5).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Targets {
    /// Spec version this document claims.
    pub spec_version: String,
    /// Metadata version.
    pub version: NonZeroU64,
    /// Expiry.
    #[serde(with = "expiry")]
    pub expires: DateTime<Utc>,
    /// Target path -> file info.
    #[serde(deserialize_with = "sorted_map::deserialize")]
    pub targets: BTreeMap<String, TargetFile>,
    /// Delegations to other roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
}

fn validate_spec_version(v: &str) -> Result<(), String> {
    // python-tuf: "1.0" style (two parts) or "1.x.y"; major must be 1.
    let parts: Vec<&str> = v.split('.').collect();
    let numeric = parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !(numeric && (parts.len() == 2 || parts.len() == 3) && parts[0] == "1") {
        return Err(format!(
            "unsupported spec_version {v:?} (need 1.0 or 1.x.y)"
        ));
    }
    Ok(())
}

fn validate_keyids(what: &str, keyids: &[KeyId]) -> Result<(), String> {
    let unique: BTreeSet<&KeyId> = keyids.iter().collect();
    if unique.len() != keyids.len() {
        return Err(format!("{what} lists a key id more than once"));
    }
    Ok(())
}

fn validate_hashes(what: &str, hashes: &BTreeMap<String, String>) -> Result<(), String> {
    if hashes.is_empty() {
        return Err(format!("{what} has an empty hashes object"));
    }
    Ok(())
}

macro_rules! role_meta {
    ($t:ty, $name:literal, $validate:expr) => {
        impl RoleMeta for $t {
            const TYPE: &'static str = $name;
            fn version(&self) -> NonZeroU64 {
                self.version
            }
            fn expires(&self) -> DateTime<Utc> {
                self.expires
            }
            fn validate(&self) -> Result<(), String> {
                validate_spec_version(&self.spec_version)?;
                #[allow(clippy::redundant_closure_call)]
                ($validate)(self)
            }
        }
    };
}

role_meta!(Root, "root", |r: &Root| -> Result<(), String> {
    let names: BTreeSet<&str> = r.roles.keys().map(String::as_str).collect();
    let wanted: BTreeSet<&str> = TOP_LEVEL_ROLES.into_iter().collect();
    if names != wanted {
        return Err("root roles must be exactly root, timestamp, snapshot and targets".into());
    }
    for (name, role) in &r.roles {
        validate_keyids(&format!("root role {name}"), &role.keyids)?;
    }
    Ok(())
});

role_meta!(
    Timestamp,
    "timestamp",
    |t: &Timestamp| -> Result<(), String> {
        let meta = t
            .meta
            .get("snapshot.json")
            .ok_or("timestamp meta has no snapshot.json entry")?;
        meta_file_ok("snapshot.json", meta)
    }
);

role_meta!(Snapshot, "snapshot", |s: &Snapshot| -> Result<(), String> {
    for (name, meta) in &s.meta {
        meta_file_ok(name, meta)?;
    }
    Ok(())
});

role_meta!(Targets, "targets", |t: &Targets| -> Result<(), String> {
    for (path, target) in &t.targets {
        validate_hashes(&format!("target {path:?}"), &target.hashes)?;
    }
    if let Some(d) = &t.delegations {
        d.validate()?;
    }
    Ok(())
});

fn meta_file_ok(name: &str, m: &MetaFile) -> Result<(), String> {
    if let Some(h) = &m.hashes {
        validate_hashes(&format!("meta entry {name:?}"), h)?;
    }
    Ok(())
}

impl Delegations {
    fn validate(&self) -> Result<(), String> {
        match (&self.roles, &self.succinct_roles) {
            (Some(_), Some(_)) => {
                return Err("delegations has both roles and succinct_roles".into())
            }
            (None, None) => return Err("delegations has neither roles nor succinct_roles".into()),
            _ => {}
        }
        if let Some(roles) = &self.roles {
            let mut seen = BTreeSet::new();
            for role in roles {
                if TOP_LEVEL_ROLES.contains(&role.name.as_str()) {
                    return Err(format!(
                        "a delegated role may not use the top-level name {:?}",
                        role.name
                    ));
                }
                if !seen.insert(role.name.as_str()) {
                    return Err(format!("delegated role {:?} is listed twice", role.name));
                }
                validate_keyids(&format!("delegated role {:?}", role.name), &role.keyids)?;
                match (&role.paths, &role.path_hash_prefixes) {
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "delegated role {:?} has both paths and path_hash_prefixes",
                            role.name
                        ))
                    }
                    (None, None) => {
                        return Err(format!(
                            "delegated role {:?} has neither paths nor path_hash_prefixes",
                            role.name
                        ))
                    }
                    _ => {}
                }
            }
        }
        if let Some(s) = &self.succinct_roles {
            validate_keyids("succinct_roles", &s.keyids)?;
            if !(1..=32).contains(&s.bit_length) {
                return Err(format!(
                    "succinct_roles bit_length {} is outside 1..=32",
                    s.bit_length
                ));
            }
        }
        Ok(())
    }
}

/// Why a metadata document was refused before any signature was checked.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Not strict JSON, or not canonical-encodable.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The envelope is not `{"signed": {...}, "signatures": [...]}`.
    #[error("not a TUF metadata envelope: {0}")]
    Envelope(String),
    /// `_type` is not the expected role type.
    #[error("expected {expected} metadata, got _type {found:?}")]
    WrongType {
        /// The type the caller asked for.
        expected: &'static str,
        /// What the document says.
        found: String,
    },
    /// A field is missing, of the wrong type, or breaks a rule of the spec.
    #[error("invalid {role} metadata: {reason}")]
    Invalid {
        /// The role type being parsed.
        role: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A parsed metadata document, not yet verified: the typed payload, the
/// canonical bytes of `signed` that signatures cover, and the signatures.
///
/// Nothing outside [`crate::verify`] can turn this into trusted data.
#[derive(Clone, Debug)]
pub struct Envelope<T> {
    pub(crate) signed: T,
    pub(crate) canonical_signed: Vec<u8>,
    pub(crate) signatures: Vec<Signature>,
}

impl<T: RoleMeta + for<'de> Deserialize<'de>> Envelope<T> {
    /// Parses and validates a document of role type `T`.
    ///
    /// Fast path: when the bytes of `signed` are already in canonical form
    /// (cpantuf's signer writes them that way), they are checked in one scan
    /// and deserialised straight into `T`; the signature is then verified
    /// over exactly those bytes. Otherwise (pretty-printed metadata, e.g.
    /// from python-tuf) `signed` is parsed strictly and re-encoded. Both
    /// paths refuse duplicate keys and yield the same canonical bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetadataError> {
        if let Some((sigs, signed)) = canonical::split_canonical_envelope(bytes) {
            if let Some(env) = Self::from_canonical_parts(sigs, signed)? {
                return Ok(env);
            }
        }
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(borrow)]
            signed: &'a serde_json::value::RawValue,
            signatures: Vec<Signature>,
        }
        let raw: Raw<'_> = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_data() {
                MetadataError::Envelope(e.to_string())
            } else {
                MetadataError::Json(JsonError::Syntax(e.to_string()))
            }
        })?;
        let signed_raw = raw.signed.get().as_bytes();
        if let Some(env) = Self::from_canonical_parts_with(raw.signatures.clone(), signed_raw)? {
            return Ok(env);
        }
        let signed = canonical::parse(signed_raw)?;
        Self::from_parts(signed, raw.signatures)
    }

    /// The whole file is canonical: parse the signatures, then the signed
    /// object. `Ok(None)` means "not canonical after all, take the slow path".
    fn from_canonical_parts(sigs: &[u8], signed: &[u8]) -> Result<Option<Self>, MetadataError> {
        let Ok(signatures) = serde_json::from_slice::<Vec<Signature>>(sigs) else {
            return Ok(None);
        };
        Self::from_canonical_parts_with(signatures, signed)
    }

    fn from_canonical_parts_with(
        signatures: Vec<Signature>,
        signed_raw: &[u8],
    ) -> Result<Option<Self>, MetadataError> {
        let typed_parse = || -> Result<T, MetadataError> {
            serde_json::from_slice(signed_raw).map_err(|e| MetadataError::Invalid {
                role: T::TYPE,
                reason: e.to_string(),
            })
        };
        // Large documents (a CPAN-scale targets or snapshot): scan for
        // canonical form on a second thread while the typed parse runs
        // speculatively; the typed value is used only if the scan passes.
        let (scan, speculative) = if signed_raw.len() > PARALLEL_PARSE_BYTES {
            std::thread::scope(|sc| {
                let scan = sc.spawn(|| canonical::scan_canonical(signed_raw));
                let typed = typed_parse();
                (scan.join().unwrap_or(None), Some(typed))
            })
        } else {
            (canonical::scan_canonical(signed_raw), None)
        };
        let Some(scan) = scan else {
            return Ok(None);
        };
        let found = scan.type_field.unwrap_or_default();
        if found != T::TYPE {
            return Err(MetadataError::WrongType {
                expected: T::TYPE,
                found,
            });
        }
        let typed = match speculative {
            Some(t) => t?,
            None => typed_parse()?,
        };
        Self::finish(typed, signed_raw.to_vec(), signatures).map(Some)
    }

    /// Parses and validates an already-parsed document.
    pub fn from_value(value: Value) -> Result<Self, MetadataError> {
        let Value::Object(mut top) = value else {
            return Err(MetadataError::Envelope("top level is not an object".into()));
        };
        let signed = top
            .remove("signed")
            .ok_or_else(|| MetadataError::Envelope("no \"signed\" object".into()))?;
        let signatures = top
            .remove("signatures")
            .ok_or_else(|| MetadataError::Envelope("no \"signatures\" list".into()))?;
        let signatures: Vec<Signature> = Vec::<Signature>::deserialize(&signatures)
            .map_err(|e| MetadataError::Envelope(format!("bad signatures list: {e}")))?;
        Self::from_parts(signed, signatures)
    }

    fn from_parts(signed: Value, signatures: Vec<Signature>) -> Result<Self, MetadataError> {
        let found = signed.get("_type").and_then(Value::as_str).unwrap_or("");
        if found != T::TYPE {
            return Err(MetadataError::WrongType {
                expected: T::TYPE,
                found: found.to_owned(),
            });
        }
        let canonical_signed = canonical::encode(&signed)?;
        let typed = T::deserialize(&signed).map_err(|e| MetadataError::Invalid {
            role: T::TYPE,
            reason: e.to_string(),
        })?;
        Self::finish(typed, canonical_signed, signatures)
    }

    fn finish(
        typed: T,
        canonical_signed: Vec<u8>,
        signatures: Vec<Signature>,
    ) -> Result<Self, MetadataError> {
        let mut seen = BTreeSet::new();
        for s in &signatures {
            // Spec 4.2: "the keyid MUST be unique in the signatures array".
            if !seen.insert(&s.keyid) {
                return Err(MetadataError::Envelope(format!(
                    "more than one signature for key id {}",
                    s.keyid
                )));
            }
        }
        typed.validate().map_err(|reason| MetadataError::Invalid {
            role: T::TYPE,
            reason,
        })?;
        Ok(Envelope {
            signed: typed,
            canonical_signed,
            signatures,
        })
    }
}

impl<T> Envelope<T> {
    /// The unverified payload, for diagnostics and for the signer's own
    /// bookkeeping. Trust decisions use [`crate::verify::Verified`].
    pub fn unverified(&self) -> &T {
        &self.signed
    }
    /// The unverified payload, taken out of the envelope: for the signer
    /// taking its published state apart without copying. The envelope is
    /// consumed, so no signatures are left that no longer describe it.
    pub fn into_unverified(self) -> T {
        self.signed
    }
    /// The signatures as received.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }
    /// The canonical bytes that the signatures cover.
    pub fn canonical_signed(&self) -> &[u8] {
        &self.canonical_signed
    }
}

/// Serialises a role payload with its `_type`, as the `signed` object.
pub fn signed_value<T: RoleMeta + Serialize>(signed: &T) -> Value {
    let mut v = serde_json::to_value(signed).expect("metadata types always serialise");
    if let Value::Object(m) = &mut v {
        m.insert("_type".into(), Value::String(T::TYPE.into()));
    }
    v
}

/// Deserialises a JSON object into a map in one bulk build when its keys
/// arrive sorted, as canonical JSON has them: a CPAN-scale snapshot has
/// ~15,000 entries, and inserting them one by one was most of the cost of
/// reading it. Keys out of order take the insert path; a duplicate key is
/// an error either way.
mod sorted_map {
    use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor};
    use std::collections::BTreeMap;
    use std::fmt;
    use std::marker::PhantomData;

    pub fn deserialize<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
    where
        D: Deserializer<'de>,
        V: Deserialize<'de>,
    {
        struct Visit<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Visit<V> {
            type Value = BTreeMap<String, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                let mut sorted = true;
                while let Some((k, v)) = a.next_entry::<String, V>()? {
                    if entries.last().is_some_and(|(last, _)| *last >= k) {
                        sorted = false;
                    }
                    entries.push((k, v));
                }
                if sorted {
                    // Strictly increasing: no duplicates; bulk-built.
                    return Ok(entries.into_iter().collect());
                }
                let mut m = BTreeMap::new();
                for (k, v) in entries {
                    if m.contains_key(&k) {
                        return Err(A::Error::custom(format!("duplicate key {k:?}")));
                    }
                    m.insert(k, v);
                }
                Ok(m)
            }
        }
        d.deserialize_map(Visit(PhantomData))
    }
}

/// `expires` as python-tuf writes and reads it: `%Y-%m-%dT%H:%M:%SZ`.
pub mod expiry {
    use super::*;

    /// Formats a time the way TUF metadata writes it.
    pub fn format(t: &DateTime<Utc>) -> String {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    /// Parses a TUF expiry string.
    pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ")
            .map(|n| n.and_utc())
            .map_err(|e| format!("expires {s:?} is not YYYY-MM-DDTHH:MM:SSZ: {e}"))
    }

    pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_bulk_built_when_sorted_and_still_refuse_duplicates() {
        let doc = |meta: &str| {
            format!(
                r#"{{"spec_version":"1.0.31","version":3,"expires":"2030-01-01T00:00:00Z","meta":{{{meta}}}}}"#
            )
        };
        let sorted: Snapshot = serde_json::from_str(&doc(
            r#""a.json":{"version":1},"b.json":{"version":2},"c.json":{"version":3}"#,
        ))
        .unwrap();
        let unsorted: Snapshot = serde_json::from_str(&doc(
            r#""c.json":{"version":3},"a.json":{"version":1},"b.json":{"version":2}"#,
        ))
        .unwrap();
        assert_eq!(sorted.meta, unsorted.meta);
        assert_eq!(sorted.meta.len(), 3);
        for dup in [
            r#""a.json":{"version":1},"a.json":{"version":2}"#,
            r#""b.json":{"version":1},"a.json":{"version":1},"b.json":{"version":2}"#,
        ] {
            let err = serde_json::from_str::<Snapshot>(&doc(dup)).unwrap_err();
            assert!(err.to_string().contains("duplicate key"), "{err}");
        }
    }

    const TS: &str = r#"{"signed":{"_type":"timestamp","spec_version":"1.0.31","version":3,
        "expires":"2030-01-01T00:00:00Z","meta":{"snapshot.json":{"version":7}},"x-extra":{"b":1}},
        "signatures":[{"keyid":"ab","sig":"00"}]}"#;

    #[test]
    fn parses_and_keeps_unknown_fields_in_signed_bytes() {
        let env = Envelope::<Timestamp>::from_bytes(TS.as_bytes()).unwrap();
        assert_eq!(env.unverified().snapshot_meta().version.get(), 7);
        let canon = String::from_utf8(env.canonical_signed().to_vec()).unwrap();
        assert!(canon.contains(r#""x-extra":{"b":1}"#), "{canon}");
    }

    #[test]
    fn canonical_and_pretty_documents_give_the_same_signed_bytes() {
        let pretty = Envelope::<Timestamp>::from_bytes(TS.as_bytes()).unwrap();
        let compact = format!(
            "{{\"signatures\":[],\"signed\":{}}}",
            String::from_utf8(pretty.canonical_signed().to_vec()).unwrap()
        );
        let fast = Envelope::<Timestamp>::from_bytes(compact.as_bytes()).unwrap();
        assert_eq!(fast.canonical_signed(), pretty.canonical_signed());
        assert_eq!(fast.unverified().version, pretty.unverified().version);
        // A duplicate key inside signed is refused on either path.
        let dup = compact.replace("\"version\":3", "\"version\":3,\"version\":4");
        assert!(Envelope::<Timestamp>::from_bytes(dup.as_bytes()).is_err());
    }

    #[test]
    fn refuses_wrong_type() {
        let err = Envelope::<Snapshot>::from_bytes(TS.as_bytes()).unwrap_err();
        assert!(matches!(
            err,
            MetadataError::WrongType {
                expected: "snapshot",
                ..
            }
        ));
    }

    #[test]
    fn refuses_bad_versions_and_spec_versions() {
        for (from, to) in [
            ("\"version\":3", "\"version\":0"),
            ("\"version\":3", "\"version\":-3"),
            ("\"version\":3", "\"version\":true"),
            ("\"version\":3", "\"version\":\"3\""),
            ("\"version\":3", "\"version\":3.0"),
            ("\"version\":3", "\"version\":99999999999999999999999"),
            ("1.0.31", "2.0.0"),
            ("1.0.31", "1.0.x"),
            ("1.0.31", "1"),
            ("2030-01-01T00:00:00Z", "2030-01-01 00:00:00"),
            ("{\"version\":7}", "{\"version\":7,\"hashes\":{}}"),
            (
                "\"meta\":{\"snapshot.json\"",
                "\"meta\":{\"snapshotx.json\"",
            ),
            (
                "[{\"keyid\":\"ab\",\"sig\":\"00\"}]",
                "[{\"keyid\":\"ab\",\"sig\":\"00\"},{\"keyid\":\"ab\",\"sig\":\"01\"}]",
            ),
            ("[{\"keyid\":\"ab\",\"sig\":\"00\"}]", "{}"),
        ] {
            let doc = TS.replace(from, to);
            assert_ne!(doc, TS, "replacement {from} not applied");
            assert!(
                Envelope::<Timestamp>::from_bytes(doc.as_bytes()).is_err(),
                "accepted {to}"
            );
        }
        // "1.0" and any 1.x.y are accepted.
        for ok in ["1.0", "1.2.3", "1.0.0"] {
            let doc = TS.replace("1.0.31", ok);
            Envelope::<Timestamp>::from_bytes(doc.as_bytes()).unwrap();
        }
    }

    #[test]
    fn expiry_is_inclusive() {
        let env = Envelope::<Timestamp>::from_bytes(TS.as_bytes()).unwrap();
        let t = env.unverified();
        assert!(t.is_expired(t.expires));
        assert!(!t.is_expired(t.expires - chrono::Duration::seconds(1)));
    }
}
