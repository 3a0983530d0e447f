//! Threshold signature verification, written once, and [`Verified`], the
//! only way to hold metadata that passed it.
//!
//! Security invariant: [`Verified<T>`] has private fields and its only
//! constructor is [`verify_role`] in this module. Every trust decision in the
//! client state machine ([`crate::trusted`]), the signer's self-check and the
//! repository audit goes through that one function, so the threshold rule
//! cannot drift between callers (tough once had two loops, only one of which
//! ignored repeated key ids; rust-tuf PR #283 and python-tuf PR #1091 fixed
//! the same class of bug).
//!
//! The rule (spec 5.3.4/5.4.2/5.5.3/5.6.3): at least `threshold` *distinct
//! keys*, each listed in the delegation's `keyids` and present in the
//! delegator's `keys`, made a valid signature over the canonical bytes of
//! `signed`. "Distinct" is enforced twice: a key id counts once, and two key
//! ids that declare the same key count once together. Keys are compared as
//! decoded public keys ([`crypto::KeyIdentity`]), not as the strings that
//! spell them.

use crate::crypto::{self, SignatureError};
use crate::metadata::{Envelope, Key, KeyId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroU64;
use std::ops::Deref;

/// The keys and threshold a delegator gives a role: what a signature set is
/// checked against.
#[derive(Clone, Copy, Debug)]
pub struct Authority<'a> {
    /// Key id -> key, from the delegator (root's `keys` or a targets role's
    /// `delegations.keys`).
    pub keys: &'a BTreeMap<KeyId, Key>,
    /// Key ids allowed to sign this role.
    pub keyids: &'a [KeyId],
    /// Distinct keys needed.
    pub threshold: NonZeroU64,
}

impl<'a> Authority<'a> {
    /// What root gives one of the top-level roles (spec 5.3 – 5.6). Parsing
    /// a root checks that all four are present.
    pub fn of_root(root: &'a crate::metadata::Root, role: &str) -> Self {
        let r = &root.roles[role];
        Authority {
            keys: &root.keys,
            keyids: &r.keyids,
            threshold: r.threshold,
        }
    }
}

/// Why a signature set did not reach its threshold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{role} has {valid} valid signature(s) from distinct trusted keys, needs {threshold}{}", detail(.rejected))]
pub struct ThresholdError {
    /// The role being verified.
    pub role: String,
    /// Valid signatures from distinct allowed keys.
    pub valid: u64,
    /// Required.
    pub threshold: u64,
    /// Why individual signatures did not count (key id, reason), for logs.
    pub rejected: Vec<(KeyId, String)>,
}

fn detail(rejected: &[(KeyId, String)]) -> String {
    if rejected.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = rejected
        .iter()
        .take(4)
        .map(|(k, why)| format!("{}: {why}", short(&k.0)))
        .collect();
    format!(" ({})", parts.join("; "))
}

fn short(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}

/// Counts valid signatures from distinct keys of `authority` over `canonical`.
///
/// This is the threshold function; it is `pub` so that the repository audit
/// and tests call it rather than re-implementing it.
pub fn count_valid_signatures(
    authority: Authority<'_>,
    canonical: &[u8],
    signatures: &[crate::metadata::Signature],
) -> (u64, Vec<(KeyId, String)>) {
    let by_keyid: HashMap<&KeyId, &str> = signatures
        .iter()
        .map(|s| (&s.keyid, s.sig.as_str()))
        .collect();
    let mut counted_ids: BTreeSet<&KeyId> = BTreeSet::new();
    let mut counted_keys = BTreeSet::new();
    let mut rejected = Vec::new();
    for keyid in authority.keyids {
        if !counted_ids.insert(keyid) {
            continue; // the same key id listed twice counts once
        }
        let Some(sig) = by_keyid.get(keyid) else {
            continue; // this key did not sign
        };
        let Some(key) = authority.keys.get(keyid) else {
            rejected.push((keyid.clone(), "key id not in the delegator's keys".into()));
            continue;
        };
        // 5.3.4 (and 5.4.2, 5.5.3, 5.6.3, 5.7): "a threshold of keys" means
        // distinct keys. A key is identified by its decoded material, never
        // by its spelling: the same key listed under two key ids (hex case,
        // PEM wrapping, keytype `ecdsa` beside `ecdsa-sha2-nistp256`) counts
        // once (go-tuf GHSA-3633-5h82-39pq is this bug with key ids alone).
        match crypto::verify_and_identify(key, sig, canonical) {
            Ok(identity) => {
                if !counted_keys.insert(identity) {
                    rejected.push((
                        keyid.clone(),
                        "same key material as another key id: counted once".into(),
                    ));
                }
            }
            Err(e @ SignatureError::Invalid { .. })
            | Err(e @ SignatureError::BadEncoding { .. })
            | Err(e @ SignatureError::BadKey { .. })
            | Err(e @ SignatureError::UnsupportedKey { .. }) => {
                rejected.push((keyid.clone(), e.to_string()));
            }
        }
    }
    (counted_keys.len() as u64, rejected)
}

/// Metadata whose signatures met the threshold of the authority it was
/// checked against. Deref gives read access to the payload.
#[derive(Clone, Debug)]
pub struct Verified<T> {
    envelope: Envelope<T>,
}

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.envelope.signed
    }
}

