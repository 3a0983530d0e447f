//! TLS: the certificate in use, and replacing it without dropping a connection.
//!
//! rustls asks [`CertStore`] for a certificate at each handshake, so a reload only changes
//! what new handshakes get; connections already set up keep their session. A certificate and
//! key that fail to load or do not match are refused, and the previous pair stays in use.
//!
//! Cipher suite: AES-128-GCM is preferred over the client's order (as Go's crypto/tls and
//! so Caddy do), unless the client's first choice is ChaCha20-Poly1305, which clients
//! without AES hardware put first; then the client's order is followed. AES-128-GCM costs
//! both ends about a third less CPU per byte than AES-256-GCM, which OpenSSL-based clients
//! (curl, wget, LWP) list first; for a mirror whose content is public and signed, 128-bit
//! keys protect what TLS protects here (privacy of which files are fetched, integrity in
//! transit) with a wide margin. ADR 0010 records the choice and its measurement.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use anyhow::{bail, Context as _};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::CipherSuite;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What identifies one version of the certificate and key files.
type Stamp = [(Option<SystemTime>, u64, u64); 2];

/// The certificate and key currently served, and where to reload them from.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    stamp: Mutex<Stamp>,
}

impl CertStore {
    /// Loads the pair, failing if it does not load or the key does not match the certificate.
    pub fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamp = stamp(cert_path, key_path);
        let key = load_pair(cert_path, key_path, &provider)?;
        Ok(CertStore {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: RwLock::new(Arc::new(key)),
            stamp: Mutex::new(stamp),
        })
    }

    /// Reloads if either file changed (or always, if `force`). Ok(true) if a new pair is in use.
    pub fn reload(&self, force: bool) -> anyhow::Result<bool> {
        let now = stamp(&self.cert_path, &self.key_path);
        let mut seen = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
        if !force && *seen == now {
            return Ok(false);
        }
        // Remember the attempt even if it fails: a broken file is reported once, not at every
        // check, and retried when it changes again.
        *seen = now;
        let key = load_pair(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        Ok(true)
    }

    /// When the leaf certificate now in use stops being valid (its notAfter), if it parses.
    pub fn not_after(&self) -> Option<SystemTime> {
        let key = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        leaf_not_after(key.cert.first()?)
    }

    /// The rustls server configurations that take their certificate from this store. Both
    /// offer TLS 1.3 and 1.2 and HTTP/2 before HTTP/1.1 by ALPN, and share session tickets
    /// and the session cache; they differ in cipher suite preference (see the module docs).
    pub fn server_configs(self: &Arc<Self>) -> anyhow::Result<ServerConfigs> {
        let build = |provider: Arc<CryptoProvider>| {
            rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .context("TLS protocol versions")
                .map(|b| b.with_no_client_auth().with_cert_resolver(self.clone()))
        };
        let mut client_order = build(self.provider.clone())?;
        client_order.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        client_order.ticketer =
            rustls::crypto::ring::Ticketer::new().context("TLS session tickets")?;

        let mut aes128_provider = (*self.provider).clone();
        aes128_provider
            .cipher_suites
            .sort_by_key(|s| aes128_preference(s.suite()));
        let mut aes128_first = build(Arc::new(aes128_provider))?;
        aes128_first.alpn_protocols = client_order.alpn_protocols.clone();
        aes128_first.ticketer = client_order.ticketer.clone();
        aes128_first.session_storage = client_order.session_storage.clone();
        aes128_first.ignore_client_order = true;
        Ok(ServerConfigs {
            aes128_first: Arc::new(aes128_first),
            client_order: Arc::new(client_order),
        })
    }
}

/// Sort key of the server's own suite order: AES-128-GCM, then AES-256-GCM, then the rest,
/// TLS 1.3 before TLS 1.2 within each.
fn aes128_preference(suite: CipherSuite) -> u8 {
    use CipherSuite as S;
    match suite {
        S::TLS13_AES_128_GCM_SHA256 => 0,
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 1,
        S::TLS13_AES_256_GCM_SHA384 => 2,
        S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 3,
        _ => 4,
    }
}

/// The two server configurations; [`ServerConfigs::for_hello`] picks one per handshake.
#[derive(Debug, Clone)]
pub struct ServerConfigs {
    aes128_first: Arc<rustls::ServerConfig>,
    client_order: Arc<rustls::ServerConfig>,
}

