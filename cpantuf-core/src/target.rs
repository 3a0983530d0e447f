//! Length and hash checks for downloaded bytes: target files (spec 5.7.3)
//! and metadata files listed with `length`/`hashes` in timestamp or snapshot
//! (spec 5.5.2, 5.6.2).
//!
//! [`StreamVerifier`] is fed the bytes as they arrive, so a download can be
//! written to a temporary file while it is hashed, and refuses the first byte
//! past the expected length (endless-data attack). Only after
//! [`StreamVerifier::finish`] succeeds may the caller move the file into
//! place; nothing here hands out unverified bytes.

use crate::metadata::{MetaFile, TargetFile};
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use std::collections::BTreeMap;

/// Why downloaded bytes were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashError {
    /// More bytes arrived than the metadata allows.
    #[error("{}", too_long(.what, *.expected, *.signed))]
    TooLong {
        /// What was being checked.
        what: String,
        /// The length from metadata or the configured cap.
        expected: u64,
        /// Whether `expected` is a signed length (else a configured cap).
        signed: bool,
    },
    /// The length differs from the metadata.
    #[error("{what} is {actual} bytes, but its signed length is {expected}")]
    Length {
        /// What was being checked.
        what: String,
        /// Signed length.
        expected: u64,
        /// Received length.
        actual: u64,
    },
    /// A hash differs.
    #[error("{what}: {algorithm} hash mismatch (expected {expected}, got {actual})")]
    Mismatch {
        /// What was being checked.
        what: String,
        /// Hash name.
        algorithm: String,
        /// Signed digest.
        expected: String,
        /// Computed digest.
        actual: String,
    },
    /// The metadata names a hash algorithm this client does not know; it
    /// cannot be checked, so the file is refused (as python-tuf does).
    #[error("{what}: unsupported hash algorithm {0:?}", .algorithm)]
    Unsupported {
        /// What was being checked.
        what: String,
        /// Hash name.
        algorithm: String,
    },
}

fn too_long(what: &str, expected: u64, signed: bool) -> String {
    if signed {
        format!(
            "{what} is larger than its signed length of {expected} bytes (a substituted or \
             endless file): refused"
        )
    } else {
        format!("{what}: more than the {expected}-byte limit (endless data refused)")
    }
}