impl<T> Verified<T> {
    /// The envelope, e.g. to re-verify it against another delegator.
    pub fn envelope(&self) -> &Envelope<T> {
        &self.envelope
    }
}

/// Verifies `envelope` against `authority` and, if the threshold is met,
/// returns it as [`Verified`]. The only constructor of `Verified`.
pub fn verify_role<T>(
    role: &str,
    envelope: Envelope<T>,
    authority: Authority<'_>,
) -> Result<Verified<T>, ThresholdError> {
    check_threshold(role, &envelope, authority)?;
    Ok(Verified { envelope })
}

/// Like [`verify_role`] without taking ownership: for checks that must pass
/// before the document is accepted (e.g. a new root signed by the old one).
pub fn check_threshold<T>(
    role: &str,
    envelope: &Envelope<T>,
    authority: Authority<'_>,
) -> Result<(), ThresholdError> {
    check_threshold_over(
        role,
        &envelope.canonical_signed,
        &envelope.signatures,
        authority,
    )
}

/// [`check_threshold`] over canonical bytes and signatures that are not (yet)
/// in an envelope: the signer checks what it is about to write without
/// copying the payload.
pub fn check_threshold_over(
    role: &str,
    canonical: &[u8],
    signatures: &[crate::metadata::Signature],
    authority: Authority<'_>,
) -> Result<(), ThresholdError> {
    let (valid, rejected) = count_valid_signatures(authority, canonical, signatures);
    if valid >= authority.threshold.get() {
        Ok(())
    } else {
        Err(ThresholdError {
            role: role.to_owned(),
            valid,
            threshold: authority.threshold.get(),
            rejected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Ed25519Signer;
    use crate::metadata::{Signature, Timestamp};

    fn env_with(sigs: Vec<Signature>) -> Envelope<Timestamp> {
        let doc = serde_json::json!({
            "signed": {"_type":"timestamp","spec_version":"1.0.31","version":1,
                "expires":"2030-01-01T00:00:00Z","meta":{"snapshot.json":{"version":1}}},
            "signatures": []
        });
        let mut env = Envelope::<Timestamp>::from_value(doc).unwrap();
        env.signatures = sigs;
        env
    }

    fn sign(s: &Ed25519Signer, env: &Envelope<Timestamp>) -> Signature {
        Signature {
            keyid: s.keyid().clone(),
            sig: s.sign_hex(&env.canonical_signed),
        }
    }

    #[test]
    fn threshold_counts_distinct_keys() {
        let a = Ed25519Signer::from_seed(&[1; 32]);
        let b = Ed25519Signer::from_seed(&[2; 32]);
        let mut keys = BTreeMap::new();
        keys.insert(a.keyid().clone(), a.public_key().clone());
        keys.insert(b.keyid().clone(), b.public_key().clone());
        // The same key material under a second key id: must count once.
        let alias = KeyId("alias-of-a".into());
        keys.insert(alias.clone(), a.public_key().clone());
        let keyids = vec![a.keyid().clone(), alias.clone(), b.keyid().clone()];
        let two = NonZeroU64::new(2).unwrap();
        let auth = Authority {
            keys: &keys,
            keyids: &keyids,
            threshold: two,
        };

        let env = env_with(vec![]);
        let sa = sign(&a, &env);
        let alias_sig = Signature {
            keyid: alias,
            sig: sa.sig.clone(),
        };
        let env = env_with(vec![sa.clone(), alias_sig]);
        let err = check_threshold("timestamp", &env, auth).unwrap_err();
        assert_eq!(err.valid, 1);

        let sb = sign(&b, &env);
        let env = env_with(vec![sa, sb]);
        verify_role("timestamp", env, auth).unwrap();
    }

    #[test]
    fn signatures_from_unlisted_keys_do_not_count() {
        let a = Ed25519Signer::from_seed(&[1; 32]);
        let c = Ed25519Signer::from_seed(&[3; 32]);
        let mut keys = BTreeMap::new();
        keys.insert(a.keyid().clone(), a.public_key().clone());
        keys.insert(c.keyid().clone(), c.public_key().clone());
        let keyids = vec![a.keyid().clone()];
        let auth = Authority {
            keys: &keys,
            keyids: &keyids,
            threshold: NonZeroU64::MIN,
        };
        let env = env_with(vec![]);
        let sc = sign(&c, &env);
        let env = env_with(vec![sc]);
        assert!(check_threshold("timestamp", &env, auth).is_err());
    }

    #[test]
    fn a_bad_signature_beside_enough_good_ones_is_fine() {
        let a = Ed25519Signer::from_seed(&[1; 32]);
        let b = Ed25519Signer::from_seed(&[2; 32]);
        let mut keys = BTreeMap::new();
        keys.insert(a.keyid().clone(), a.public_key().clone());
        keys.insert(b.keyid().clone(), b.public_key().clone());
        let keyids = vec![a.keyid().clone(), b.keyid().clone()];
        let auth = Authority {
            keys: &keys,
            keyids: &keyids,
            threshold: NonZeroU64::MIN,
        };
        let env = env_with(vec![]);
        let sa = sign(&a, &env);
        let junk = Signature {
            keyid: b.keyid().clone(),
            sig: String::new(),
        };
        verify_role("timestamp", env_with(vec![junk, sa]), auth).unwrap();
    }
}
