//! The operator's configuration and the keys a run has loaded.
//!
//! The configuration names the *online* key files (timestamp, snapshot,
//! index, registry, PAUSE-held author key), the expiry policy and the
//! retention period. Offline keys (root, targets) are never named here:
//! they are handed to a run explicitly (`--key`) and only when the change
//! needs them. Which key ids may sign which role is not configuration
//! either: it is read from the published root and targets metadata, so a
//! config file cannot grant a key anything.

use super::RepoError;
use chrono::Duration;
use cpantuf_core::crypto::{ed25519_public_key, Ed25519Signer};
use cpantuf_core::metadata::{Key, KeyId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How long each role's metadata stays valid after it is signed, in hours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiryPolicy {
    /// Root (offline).
    pub root_hours: u32,
    /// Top-level targets (offline).
    pub targets_hours: u32,
    /// Snapshot (online).
    pub snapshot_hours: u32,
    /// Timestamp (online; refreshed by cron).
    pub timestamp_hours: u32,
    /// The index role (online).
    pub index_hours: u32,
    /// Prefix roles (online registry key).
    pub prefix_hours: u32,
    /// Author roles signed by PAUSE's key (unclaimed authors).
    pub author_hours: u32,
    /// Author roles signed by the author (claimed): the default the
    /// `author sign` command proposes.
    pub claimed_author_hours: u32,
    /// The latest expiry PAUSE accepts in an author-signed role, from the
    /// time of `author import` (the author chooses it).
    #[serde(default = "default_claimed_author_max_hours")]
    pub claimed_author_max_hours: u32,
    /// `status` and `publish` warn about a claimed author's role that
    /// expires within this many hours (or has expired).
    #[serde(default = "default_claimed_author_warn_hours")]
    pub claimed_author_warn_hours: u32,
}

/// An author-signed role may be valid for at most a year from its import.
pub const DEFAULT_CLAIMED_AUTHOR_MAX_HOURS: u32 = 365 * 24;
/// Warn two weeks before a claimed author's role expires.
pub const DEFAULT_CLAIMED_AUTHOR_WARN_HOURS: u32 = 14 * 24;

fn default_claimed_author_max_hours() -> u32 {
    DEFAULT_CLAIMED_AUTHOR_MAX_HOURS
}

fn default_claimed_author_warn_hours() -> u32 {
    DEFAULT_CLAIMED_AUTHOR_WARN_HOURS
}

impl Default for ExpiryPolicy {
    /// The guide's policy: offline roles one year, online roles one day,
    /// author-signed roles 90 days.
    fn default() -> Self {
        ExpiryPolicy {
            root_hours: 365 * 24,
            targets_hours: 365 * 24,
            snapshot_hours: 24,
            timestamp_hours: 24,
            index_hours: 24,
            prefix_hours: 24,
            author_hours: 24,
            claimed_author_hours: 90 * 24,
            claimed_author_max_hours: DEFAULT_CLAIMED_AUTHOR_MAX_HOURS,
            claimed_author_warn_hours: DEFAULT_CLAIMED_AUTHOR_WARN_HOURS,
        }
    }
}

/// Hours as a [`Duration`].
pub fn hours(h: u32) -> Duration {
    Duration::hours(i64::from(h))
}

/// Hours for a message: whole days as days.
pub fn hours_in_words(h: u32) -> String {
    match h {
        1 => "1 hour".into(),
        24 => "1 day".into(),
        h if h > 0 && h % 24 == 0 => format!("{} days", h / 24),
        h => format!("{h} hours"),
    }
}

/// The online key files, one per online duty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineKeyFiles {
    /// Signs `timestamp.json`.
    pub timestamp: PathBuf,
    /// Signs `N.snapshot.json`.
    pub snapshot: PathBuf,
    /// Signs the `index` role.
    pub index: PathBuf,
    /// Signs every `prefix-X-XY` role ("registry" key).
    pub registry: PathBuf,
    /// Signs the role of every unclaimed author.
    pub authors: PathBuf,
}

