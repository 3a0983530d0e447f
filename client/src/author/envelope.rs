//! The signed role file an author uploads: canonical JSON `{"signatures": [...], "signed":
//! {...}}`, the same form `cpantuf-sign` writes, so PAUSE publishes the author's bytes as
//! they are. A role split into hash bins uploads the roles it signs together, as
//! `{"roles": {NAME: envelope, ...}}` ([`bundle`]).

use cpantuf_core::canonical;
use cpantuf_core::crypto::Ed25519Signer;
use cpantuf_core::metadata::{signed_value, Targets};

/// `payload` signed by `key`, as the bytes of the file to upload.
pub fn sign(payload: &Targets, key: &Ed25519Signer) -> Vec<u8> {
    sign_with(payload, &[key])
}

/// `payload` signed by each of `keys` (a rotation: the new key and the old one).
pub fn sign_with(payload: &Targets, keys: &[&Ed25519Signer]) -> Vec<u8> {
    let signed = signed_value(payload);
    let message = canonical::encode(&signed).expect("metadata holds integers only");
    let signatures: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| serde_json::json!({"keyid": k.keyid(), "sig": k.sign_hex(&message)}))
        .collect();
    let envelope = serde_json::json!({"signatures": signatures, "signed": signed});
    canonical::encode(&envelope).expect("metadata holds integers only")
}

/// The roles of one upload, each already signed, as one file: `{"roles": {NAME: envelope}}`
/// in canonical JSON (PAUSE checks and publishes each envelope as it is).
pub fn bundle(signed: &[(String, Vec<u8>)]) -> Vec<u8> {
    let roles: serde_json::Map<String, serde_json::Value> = signed
        .iter()
        .map(|(name, bytes)| {
            let env = serde_json::from_slice(bytes).expect("sign_with writes JSON");
            (name.clone(), env)
        })
        .collect();
    canonical::encode(&serde_json::json!({ "roles": roles })).expect("metadata holds integers only")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpantuf_core::metadata::Envelope;
    use cpantuf_core::verify::{check_threshold, Authority};
    use std::collections::BTreeMap;
    use std::num::NonZeroU64;

    #[test]
    fn the_signed_file_verifies_with_the_author_key_only() {
        let key = Ed25519Signer::from_seed(&[7; 32]);
        let other = Ed25519Signer::from_seed(&[8; 32]);
        let payload = Targets {
            spec_version: "1.0.31".into(),
            version: NonZeroU64::new(2).unwrap(),
            expires: chrono::DateTime::from_timestamp(2_000_000_000, 0).unwrap(),
            targets: BTreeMap::new(),
            delegations: None,
        };
        let bytes = sign(&payload, &key);
        let env = Envelope::<Targets>::from_bytes(&bytes).unwrap();
        assert_eq!(env.unverified().version.get(), 2);
        for (signer, ok) in [(&key, true), (&other, false)] {
            let keys = BTreeMap::from([(signer.keyid().clone(), signer.public_key().clone())]);
            let ids = [signer.keyid().clone()];
            let auth = Authority {
                keys: &keys,
                keyids: &ids,
                threshold: NonZeroU64::MIN,
            };
            assert_eq!(check_threshold("author-X", &env, auth).is_ok(), ok);
        }
    }

    #[test]
    fn a_bundle_holds_each_envelope_byte_for_byte() {
        let key = Ed25519Signer::from_seed(&[7; 32]);
        let payload = Targets {
            spec_version: "1.0.31".into(),
            version: NonZeroU64::new(2).unwrap(),
            expires: chrono::DateTime::from_timestamp(2_000_000_000, 0).unwrap(),
            targets: BTreeMap::new(),
            delegations: None,
        };
        let one = sign(&payload, &key);
        let file = bundle(&[("author-X-0".into(), one.clone())]);
        let v: serde_json::Value = serde_json::from_slice(&file).unwrap();
        let again = canonical::encode(&v["roles"]["author-X-0"]).unwrap();
        assert_eq!(again, one);
    }
}
