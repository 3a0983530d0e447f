//! HTTP(S) fetching with the limits TUF needs against hostile mirrors.
//!
//! * **Endless data:** every read is counted against a cap (the signed
//!   length, or the role's configured maximum); one byte more and the
//!   download is abandoned. The count is of decoded bytes, so a gzip bomb
//!   is bounded too.
//! * **Slow retrieval:** a per-read timeout catches a server that stops
//!   sending, and an average-rate floor (after a grace period) catches one
//!   that drip-feeds bytes just fast enough to beat the per-read timeout.
//! * **Transport:** rustls with the platform's trust store or an explicit
//!   CA file; `http_proxy`/`https_proxy`/`no_proxy` from the environment;
//!   plain `http://` only for loopback hosts, for tests.

use cpantuf_core::workflow::FetchError;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Network limits, documented defaults.
#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for any single read (headers or body) to make progress.
    pub read_timeout: Duration,
    /// After this long, a transfer slower than `min_bytes_per_sec` on
    /// average is abandoned.
    pub slow_grace: Duration,
    /// Average-rate floor, bytes per second.
    pub min_bytes_per_sec: u64,
    /// PEM file of CA certificates to trust instead of the platform's roots.
    pub ca_cert: Option<std::path::PathBuf>,
    /// Allow `http://` to non-loopback hosts (never the default).
    pub allow_insecure_http: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(20),
            slow_grace: Duration::from_secs(10),
            min_bytes_per_sec: 4 * 1024,
            ca_cert: None,
            allow_insecure_http: false,
        }
    }
}

/// A blocking HTTP fetcher.
pub struct Fetcher {
    agent: ureq::Agent,
    config: FetchConfig,
}

/// Why a fetcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FetcherSetupError {
    /// The CA file could not be read or holds no certificate.
    #[error("CA certificate file {path}: {why}")]
    CaCert {
        /// File.
        path: String,
        /// Reason.
        why: String,
    },
}

impl Fetcher {
    /// Builds a fetcher.
    pub fn new(config: FetchConfig) -> Result<Self, FetcherSetupError> {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let roots = match &config.ca_cert {
            Some(path) => {
                let ca_err = |why: String| FetcherSetupError::CaCert {
                    path: path.display().to_string(),
                    why,
                };
                let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
                let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                        Ok(_) => None,
                        Err(e) => Some(Err(e)),
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| ca_err(e.to_string()))?;
                if certs.is_empty() {
                    return Err(ca_err("no certificate in the file".into()));
                }
                RootCerts::new_with_certs(&certs)
            }
            None => RootCerts::PlatformVerifier,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .timeout_connect(Some(config.connect_timeout))
            .timeout_per_read(Some(config.read_timeout))
            .timeout_recv_response(Some(config.read_timeout))
            .http_status_as_error(false)
            .user_agent(concat!("cpantuf/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Fetcher { agent, config })
    }

    fn check_scheme(&self, url: &str) -> Result<(), FetchError> {
        if url.starts_with("https://") {
            return Ok(());
        }
        if let Some(rest) = url.strip_prefix("http://") {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            let host_only = if host.starts_with('[') {
                host.split(']').next().map(|h| &h[1..]).unwrap_or("")
            } else {
                host.split(':').next().unwrap_or("")
            };
            let loopback = host_only == "localhost"
                || host_only
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback || self.config.allow_insecure_http {
                return Ok(());
            }
        }
        Err(FetchError::Transport(
            format!("refusing {url}: only https:// (or http:// to a loopback address) is allowed")
                .into(),
        ))
    }

    /// Opens `url` and streams at most `max_len` bytes of its body into
    /// `sink`. Returns the number of bytes written.
    pub fn fetch_into(
        &self,
        url: &str,
        max_len: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), FetchError>,
    ) -> Result<u64, FetchError> {
        self.check_scheme(url)?;
        let mut resp = self.agent.get(url).call().map_err(map_ureq)?;
        let status = resp.status().as_u16();
        match status {
            200 => {}
            403 | 404 => return Err(FetchError::NotFound),
            s => return Err(FetchError::Status(s)),
        }
        if let Some(len) = resp.body().content_length() {
            if len > max_len {
                return Err(FetchError::TooLarge { limit: max_len });
            }
        }
        let mut reader = resp.body_mut().as_reader();
        let start = Instant::now();
        let mut total: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(map_io)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > max_len {
                return Err(FetchError::TooLarge { limit: max_len });
            }
            sink(&buf[..n])?;
            let elapsed = start.elapsed();
            if elapsed > self.config.slow_grace {
                let rate = total as f64 / elapsed.as_secs_f64();
                if rate < self.config.min_bytes_per_sec as f64 {
                    return Err(FetchError::Timeout(format!(
                        "{url} delivered {total} bytes in {:.1} s, below the {} bytes/s floor",
                        elapsed.as_secs_f64(),
                        self.config.min_bytes_per_sec
                    )));
                }
            }
        }
        Ok(total)
    }

