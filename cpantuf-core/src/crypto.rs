//! Signature schemes: verification of ed25519, ecdsa-sha2-nistp256 and
//! rsassa-pss-sha256 signatures, and ed25519 signing for the repository side.
//!
//! Key formats follow securesystemslib, which python-tuf uses:
//!
//! | keytype                        | scheme                | `keyval.public`      | signature        |
//! |--------------------------------|-----------------------|----------------------|------------------|
//! | `ed25519`                      | `ed25519`             | 32 bytes, hex        | 64 bytes, hex    |
//! | `ecdsa` / `ecdsa-sha2-nistp256`| `ecdsa-sha2-nistp256` | PEM SubjectPublicKeyInfo | DER, hex     |
//! | `rsa`                          | `rsassa-pss-sha256`   | PEM SubjectPublicKeyInfo | hex          |
//!
//! A key this module cannot interpret, or a signature that is not even
//! well-formed, is reported as an error for that one signature; the threshold
//! logic in [`crate::verify`] then simply does not count it.

use crate::canonical;
use crate::metadata::{Key, KeyId};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Why one signature did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The keytype/scheme pair is not one this implementation supports.
    #[error("unsupported key type {keytype:?} with scheme {scheme:?}")]
    UnsupportedKey {
        /// Declared key type.
        keytype: String,
        /// Declared scheme.
        scheme: String,
    },
    /// The public key material could not be decoded.
    #[error("malformed {scheme} public key: {reason}")]
    BadKey {
        /// Declared scheme.
        scheme: String,
        /// Decoder's complaint.
        reason: String,
    },
    /// The signature is not valid hex or not of the scheme's encoding.
    #[error("malformed {scheme} signature encoding")]
    BadEncoding {
        /// Declared scheme.
        scheme: String,
    },
    /// Well-formed, but does not verify.
    #[error("{scheme} signature does not verify")]
    Invalid {
        /// Declared scheme.
        scheme: String,
    },
}

/// Checks `sig_hex` over `message` with `key`.
pub fn verify_signature(key: &Key, sig_hex: &str, message: &[u8]) -> Result<(), SignatureError> {
    verify_and_identify(key, sig_hex, message).map(drop)
}

/// Checks `sig_hex` over `message` with `key` and, when it verifies, returns
/// the identity of the key that made it, so that a threshold counts each key
/// once however many key ids name it (see [`KeyIdentity`]).
pub fn verify_and_identify(
    key: &Key,
    sig_hex: &str,
    message: &[u8],
) -> Result<KeyIdentity, SignatureError> {
    let public = PublicKey::decode(key)?;
    public.verify(&key.scheme, sig_hex, message)?;
    Ok(public.identity())
}

/// The key material itself, independent of how a metadata file spells it:
/// hex case of an ed25519 key, PEM line wrapping, a compressed or
/// uncompressed ECDSA point, the keytype alias `ecdsa` or
/// `ecdsa-sha2-nistp256`. Two keys with the same identity are one key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyIdentity {
    algorithm: &'static str,
    material: Vec<u8>,
}

/// A public key decoded from its TUF form.
enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    EcdsaP256(p256::ecdsa::VerifyingKey),
    RsaPss(rsa::RsaPublicKey),
}