/// `cpantuf-sign`'s configuration file (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerConfig {
    /// The mirror root (relative paths are relative to the config file).
    pub mirror: PathBuf,
    /// Online key files (relative paths are relative to the config file).
    pub online_keys: OnlineKeyFiles,
    /// Expiry policy.
    #[serde(default)]
    pub expiry: ExpiryPolicy,
    /// How many levels below an author directory the prefix delegations in
    /// top-level targets cover (1 = files directly in the author
    /// directory). Fixed at init so that uploads into sub-directories never
    /// need the offline targets keys.
    pub prefix_depth: usize,
    /// Superseded metadata versions and hash-named files are kept this many
    /// hours after they stop being current, for clients mid-update.
    pub retention_hours: u32,
    /// Whether to fsync every written file before the timestamp that makes
    /// it current (needed to survive power loss, not only a crash).
    #[serde(default = "yes")]
    pub fsync: bool,
    /// An unclaimed author with more files than this gets a role that
    /// delegates to hash bins of at most half as many files each (ADR 0006),
    /// so that a new client never downloads one huge author role. 0: never.
    #[serde(default = "default_author_bins_above")]
    pub author_bins_above: usize,
}

fn yes() -> bool {
    true
}

/// Above 512 files an author role is split into hash bins of at most 256
/// files on average (about 12 KB gzipped). The largest unbinned role is
/// then about 80 KB (24 KB gzipped): that bounds both what a new client
/// downloads for one author and what an upload re-signs.
pub const DEFAULT_AUTHOR_BINS_ABOVE: usize = 512;

fn default_author_bins_above() -> usize {
    DEFAULT_AUTHOR_BINS_ABOVE
}

/// CPAN author directories nest up to 7 sub-directories: one file level
/// below that is 8.
pub const DEFAULT_PREFIX_DEPTH: usize = 8;

impl SignerConfig {
    /// Reads a configuration file and resolves its relative paths.
    pub fn load(path: &Path) -> Result<Self, RepoError> {
        let bytes = std::fs::read(path).map_err(RepoError::io(path))?;
        let mut cfg: SignerConfig =
            serde_json::from_slice(&bytes).map_err(|e| RepoError::Config {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        if cfg.prefix_depth == 0 || cfg.prefix_depth > cpantuf_core::cpan::CpanPath::MAX_SEGMENTS {
            return Err(RepoError::Config {
                path: path.to_owned(),
                reason: format!("prefix_depth {} is outside 1..=32", cfg.prefix_depth),
            });
        }
        let e = &cfg.expiry;
        if e.claimed_author_hours > e.claimed_author_max_hours {
            return Err(RepoError::Config {
                path: path.to_owned(),
                reason: format!(
                    "expiry.claimed_author_hours {} is more than expiry.claimed_author_max_hours \
                     {}: `author export` would propose an expiry `author import` refuses",
                    e.claimed_author_hours, e.claimed_author_max_hours
                ),
            });
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut cfg.mirror);
        let k = &mut cfg.online_keys;
        for p in [
            &mut k.timestamp,
            &mut k.snapshot,
            &mut k.index,
            &mut k.registry,
            &mut k.authors,
        ] {
            fix(p);
        }
        Ok(cfg)
    }

    /// The configuration as pretty JSON, for `init` to write.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config always serialises") + "\n"
    }
}

/// Reads a private key file (PKCS#8 PEM, optionally encrypted).
pub fn load_signer(path: &Path, passphrase: Option<&str>) -> Result<Ed25519Signer, RepoError> {
    let pem = std::fs::read_to_string(path).map_err(RepoError::io(path))?;
    Ed25519Signer::from_pkcs8_pem(&pem, passphrase).map_err(|source| RepoError::KeyFile {
        path: path.to_owned(),
        source,
    })
}

/// Reads a public key: a PEM SubjectPublicKeyInfo file, or a private key
/// file whose public half is taken.
pub fn load_public_key(path: &Path, passphrase: Option<&str>) -> Result<Key, RepoError> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    let pem = std::fs::read_to_string(path).map_err(RepoError::io(path))?;
    if pem.contains("BEGIN PUBLIC KEY") {
        let vk = ed25519_dalek::VerifyingKey::from_public_key_pem(&pem).map_err(|_| {
            RepoError::PublicKeyFile {
                path: path.to_owned(),
            }
        })?;
        return Ok(ed25519_public_key(&vk));
    }
    Ok(load_signer(path, passphrase)?.public_key().clone())
}