enum Hasher {
    Sha224(Sha224),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    fn new(name: &str) -> Option<Self> {
        Some(match name {
            "sha224" => Hasher::Sha224(Sha224::new()),
            "sha256" => Hasher::Sha256(Sha256::new()),
            "sha384" => Hasher::Sha384(Sha384::new()),
            "sha512" => Hasher::Sha512(Sha512::new()),
            _ => return None,
        })
    }
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha224(h) => h.update(b),
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha384(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }
    fn finish(self) -> String {
        match self {
            Hasher::Sha224(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha384(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// Incremental length-and-hash verification of one download.
pub struct StreamVerifier {
    what: String,
    max_len: u64,
    exact_len: Option<u64>,
    seen: u64,
    hashers: Vec<(String, String, Hasher)>,
}

impl StreamVerifier {
    /// Starts checking bytes against `expected_len` (exact, if signed) and
    /// `hashes` (all must match), accepting at most `max_len` bytes when no
    /// length is signed.
    pub fn new(
        what: impl Into<String>,
        expected_len: Option<u64>,
        max_len: u64,
        hashes: Option<&BTreeMap<String, String>>,
    ) -> Result<Self, HashError> {
        let what = what.into();
        let mut hashers = Vec::new();
        for (alg, digest) in hashes.into_iter().flatten() {
            let h = Hasher::new(alg).ok_or_else(|| HashError::Unsupported {
                what: what.clone(),
                algorithm: alg.clone(),
            })?;
            hashers.push((alg.clone(), digest.to_ascii_lowercase(), h));
        }
        Ok(StreamVerifier {
            max_len: expected_len.unwrap_or(max_len),
            exact_len: expected_len,
            what,
            seen: 0,
            hashers,
        })
    }

    /// For a target file: exact length and every hash.
    pub fn for_target(name: &str, info: &TargetFile) -> Result<Self, HashError> {
        Self::new(
            format!("target {name}"),
            Some(info.length),
            info.length,
            Some(&info.hashes),
        )
    }

    /// For a metadata file: length and hashes when the meta entry has them,
    /// else the role's size cap.
    pub fn for_meta(name: &str, meta: &MetaFile, cap: u64) -> Result<Self, HashError> {
        Self::new(name, meta.length, cap, meta.hashes.as_ref())
    }

    /// The most bytes this verifier will accept.
    pub fn max_len(&self) -> u64 {
        self.max_len
    }

    /// Feeds the next chunk.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), HashError> {
        self.seen += chunk.len() as u64;
        if self.seen > self.max_len {
            return Err(HashError::TooLong {
                what: self.what.clone(),
                expected: self.max_len,
                signed: self.exact_len.is_some(),
            });
        }
        for (_, _, h) in &mut self.hashers {
            h.update(chunk);
        }
        Ok(())
    }

    /// Checks length and hashes once every byte was fed.
    pub fn finish(self) -> Result<(), HashError> {
        if let Some(expected) = self.exact_len {
            if self.seen != expected {
                return Err(HashError::Length {
                    what: self.what,
                    expected,
                    actual: self.seen,
                });
            }
        }
        for (alg, expected, h) in self.hashers {
            let actual = h.finish();
            if actual != expected {
                return Err(HashError::Mismatch {
                    what: self.what,
                    algorithm: alg,
                    expected,
                    actual,
                });
            }
        }
        Ok(())
    }

    /// Convenience: checks a whole buffer.
    pub fn check_all(mut self, bytes: &[u8]) -> Result<(), HashError> {
        self.update(bytes)?;
        self.finish()
    }
}

/// Whether `reader` yields exactly the bytes `info` describes for target
/// `name` (length and every hash, spec 5.7.4). For files already on disk: a
/// client cache, an interrupted sync's staging area. Any read error, unknown
/// hash algorithm or mismatch is `false`.
pub fn reader_matches(name: &str, info: &TargetFile, mut reader: impl std::io::Read) -> bool {
    let Ok(mut v) = StreamVerifier::for_target(name, info) else {
        return false;
    };
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return v.finish().is_ok(),
            Ok(n) => {
                if v.update(&buf[..n]).is_err() {
                    return false;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(data: &[u8]) -> TargetFile {
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".into(), sha256_hex(data));
        hashes.insert("sha512".into(), hex::encode(Sha512::digest(data)));
        TargetFile {
            length: data.len() as u64,
            hashes,
            custom: None,
        }
    }

    #[test]
    fn reader_matches_checks_length_and_hashes() {
        let i = TargetFile {
            length: 5,
            hashes: BTreeMap::from([("sha256".to_owned(), sha256_hex(b"hello"))]),
            custom: None,
        };
        assert!(reader_matches("t", &i, &b"hello"[..]));
        assert!(!reader_matches("t", &i, &b"hellO"[..]));
        assert!(!reader_matches("t", &i, &b"hello!"[..]));
        assert!(!reader_matches("t", &i, &b"hell"[..]));
    }

    #[test]
    fn accepts_exact_bytes_and_refuses_changes() {
        let i = info(b"hello");
        StreamVerifier::for_target("t", &i)
            .unwrap()
            .check_all(b"hello")
            .unwrap();
        assert!(matches!(
            StreamVerifier::for_target("t", &i)
                .unwrap()
                .check_all(b"hellO"),
            Err(HashError::Mismatch { .. })
        ));
        assert!(matches!(
            StreamVerifier::for_target("t", &i)
                .unwrap()
                .check_all(b"hell"),
            Err(HashError::Length { .. })
        ));
        assert!(matches!(
            StreamVerifier::for_target("t", &i)
                .unwrap()
                .check_all(b"hello!"),
            Err(HashError::TooLong { .. })
        ));
    }

    #[test]
    fn unknown_hash_algorithms_refuse() {
        let mut i = info(b"x");
        i.hashes.insert("md5".into(), "00".into());
        assert!(matches!(
            StreamVerifier::for_target("t", &i),
            Err(HashError::Unsupported { .. })
        ));
    }

    #[test]
    fn meta_without_length_is_capped() {
        let m = MetaFile {
            version: std::num::NonZeroU64::MIN,
            length: None,
            hashes: None,
        };
        let mut v = StreamVerifier::for_meta("snapshot.json", &m, 4).unwrap();
        v.update(b"1234").unwrap();
        assert!(v.update(b"5").is_err());
    }
}