impl PublicKey {
    /// Decodes `keyval.public` for the keytype/scheme pairs of the table above.
    fn decode(key: &Key) -> Result<PublicKey, SignatureError> {
        let scheme = key.scheme.as_str();
        let bad_key = |reason: String| SignatureError::BadKey {
            scheme: scheme.to_owned(),
            reason,
        };
        let public = key
            .public()
            .ok_or_else(|| bad_key("no keyval.public".into()))?;
        match (key.keytype.as_str(), scheme) {
            ("ed25519", "ed25519") => {
                let raw = hex::decode(public).map_err(|e| bad_key(e.to_string()))?;
                let raw: [u8; 32] = raw.try_into().map_err(|_| bad_key("not 32 bytes".into()))?;
                ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map(PublicKey::Ed25519)
                    .map_err(|e| bad_key(e.to_string()))
            }
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                use p256::pkcs8::DecodePublicKey;
                p256::ecdsa::VerifyingKey::from_public_key_pem(public)
                    .map(PublicKey::EcdsaP256)
                    .map_err(|e| bad_key(e.to_string()))
            }
            ("rsa", "rsassa-pss-sha256") => {
                use rsa::pkcs8::DecodePublicKey;
                rsa::RsaPublicKey::from_public_key_pem(public)
                    .map(PublicKey::RsaPss)
                    .map_err(|e| bad_key(e.to_string()))
            }
            (keytype, scheme) => Err(SignatureError::UnsupportedKey {
                keytype: keytype.to_owned(),
                scheme: scheme.to_owned(),
            }),
        }
    }

    fn verify(&self, scheme: &str, sig_hex: &str, message: &[u8]) -> Result<(), SignatureError> {
        let bad_enc = || SignatureError::BadEncoding {
            scheme: scheme.to_owned(),
        };
        let invalid = || SignatureError::Invalid {
            scheme: scheme.to_owned(),
        };
        let sig = hex::decode(sig_hex).map_err(|_| bad_enc())?;
        match self {
            PublicKey::Ed25519(vk) => {
                let sig = ed25519_dalek::Signature::from_slice(&sig).map_err(|_| bad_enc())?;
                vk.verify_strict(message, &sig).map_err(|_| invalid())
            }
            PublicKey::EcdsaP256(vk) => {
                use p256::ecdsa::signature::Verifier;
                let sig = p256::ecdsa::Signature::from_der(&sig).map_err(|_| bad_enc())?;
                vk.verify(message, &sig).map_err(|_| invalid())
            }
            PublicKey::RsaPss(pk) => {
                use rsa::signature::Verifier;
                let vk = rsa::pss::VerifyingKey::<Sha256>::new(pk.clone());
                let sig = rsa::pss::Signature::try_from(sig.as_slice()).map_err(|_| bad_enc())?;
                vk.verify(message, &sig).map_err(|_| invalid())
            }
        }
    }

    /// Canonical bytes of the decoded key: the re-compressed ed25519 point,
    /// the uncompressed SEC1 P-256 point, RSA's modulus and exponent.
    fn identity(&self) -> KeyIdentity {
        let (algorithm, material) = match self {
            PublicKey::Ed25519(vk) => ("ed25519", vk.to_edwards().compress().to_bytes().to_vec()),
            PublicKey::EcdsaP256(vk) => {
                ("ecdsa-p256", vk.to_encoded_point(false).as_bytes().to_vec())
            }
            PublicKey::RsaPss(pk) => {
                use rsa::traits::PublicKeyParts;
                let (n, e) = (pk.n().to_bytes_be(), pk.e().to_bytes_be());
                // Length-prefixed, so no (n, e) pair can pass for another.
                let mut m = (n.len() as u64).to_be_bytes().to_vec();
                m.extend(n);
                m.extend(e);
                ("rsa", m)
            }
        };
        KeyIdentity {
            algorithm,
            material,
        }
    }
}

/// Computes a securesystemslib-style key id: the sha256 of the canonical JSON
/// of `{"keytype", "scheme", "keyval"}`. Used only when *creating* keys; the
/// client takes key ids as declared.
pub fn compute_keyid(key: &Key) -> KeyId {
    let v = json!({"keytype": key.keytype, "scheme": key.scheme, "keyval": key.keyval});
    let bytes = canonical::encode(&v).expect("key JSON has no floats");
    KeyId(hex::encode(Sha256::digest(bytes)))
}

/// Why a private key could not be loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The PEM is not a PKCS#8 ed25519 private key (encrypted or not).
    #[error("not a PKCS#8 ed25519 private key: {0}")]
    Format(String),
    /// The key is encrypted and no passphrase was given, or it was wrong.
    #[error("cannot decrypt the private key: wrong or missing passphrase")]
    Passphrase,
}

/// An ed25519 signing key (the only scheme the repository side signs with).
pub struct Ed25519Signer {
    key: ed25519_dalek::SigningKey,
    public: Key,
    keyid: KeyId,
}

