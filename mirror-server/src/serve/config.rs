//! `serve` options: the raw clap arguments and the validated configuration built from them.

use std::collections::BTreeSet;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};

use super::root::CacheLimits;

/// Options of `cpantuf-mirror serve` (and of `check-config`, which checks them).
///
/// Every option can also be set in the `--config` TOML file, under the same name without the
/// leading dashes (`max-connections = 500`, `listen = [":443"]`); the command line wins.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// TOML file of serve options (see `docs/mirror-admins.md`); options on the command line
    /// override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The mirror tree to serve (the directory holding `authors/`, `modules/` and `tuf/`).
    /// May be a symlink: when it is re-pointed (an atomic switch to a new mirror state), new
    /// requests follow it within `--reload-interval`, or at once on SIGHUP.
    #[arg(long, value_name = "DIR", required_unless_present = "config")]
    pub root: Option<PathBuf>,

    /// HTTPS listen address; repeat for several. `:443` (every IPv4 address), `[::]:443`,
    /// `192.0.2.1:443` or `localhost:443` (each address the name resolves to). Needs `--cert`
    /// and `--key`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,

    /// PEM certificate chain (leaf first). Re-read when it changes and on SIGHUP.
    #[arg(long, value_name = "PEM")]
    pub cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, SEC1 or PKCS#1) for `--cert`.
    #[arg(long, value_name = "PEM")]
    pub key: Option<PathBuf>,

    /// Plain-HTTP listen address, loopback only (tests and a local reverse proxy).
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Vec<String>,

    /// Plain-HTTP address for `/metrics` (Prometheus text format) and `/health`.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,

    /// Access log destination: a file path, `-` for stdout, or `off`. Reopened on SIGHUP.
    #[arg(long, value_name = "PATH", default_value = "-")]
    pub access_log: String,

    /// Access log line format: `combined` (Apache/nginx combined, plus time and protocol) or
    /// `json` (one JSON object per line).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = AccessLogFormat::Combined)]
    pub access_log_format: AccessLogFormat,

    /// Status file of the sync that feeds the root, for the last-successful-sync metric
    /// (default: `DEST/.sync/status.json` when `--root` is a sync's `DEST/current`).
    #[arg(long, value_name = "FILE")]
    pub sync_status: Option<PathBuf>,

    /// Worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Connections served at once; further clients wait in the listen backlog.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Largest request head (request line plus headers) accepted, in bytes; larger gets 431.
    #[arg(long, value_name = "BYTES", default_value = "16KiB", value_parser = parse_bytes_usize)]
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

    /// How often the certificate files, the root symlink and the served TUF metadata are
    /// checked for a change.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub reload_interval: Duration,

    /// `max-age` for `timestamp.json`, unversioned metadata and mutable index files.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub short_max_age: Duration,

    /// `max-age` for other files, such as release tarballs (write-once, but can be deleted).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub default_max_age: Duration,

    /// Memory for the bytes of small files (see `--file-cache-max-file`), in bytes; 0 disables.
    #[arg(long, value_name = "BYTES", default_value = "256MiB", value_parser = parse_bytes_usize)]
    pub file_cache_bytes: usize,

    /// Largest file whose bytes are kept in memory.
    #[arg(long, value_name = "BYTES", default_value = "128KiB", value_parser = parse_bytes)]
    pub file_cache_max_file: u64,

    /// Memory for gzip-compressed copies of metadata files, in bytes.
    #[arg(long, value_name = "BYTES", default_value = "64MiB", value_parser = parse_bytes_usize)]
    pub gzip_cache_bytes: usize,

    /// Options given on the command line (clap ids), which the config file does not override.
    #[arg(skip)]
    pub from_command_line: BTreeSet<String>,
}

/// Access log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// The combined log format plus response time, protocol and completeness.
    Combined,
    /// One JSON object per line.
    Json,
}