    /// Fetches `url` into memory, at most `max_len` bytes.
    pub fn fetch_bytes(&self, url: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        let mut out = Vec::new();
        self.fetch_into(url, max_len, &mut |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(out)
    }

    /// Fetches `url` into the file at `path` (created or truncated).
    pub fn fetch_to_file(
        &self,
        url: &str,
        max_len: u64,
        path: &Path,
        mut inspect: impl FnMut(&[u8]) -> Result<(), FetchError>,
    ) -> Result<u64, FetchError> {
        let mut file =
            std::fs::File::create(path).map_err(|e| FetchError::Transport(Box::new(e)))?;
        let n = self.fetch_into(url, max_len, &mut |chunk| {
            inspect(chunk)?;
            file.write_all(chunk)
                .map_err(|e| FetchError::Transport(Box::new(e)))
        })?;
        file.sync_all()
            .map_err(|e| FetchError::Transport(Box::new(e)))?;
        Ok(n)
    }
}

fn map_io(e: std::io::Error) -> FetchError {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return FetchError::Timeout(e.to_string());
    }
    // ureq wraps its own errors (timeouts included) in io::Error on reads.
    match e.into_inner() {
        Some(inner) => match inner.downcast::<ureq::Error>() {
            Ok(u) => map_ureq(*u),
            Err(other) => FetchError::Transport(other),
        },
        None => FetchError::Transport("I/O error while reading the response".into()),
    }
}

fn map_ureq(e: ureq::Error) -> FetchError {
    match e {
        ureq::Error::StatusCode(403 | 404) => FetchError::NotFound,
        ureq::Error::StatusCode(s) => FetchError::Status(s),
        ureq::Error::Timeout(t) => {
            FetchError::Timeout(format!("no progress within the {t} timeout"))
        }
        ureq::Error::BodyExceedsLimit(limit) => FetchError::TooLarge { limit },
        other => match unreachable_because(&other) {
            Some(why) => FetchError::Transport(Box::new(Unreachable(why))),
            None => FetchError::Transport(Box::new(other)),
        },
    }
}

/// A mirror that could not be reached or spoke no TLS we accept, said in
/// the user's words (with what to do, where there is something to do).
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the mirror: {0}")]
pub struct Unreachable(pub String);

/// Why a connection failed, when the transport error says so: refused,
/// unknown host, or a TLS failure (an untrusted certificate names
/// `--ca-cert`).
fn unreachable_because(e: &ureq::Error) -> Option<String> {
    match e {
        ureq::Error::HostNotFound => return Some("host not found".into()),
        ureq::Error::ConnectionFailed => return Some("the connection failed".into()),
        ureq::Error::Rustls(t) => return Some(tls_failure(t)),
        ureq::Error::Io(io) => return io_failure(io),
        _ => {}
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(t) = c.downcast_ref::<rustls::Error>() {
            return Some(tls_failure(t));
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io_failure(io);
        }
        cause = c.source();
    }
    None
}

/// A socket error that means the mirror could not be reached (or spoke no
/// TLS we accept); `None` for other I/O errors.
fn io_failure(io: &std::io::Error) -> Option<String> {
    if let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return Some(tls_failure(t));
    }
    use std::io::ErrorKind as K;
    let why = match io.kind() {
        K::ConnectionRefused => "connection refused (is it running, on that port?)",
        K::ConnectionReset => "the connection was reset",
        K::HostUnreachable | K::NetworkUnreachable => "no route to the host",
        _ => return None,
    };
    Some(why.into())
}

fn tls_failure(e: &rustls::Error) -> String {
    use rustls::{CertificateError, Error as E};
    match e {
        E::InvalidCertificate(CertificateError::UnknownIssuer) => "its TLS certificate is not \
            signed by a CA this machine trusts; for a mirror with its own CA, give the CA \
            certificate with --ca-cert FILE"
            .into(),
        E::InvalidCertificate(CertificateError::Expired) => {
            "its TLS certificate has expired".into()
        }
        E::InvalidCertificate(CertificateError::NotValidForName) => {
            "its TLS certificate is for another host name".into()
        }
        E::InvalidMessage(_) => {
            "it did not answer in TLS (a plain http:// server on that port?)".into()
        }
        other => format!("TLS failed: {other}"),
    }
}