/// The signing keys a run holds, by key id.
#[derive(Default)]
pub struct KeyRing {
    keys: BTreeMap<KeyId, Ed25519Signer>,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a signer (a key given twice is kept once).
    pub fn add(&mut self, signer: Ed25519Signer) -> &KeyId {
        let id = signer.keyid().clone();
        self.keys.entry(id).or_insert(signer).keyid()
    }

    /// The signer with this key id.
    pub fn get(&self, keyid: &KeyId) -> Option<&Ed25519Signer> {
        self.keys.get(keyid)
    }

    /// The signers among `keyids`, in `keyids` order.
    pub fn signers_for<'a>(&'a self, keyids: &[KeyId]) -> Vec<&'a Ed25519Signer> {
        keyids.iter().filter_map(|k| self.keys.get(k)).collect()
    }

    /// Every key id held.
    pub fn keyids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.keys()
    }

    /// Loads the online keys named by a configuration.
    pub fn with_online_keys(cfg: &SignerConfig) -> Result<Self, RepoError> {
        let mut ring = KeyRing::new();
        let k = &cfg.online_keys;
        for p in [&k.timestamp, &k.snapshot, &k.index, &k.registry, &k.authors] {
            ring.add(load_signer(p, None)?);
        }
        Ok(ring)
    }
}

/// Generates an ed25519 key and its private key file: PKCS#8 v1 PEM, which
/// openssl 3.0 reads (it refuses the v2 form with an embedded public key),
/// encrypted with PBES2 (PBKDF2-SHA256, AES-256-CBC) when a passphrase is
/// given, again because openssl's default scrypt memory limit refuses the
/// scrypt parameters of the pkcs8 crate.
pub fn generate_key(passphrase: Option<&str>) -> Result<(Ed25519Signer, String), RepoError> {
    use pkcs8::der::pem::LineEnding;
    use pkcs8::{ObjectIdentifier, PrivateKeyInfo};
    use rand::RngCore;
    let mut rng = rand::rngs::OsRng;
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let signer = Ed25519Signer::from_seed(&seed);
    // RFC 8410: the private key is an OCTET STRING holding the seed.
    let mut inner = vec![0x04, 0x20];
    inner.extend_from_slice(&seed);
    let oid = ObjectIdentifier::new_unwrap("1.3.101.112");
    let info = PrivateKeyInfo::new(
        pkcs8::AlgorithmIdentifierRef {
            oid,
            parameters: None,
        },
        &inner,
    );
    let bad = |e: String| RepoError::KeyFile {
        path: PathBuf::from("<new key>"),
        source: cpantuf_core::crypto::KeyFileError::Format(e),
    };
    let pem = match passphrase {
        None => {
            use pkcs8::der::EncodePem;
            info.to_pem(LineEnding::LF)
                .map_err(|e| bad(e.to_string()))?
        }
        Some(p) => {
            let mut salt = [0u8; 16];
            let mut iv = [0u8; 16];
            rng.fill_bytes(&mut salt);
            rng.fill_bytes(&mut iv);
            let params =
                pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(600_000, &salt, &iv)
                    .map_err(|e| bad(e.to_string()))?;
            info.encrypt_with_params(params, p)
                .map_err(|e| bad(e.to_string()))?
                .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
                .map_err(|e| bad(e.to_string()))?
                .to_string()
        }
    };
    // Never hand out a file that does not load back.
    let back = Ed25519Signer::from_pkcs8_pem(&pem, passphrase).map_err(|e| bad(e.to_string()))?;
    assert_eq!(back.keyid(), signer.keyid(), "key file round trip");
    Ok((signer, pem))
}