impl std::fmt::Display for AccessLogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AccessLogFormat::Combined => "combined",
            AccessLogFormat::Json => "json",
        })
    }
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
    pub access_log_format: AccessLogFormat,
    pub sync_status: Option<PathBuf>,
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
        let a = match &a.config {
            Some(file) => super::config_file::apply(file, a.clone())?,
            None => a,
        };
        let tls_listen = resolve_all("--listen", &a.listen)?;
        let http_listen = resolve_all("--http-listen", &a.http_listen)?;
        let admin_listen = match &a.admin_listen {
            Some(addr) => Some(resolve_one("--admin-listen", addr)?),
            None => None,
        };
        if tls_listen.is_empty() && http_listen.is_empty() {
            bail!("nothing to listen on: give --listen (HTTPS) or --http-listen (loopback HTTP)");
        }
        let tls = match (a.cert, a.key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => bail!("--cert and --key go together: give both or neither"),
        };
        if !tls_listen.is_empty() && tls.is_none() {
            bail!("--listen serves HTTPS and needs --cert and --key");
        }
        if tls_listen.is_empty() && tls.is_some() {
            bail!("--cert/--key given but no --listen address to serve HTTPS on");
        }
        if let Some(addr) = http_listen.iter().find(|addr| !addr.ip().is_loopback()) {
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
        let root = a
            .root
            .context("no mirror root: give --root DIR or `root` in the config file")?;
        let meta =
            std::fs::metadata(&root).with_context(|| format!("mirror root {}", root.display()))?;
        if !meta.is_dir() {
            bail!("mirror root {} is not a directory", root.display());
        }
        Ok(Config {
            root,
            tls_listen,
            tls,
            http_listen,
            admin_listen,
            access_log,
            access_log_format: a.access_log_format,
            sync_status: a.sync_status,
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

impl Config {
    /// The configuration as `check-config` prints it: one `name = value` line per setting.
    pub fn describe(&self) -> String {
        let addrs = |v: &[SocketAddr]| {
            let list: Vec<String> = v.iter().map(|a| format!("\"{a}\"")).collect();
            format!("[{}]", list.join(", "))
        };
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("(none)".into(), |p| p.display().to_string())
        };
        let log = match &self.access_log {
            AccessLogTarget::Off => "off".to_owned(),
            AccessLogTarget::Stdout => "-".to_owned(),
            AccessLogTarget::File(p) => p.display().to_string(),
        };
        let secs = |d: Duration| match d.subsec_millis() {
            0 => format!("{}s", d.as_secs()),
            _ => format!("{}ms", d.as_millis()),
        };
        let l = &self.limits;
        let lines = [
            ("root", self.root.display().to_string()),
            ("listen", addrs(&self.tls_listen)),
            ("cert", path(&self.tls.as_ref().map(|t| t.cert.clone()))),
            ("key", path(&self.tls.as_ref().map(|t| t.key.clone()))),
            ("http-listen", addrs(&self.http_listen)),
            (
                "admin-listen",
                self.admin_listen.map_or("(none)".into(), |a| a.to_string()),
            ),
            ("access-log", log),
            ("access-log-format", self.access_log_format.to_string()),
            ("sync-status", path(&self.sync_status)),
            ("workers", self.workers.to_string()),
            ("max-connections", l.max_connections.to_string()),
            ("max-header-bytes", l.max_header_bytes.to_string()),
            ("handshake-timeout", secs(l.handshake_timeout)),
            ("header-timeout", secs(l.header_timeout)),
            ("idle-timeout", secs(l.idle_timeout)),
            ("shutdown-timeout", secs(self.shutdown_timeout)),
            ("reload-interval", secs(self.reload_interval)),
            ("short-max-age", secs(self.cache.short_max_age)),
            ("default-max-age", secs(self.cache.default_max_age)),
            ("file-cache-bytes", self.file_cache.budget.to_string()),
            ("file-cache-max-file", self.file_cache.max_file.to_string()),
            ("gzip-cache-bytes", self.gzip_cache_bytes.to_string()),
        ];
        lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
    }
}

/// Every address of each `--listen`-style value, in order, without repeats.
fn resolve_all(flag: &str, values: &[String]) -> anyhow::Result<Vec<SocketAddr>> {
    let mut out = Vec::new();
    for v in values {
        for addr in parse_listen(v).map_err(|e| anyhow::anyhow!("{flag} {v}: {e}"))? {
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    Ok(out)
}

/// The one address a value names (the first, if a name resolves to several).
fn resolve_one(flag: &str, value: &str) -> anyhow::Result<SocketAddr> {
    let addrs = parse_listen(value).map_err(|e| anyhow::anyhow!("{flag} {value}: {e}"))?;
    Ok(addrs[0])
}

/// Parses a listen address: `IP:PORT`, `[IPv6]:PORT`, `:PORT` (every IPv4 address, as nginx's
/// `listen PORT`), or `NAME:PORT` (every address the name resolves to, e.g. `localhost:443`).
pub fn parse_listen(value: &str) -> Result<Vec<SocketAddr>, String> {
    let value = value.trim();
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    if let Some(port) = value.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("`{port}` is not a port number"))?;
        return Ok(vec![SocketAddr::from(([0, 0, 0, 0], port))]);
    }
    let Some((host, port)) = value.rsplit_once(':') else {
        return Err("expected HOST:PORT, [IPv6]:PORT or :PORT".into());
    };
    if host.is_empty() || host.contains(':') || port.parse::<u16>().is_err() {
        return Err("expected HOST:PORT, [IPv6]:PORT or :PORT".into());
    }
    let addrs: Vec<SocketAddr> = value
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("`{host}` resolves to no address"));
    }
    Ok(addrs)
}

/// Parses a duration as `humantime` does (`250ms`, `10s`, `5m`, `2h`, `1day`, `1h 30m`); a
/// bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("`{s}` is too long"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}; examples: 500ms, 10s, 5m, 1h)"))
}

/// Parses a size in bytes: a bare number, or with a unit as `bytesize` reads it (`64KiB`,
/// `256MiB`, `1GiB`, `500kB`).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| format!("`{s}` is too large"));
    }
    s.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| format!("`{s}` is not a size (examples: 16384, 64KiB, 256MiB, 1GiB)"))
}

/// [`parse_bytes`] for an in-memory budget.
pub fn parse_bytes_usize(s: &str) -> Result<usize, String> {
    let n = parse_bytes(s)?;
    usize::try_from(n).map_err(|_| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_accepts_port_only_names_and_ipv6() {
        for (given, wanted) in [
            (":443", "0.0.0.0:443"),
            ("[::]:443", "[::]:443"),
            ("[::1]:8443", "[::1]:8443"),
            ("192.0.2.1:443", "192.0.2.1:443"),
        ] {
            assert_eq!(parse_listen(given).unwrap(), [wanted.parse().unwrap()]);
        }
        let local = parse_listen("localhost:443").unwrap();
        assert!(!local.is_empty());
        assert!(local
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 443));
        for bad in ["443", ":http", "::1:443", "localhost", "host:99999", ""] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3 fortnights").is_err());
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_bytes("16384"), Ok(16_384));
        assert_eq!(parse_bytes("64KiB"), Ok(65_536));
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("500kB"), Ok(500_000));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
