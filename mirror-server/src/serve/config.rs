//! `serve` options: the raw clap arguments and the validated configuration built from them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};

use super::root::CacheLimits;

/// Options of `cpantuf-mirror serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mirror tree to serve (the directory holding `authors/`, `modules/` and the TUF
    /// metadata). May be a symlink: when it is re-pointed (an atomic switch to a new mirror
    /// state), new requests follow it within `--reload-interval`, or at once on SIGHUP.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,

    /// HTTPS listen address; repeat for several. Needs `--cert` and `--key`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,

    /// PEM certificate chain (leaf first). Re-read when it changes and on SIGHUP.
    #[arg(long, value_name = "PEM", requires = "key")]
    pub cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, SEC1 or PKCS#1) for `--cert`.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Plain-HTTP listen address, loopback only (tests and a local reverse proxy).
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Vec<SocketAddr>,

    /// Plain-HTTP address for `/metrics` (Prometheus text format) and `/health`.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Access log destination: a file path, `-` for stdout, or `off`. Reopened on SIGHUP.
    #[arg(long, value_name = "PATH", default_value = "-")]
    pub access_log: String,

    /// Worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Connections served at once; further clients wait in the listen backlog.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Largest request head (request line plus headers) accepted, in bytes; larger gets 431.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Time allowed for a TLS handshake.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Time allowed to receive a whole request head, counted from when the connection starts
    /// waiting for it (so it also closes idle HTTP/1.1 keep-alive connections).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// A connection on which no byte moved either way for this long is closed.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// On SIGTERM or SIGINT, time given to requests in flight before the process exits.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// How often the certificate files and the root symlink are checked for a change.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub reload_interval: Duration,

    /// `max-age` for `timestamp.json`, unversioned metadata and mutable index files.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub short_max_age: Duration,

    /// `max-age` for other files, such as release tarballs (write-once, but can be deleted).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub default_max_age: Duration,

    /// Memory for the bytes of small files (see `--file-cache-max-file`), in bytes; 0 disables.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024 * 1024)]
    pub file_cache_bytes: usize,

    /// Largest file whose bytes are kept in memory.
    #[arg(long, value_name = "BYTES", default_value_t = 128 * 1024)]
    pub file_cache_max_file: u64,

    /// Memory for gzip-compressed copies of metadata files, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub gzip_cache_bytes: usize,
}

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// No access log.
    Off,
    /// Standard output.
    Stdout,
    /// Appended to this file, reopened on SIGHUP (for log rotation).
    File(PathBuf),
}

/// The TLS certificate and key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The validated `serve` configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub root: PathBuf,
    pub tls_listen: Vec<SocketAddr>,
    pub tls: Option<TlsFiles>,
    pub http_listen: Vec<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub access_log: AccessLogTarget,
    pub workers: usize,
    pub limits: Limits,
    pub shutdown_timeout: Duration,
    pub reload_interval: Duration,
    pub cache: CachePolicy,
    pub gzip_cache_bytes: usize,
    pub file_cache: CacheLimits,
}

/// Per-connection limits, enforced in the connection layer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub handshake_timeout: Duration,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// `Cache-Control: max-age` values by file class (see `files::CacheClass`).
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    pub short_max_age: Duration,
    pub default_max_age: Duration,
}

/// hyper's HTTP/1 read buffer cannot be smaller than this.
const MIN_HEADER_BYTES: usize = 8 * 1024;

impl TryFrom<Args> for Config {
    type Error = anyhow::Error;

    fn try_from(a: Args) -> anyhow::Result<Self> {
        if a.listen.is_empty() && a.http_listen.is_empty() {
            bail!("nothing to listen on: give --listen (HTTPS) or --http-listen (loopback HTTP)");
        }
        let tls = match (a.cert, a.key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        };
        if !a.listen.is_empty() && tls.is_none() {
            bail!("--listen serves HTTPS and needs --cert and --key");
        }
        if a.listen.is_empty() && tls.is_some() {
            bail!("--cert/--key given but no --listen address to serve HTTPS on");
        }
        if let Some(addr) = a.http_listen.iter().find(|addr| !addr.ip().is_loopback()) {
            bail!("--http-listen {addr}: plain HTTP is only offered on loopback addresses");
        }
        let access_log = match a.access_log.as_str() {
            "off" => AccessLogTarget::Off,
            "-" => AccessLogTarget::Stdout,
            path => AccessLogTarget::File(PathBuf::from(path)),
        };
        let workers = match a.workers {
            Some(0) => bail!("--workers must be at least 1"),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
        };
        if a.max_connections == 0 {
            bail!("--max-connections must be at least 1");
        }
        if a.max_header_bytes < MIN_HEADER_BYTES {
            bail!("--max-header-bytes must be at least {MIN_HEADER_BYTES}");
        }
        let root = a.root;
        let meta =
            std::fs::metadata(&root).with_context(|| format!("mirror root {}", root.display()))?;
        if !meta.is_dir() {
            bail!("mirror root {} is not a directory", root.display());
        }
        Ok(Config {
            root,
            tls_listen: a.listen,
            tls,
            http_listen: a.http_listen,
            admin_listen: a.admin_listen,
            access_log,
            workers,
            limits: Limits {
                max_connections: a.max_connections,
                max_header_bytes: a.max_header_bytes,
                handshake_timeout: a.handshake_timeout,
                header_timeout: a.header_timeout,
                idle_timeout: a.idle_timeout,
            },
            shutdown_timeout: a.shutdown_timeout,
            reload_interval: a.reload_interval,
            cache: CachePolicy {
                short_max_age: a.short_max_age,
                default_max_age: a.default_max_age,
            },
            gzip_cache_bytes: a.gzip_cache_bytes,
            file_cache: CacheLimits {
                budget: a.file_cache_bytes,
                max_file: a.file_cache_max_file,
            },
        })
    }
}

/// Parses `250ms`, `10s`, `5m`, `2h`, `1d`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (examples: 500ms, 10s, 5m, 1h)"))?;
    let per_unit_ms: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit `{unit}` (use ms, s, m, h or d)"
            ))
        }
    };
    n.checked_mul(per_unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{s}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