impl ServerConfigs {
    /// The client's own order if its first choice is ChaCha20-Poly1305 (it has no AES
    /// hardware), otherwise AES-128-GCM first.
    pub fn for_hello(&self, hello: &ClientHello<'_>) -> Arc<rustls::ServerConfig> {
        let first = hello
            .cipher_suites()
            .iter()
            .find(|s| !matches!(s, CipherSuite::TLS_EMPTY_RENEGOTIATION_INFO_SCSV));
        match first {
            Some(
                CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                | CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ) => self.client_order.clone(),
            _ => self.aes128_first.clone(),
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt as _;
    [cert, key].map(|p| match std::fs::metadata(p) {
        Ok(m) => (m.modified().ok(), m.len(), m.ino()),
        Err(_) => (None, 0, 0),
    })
}

fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    let chain = read_chain(cert_path)?;
    let key = read_key(key_path)?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
            "the private key {} does not belong to the certificate {}: give the key the \
             certificate was issued for",
            key_path.display(),
            cert_path.display()
        ),
        other => anyhow::anyhow!(
            "certificate {} with key {}: {other}",
            cert_path.display(),
            key_path.display()
        ),
    })
}

/// The certificate chain in `path`; a private key there (the two files swapped, or the
/// key given twice) is said so.
fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading certificate {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificate {}", path.display()))?;
    if chain.is_empty() {
        if PrivateKeyDer::from_pem_file(path).is_ok() {
            bail!(
                "{} holds a private key, not a certificate: give it as the key (--key) and \
                 the certificate chain as --cert",
                path.display()
            );
        }
        bail!("{}: no PEM certificate in it", path.display());
    }
    Ok(chain)
}

/// The private key in `path`; a certificate there is said so.
fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        let holds_cert = CertificateDer::pem_file_iter(path)
            .map(|mut certs| certs.next().is_some_and(|c| c.is_ok()))
            .unwrap_or(false);
        if holds_cert {
            anyhow::anyhow!(
                "{} holds a certificate, not a private key: give it as --cert and the \
                 private key as --key",
                path.display()
            )
        } else {
            anyhow::anyhow!("reading private key {}: {e}", path.display())
        }
    })
}

/// The notAfter of a DER certificate, or None if it does not parse as X.509.
pub fn leaf_not_after(der: &[u8]) -> Option<SystemTime> {
    use x509_cert::der::Decode as _;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let since_epoch = cert.tbs_certificate.validity.not_after.to_unix_duration();
    Some(SystemTime::UNIX_EPOCH + since_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pair in PEM files, and a key that belongs to another certificate.
    fn pair(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["x".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let paths = (dir.join("c.pem"), dir.join("k.pem"), dir.join("o.pem"));
        std::fs::write(&paths.0, cert.pem()).unwrap();
        std::fs::write(&paths.1, key.serialize_pem()).unwrap();
        std::fs::write(&paths.2, other.serialize_pem()).unwrap();
        paths
    }

    fn load_error(cert: &Path, key: &Path) -> String {
        let provider = rustls::crypto::ring::default_provider();
        format!("{:#}", load_pair(cert, key, &provider).unwrap_err())
    }

    /// A private key given as --cert read as rustls' "KeyMismatch".
    #[test]
    fn swapped_or_mismatched_certificate_and_key_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, other) = pair(dir.path());
        let provider = rustls::crypto::ring::default_provider();
        assert!(load_pair(&cert, &key, &provider).is_ok());
        let swapped = load_error(&key, &cert);
        assert!(
            swapped.contains("holds a private key, not a certificate"),
            "{swapped}"
        );
        let twice = load_error(&cert, &cert);
        assert!(
            twice.contains("holds a certificate, not a private key"),
            "{twice}"
        );
        let wrong = load_error(&cert, &other);
        assert!(
            wrong.contains("does not belong to the certificate"),
            "{wrong}"
        );
        assert!(!wrong.contains("KeyMismatch"), "{wrong}");
    }

    #[test]
    fn not_after_is_read_from_the_leaf() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["x".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 5, 17);
        let cert = params.self_signed(&key).unwrap();
        let when = leaf_not_after(cert.der()).unwrap();
        let secs = when
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(secs, 1_936_742_400, "2031-05-17T00:00:00Z");
        assert_eq!(leaf_not_after(b"not a certificate"), None);
    }

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn mismatched_or_broken_pairs_are_refused_and_the_old_one_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let (c1, k1) = write_pair(tmp.path(), "one.test");
        let (_c2, k2) = write_pair(tmp.path(), "two.test");
        assert!(
            CertStore::load(&c1, &k2).is_err(),
            "key of another certificate"
        );
        let store = CertStore::load(&c1, &k1).unwrap();
        let before = store.current.read().unwrap().clone();
        assert!(!store.reload(false).unwrap(), "nothing changed");
        std::fs::copy(&k2, &k1).unwrap();
        assert!(store.reload(false).is_err());
        assert!(Arc::ptr_eq(&before, &store.current.read().unwrap()));
        std::fs::write(&c1, "not a certificate").unwrap();
        assert!(store.reload(true).is_err());
        assert!(Arc::ptr_eq(&before, &store.current.read().unwrap()));
    }
}
