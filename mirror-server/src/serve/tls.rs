//! TLS: the certificate in use, and replacing it without dropping a connection.
//!
//! rustls asks [`CertStore`] for a certificate at each handshake, so a reload only changes
//! what new handshakes get; connections already set up keep their session. A certificate and
//! key that fail to load or do not match are refused, and the previous pair stays in use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use anyhow::{bail, Context as _};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
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

    /// A rustls server configuration that takes its certificate from this store. Offers
    /// TLS 1.3 and 1.2, and HTTP/2 before HTTP/1.1 by ALPN.
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config.ticketer = rustls::crypto::ring::Ticketer::new().context("TLS session tickets")?;
        Ok(Arc::new(config))
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
    let chain = CertificateDer::pem_file_iter(cert_path)
        .with_context(|| format!("reading certificate {}", cert_path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificate {}", cert_path.display()))?;
    if chain.is_empty() {
        bail!("{}: no PEM certificate in it", cert_path.display());
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .with_context(|| format!("reading private key {}", key_path.display()))?;
    CertifiedKey::from_der(chain, key, provider).with_context(|| {
        format!(
            "certificate {} with key {}",
            cert_path.display(),
            key_path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