impl Ed25519Signer {
    /// Generates a fresh key from the operating system's RNG.
    pub fn generate() -> Self {
        Self::from_signing_key(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Builds a signer from 32 secret bytes (tests and deterministic fixtures).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_signing_key(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    fn from_signing_key(key: ed25519_dalek::SigningKey) -> Self {
        let public = ed25519_public_key(&key.verifying_key());
        let keyid = compute_keyid(&public);
        Ed25519Signer { key, public, keyid }
    }

    /// Loads a PKCS#8 PEM (`BEGIN PRIVATE KEY`, or `BEGIN ENCRYPTED PRIVATE
    /// KEY` with a passphrase), as written by [`Self::to_pkcs8_pem`] or
    /// `openssl genpkey -algorithm ed25519`.
    pub fn from_pkcs8_pem(pem: &str, passphrase: Option<&str>) -> Result<Self, KeyFileError> {
        if pem.contains("BEGIN ENCRYPTED PRIVATE KEY") {
            let pass = passphrase.ok_or(KeyFileError::Passphrase)?;
            let key = ed25519_dalek::SigningKey::from_pkcs8_encrypted_pem(pem, pass)
                .map_err(|_| KeyFileError::Passphrase)?;
            return Ok(Self::from_signing_key(key));
        }
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| KeyFileError::Format(e.to_string()))?;
        Ok(Self::from_signing_key(key))
    }

    /// Writes the key as PKCS#8 PEM, encrypted (PBES2, scrypt, AES-256-CBC)
    /// when a passphrase is given.
    pub fn to_pkcs8_pem(&self, passphrase: Option<&str>) -> Result<String, KeyFileError> {
        let pem = match passphrase {
            Some(p) => {
                self.key
                    .to_pkcs8_encrypted_pem(&mut rand::rngs::OsRng, p, Default::default())
            }
            None => self.key.to_pkcs8_pem(Default::default()),
        }
        .map_err(|e| KeyFileError::Format(e.to_string()))?;
        Ok(pem.to_string())
    }

    /// The public key as a PEM SubjectPublicKeyInfo (for operators' records).
    pub fn public_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(Default::default())
            .expect("ed25519 public keys always encode")
    }

    /// The public key in TUF form.
    pub fn public_key(&self) -> &Key {
        &self.public
    }

    /// The key id of the public key.
    pub fn keyid(&self) -> &KeyId {
        &self.keyid
    }

    /// Signs `message`, returning the hex signature.
    pub fn sign_hex(&self, message: &[u8]) -> String {
        use ed25519_dalek::Signer;
        hex::encode(self.key.sign(message).to_bytes())
    }
}

/// The TUF form of a PEM SubjectPublicKeyInfo ed25519 key (as [`Ed25519Signer::public_pem`]
/// writes it).
pub fn ed25519_key_from_public_pem(pem: &str) -> Result<Key, KeyFileError> {
    use ed25519_dalek::pkcs8::DecodePublicKey as _;
    let vk = ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
        .map_err(|e| KeyFileError::Format(e.to_string()))?;
    Ok(ed25519_public_key(&vk))
}

/// The TUF form of an ed25519 public key.
pub fn ed25519_public_key(vk: &ed25519_dalek::VerifyingKey) -> Key {
    Key {
        keytype: "ed25519".into(),
        scheme: "ed25519".into(),
        keyval: crate::metadata::KeyVal {
            public: Some(hex::encode(vk.to_bytes())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_sign_verify_and_tamper() {
        let s = Ed25519Signer::from_seed(&[7; 32]);
        let sig = s.sign_hex(b"hello");
        verify_signature(s.public_key(), &sig, b"hello").unwrap();
        assert!(matches!(
            verify_signature(s.public_key(), &sig, b"hellO"),
            Err(SignatureError::Invalid { .. })
        ));
        assert!(matches!(
            verify_signature(s.public_key(), "zz", b"hello"),
            Err(SignatureError::BadEncoding { .. })
        ));
        assert!(matches!(
            verify_signature(s.public_key(), "", b"hello"),
            Err(SignatureError::BadEncoding { .. })
        ));
    }

    #[test]
    fn ecdsa_p256_der_signatures_verify() {
        use p256::ecdsa::signature::Signer;
        use p256::pkcs8::EncodePublicKey;
        let sk = p256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap();
        let pem = sk
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap();
        let key: Key = serde_json::from_value(json!({
            "keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": pem}
        }))
        .unwrap();
        let sig: p256::ecdsa::Signature = sk.sign(b"msg");
        let sig_hex = hex::encode(sig.to_der().as_bytes());
        verify_signature(&key, &sig_hex, b"msg").unwrap();
        assert!(verify_signature(&key, &sig_hex, b"msh").is_err());
    }

    #[test]
    fn unknown_key_types_are_an_error_for_that_signature_only() {
        let key: Key = serde_json::from_value(json!({
            "keytype": "dsa", "scheme": "dsa-sha1", "keyval": {"public": "00"}
        }))
        .unwrap();
        assert!(matches!(
            verify_signature(&key, "00", b"m"),
            Err(SignatureError::UnsupportedKey { .. })
        ));
    }

    #[test]
    fn pkcs8_round_trip_with_and_without_passphrase() {
        let s = Ed25519Signer::from_seed(&[9; 32]);
        let plain = s.to_pkcs8_pem(None).unwrap();
        assert!(plain.contains("BEGIN PRIVATE KEY"));
        let back = Ed25519Signer::from_pkcs8_pem(&plain, None).unwrap();
        assert_eq!(back.keyid(), s.keyid());
        let enc = s.to_pkcs8_pem(Some("correct horse")).unwrap();
        assert!(enc.contains("BEGIN ENCRYPTED PRIVATE KEY"));
        assert!(matches!(
            Ed25519Signer::from_pkcs8_pem(&enc, Some("wrong")),
            Err(KeyFileError::Passphrase)
        ));
        assert!(matches!(
            Ed25519Signer::from_pkcs8_pem(&enc, None),
            Err(KeyFileError::Passphrase)
        ));
        let back = Ed25519Signer::from_pkcs8_pem(&enc, Some("correct horse")).unwrap();
        assert_eq!(back.keyid(), s.keyid());
    }
}
