//! The test harness: a throw-away PKI, a mirror tree, a `cpantuf-mirror serve` process on
//! 127.0.0.1, and a raw HTTP/1.1 client over rustls that sends exactly the bytes a test gives
//! it (a high-level client would normalise away the attacks under test).

use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

pub const BIN: &str = env!("CARGO_BIN_EXE_cpantuf-mirror");
/// Larger than the server's small-file cache limit, so it is streamed from disk.
pub const BIG_LEN: usize = 3 * 1024 * 1024 + 17;

/// A test CA and a server certificate it issued, as PEM files.
pub struct Pki {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
    pub ca_pem: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cpantuf test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = params.self_signed(&ca_key).unwrap();
        let ca_pem = dir.join("ca.pem");
        std::fs::write(&ca_pem, ca.pem()).unwrap();
        let pki = Pki {
            ca,
            ca_key,
            ca_pem,
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        };
        pki.issue("first");
        pki
    }

    /// Issues a new server certificate (for `localhost` and 127.0.0.1) over the files, with
    /// `tag` as its common name. Returns its DER.
    pub fn issue(&self, tag: &str) -> Vec<u8> {
        self.issue_until(tag, None)
    }

    /// As [`Pki::issue`], valid until `not_after` (rcgen's default if `None`).
    pub fn issue_until(&self, tag: &str, not_after: Option<(i32, u8, u8)>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        if let Some((y, m, d)) = not_after {
            params.not_before = rcgen::date_time_ymd(y - 1, m, d);
            params.not_after = rcgen::date_time_ymd(y, m, d);
        }
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, tag);
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        // Key first, then certificate, each by rename: the server never sees half a file.
        write_atomic(&self.key, key.serialize_pem().as_bytes());
        write_atomic(&self.cert, cert.pem().as_bytes());
        cert.der().to_vec()
    }

    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        self.client_config_offering(alpn, None)
    }

    /// A client configuration that offers exactly `suites`, in that order (all of rustls'
    /// defaults if `None`).
    pub fn client_config_offering(
        &self,
        alpn: &[&[u8]],
        suites: Option<&[rustls::CipherSuite]>,
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(suites) = suites {
            let all = std::mem::take(&mut provider.cipher_suites);
            provider.cipher_suites = suites
                .iter()
                .map(|want| *all.iter().find(|s| s.suite() == *want).unwrap())
                .collect();
        }
        let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

pub fn write_atomic(path: &Path, data: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[path = "../common/filler.rs"]
mod common_filler;
pub use common_filler::filler;

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A TUF-shaped metadata document of about `len` bytes.
pub fn metadata_json(role: &str, version: u32, len: usize) -> Vec<u8> {
    let mut targets = String::new();
    let mut i = 0;
    while targets.len() < len {
        targets.push_str(&format!(
            "\"authors/id/A/AB/ABC/Dist-{i}.tar.gz\":{{\"length\":{},\"hashes\":{{\"sha256\":\"{:064x}\"}}}},",
            1000 + i,
            i * 7919
        ));
        i += 1;
    }
    targets.pop();
    format!(
        "{{\"signatures\":[],\"signed\":{{\"_type\":\"{role}\",\"version\":{version},\"targets\":{{{targets}}}}}}}"
    )
    .into_bytes()
}

/// A timestamp or snapshot document as a sync serves it under `tuf/`: well formed, carrying one
/// signature (which no mirror checks), expiring at `expires`.
pub fn served_meta(role: &str, version: u64, expires: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let meta = match role {
        "timestamp" => "{\"snapshot.json\":{\"version\":7}}",
        _ => "{\"targets.json\":{\"version\":3}}",
    };
    let expires = expires.format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        "{{\"signatures\":[{{\"keyid\":\"{:064x}\",\"sig\":\"{:0128x}\"}}],\
         \"signed\":{{\"_type\":\"{role}\",\"spec_version\":\"1.0.31\",\"version\":{version},\
         \"expires\":\"{expires}\",\"meta\":{meta}}}}}",
        1, 2
    )
    .into_bytes()
}

/// Serves `tuf/timestamp.json` (version 42, naming snapshot 7) and `tuf/7.snapshot.json` under
/// `root`, the timestamp expiring at `expires`, the snapshot a day from now.
pub fn put_served_metadata(root: &Path, expires: chrono::DateTime<chrono::Utc>) {
    let tuf = root.join("tuf");
    std::fs::create_dir_all(&tuf).unwrap();
    let day = chrono::Utc::now() + chrono::Duration::days(1);
    write_atomic(
        &tuf.join("7.snapshot.json"),
        &served_meta("snapshot", 7, day),
    );
    write_atomic(
        &tuf.join("timestamp.json"),
        &served_meta("timestamp", 42, expires),
    );
}

/// Lays out a small mirror tree under `root`, and things around it that must stay unreachable.
pub fn build_tree(root: &Path) {
    let put = |rel: &str, data: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    put("timestamp.json", &metadata_json("timestamp", 42, 600));
    put("1.root.json", &metadata_json("root", 1, 2000));
    put("7.snapshot.json", &metadata_json("snapshot", 7, 4000));
    put("snapshot.json", &metadata_json("snapshot", 7, 4000));
    put("tiny.json", b"{}");
    put_served_metadata(root, chrono::Utc::now() + chrono::Duration::hours(1));
    put(
        "modules/02packages.details.txt.gz",
        &gzip(&filler(50_000, 2)),
    );
    put(
        "authors/01mailrc.txt.gz",
        &gzip(b"alias EXAMPLE \"Ex Ample <ex@example.org>\"\n"),
    );
    let dist = filler(20 * 1024, 3);
    put("authors/id/E/EX/EXAMPLE/Foo-1.0.tar.gz", &dist);
    let hash = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&dist))
    };
    std::fs::hard_link(
        root.join("authors/id/E/EX/EXAMPLE/Foo-1.0.tar.gz"),
        root.join(format!("authors/id/E/EX/EXAMPLE/{hash}.Foo-1.0.tar.gz")),
    )
    .unwrap();
    put("authors/id/E/EX/EXAMPLE/CHECKSUMS", b"$cksum = {};\n");
    put("authors/id/B/BI/BIG/Big-1.0.tar.gz", &filler(BIG_LEN, 4));
    put(".sync-in-progress/timestamp.json", b"{}");
    put(".hidden", b"secret");
    let outside = root.parent().unwrap().join("outside-secret.txt");
    std::fs::write(&outside, "outside").unwrap();
    std::os::unix::fs::symlink(
        "../../../../outside-secret.txt",
        root.join("authors/id/E/escape"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
    let fifo = root.join("authors/fifo");
    let ok = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(ok.success());
}

/// A running server. Killed when dropped.
pub struct Mirror {
    pub child: Child,
    pub https: SocketAddr,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    pub root: PathBuf,
    pub access_log: PathBuf,
    pub pki: Pki,
    stderr: Arc<Mutex<String>>,
    pub dir: tempfile::TempDir,
}

impl Mirror {
    /// A server over a fresh tree, with short timeouts so the abuse tests run quickly.
    pub fn start(extra: &[&str]) -> Mirror {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mirror");
        build_tree(&root);
        Mirror::start_on(dir, root, extra)
    }

    pub fn start_on(dir: tempfile::TempDir, root: PathBuf, extra: &[&str]) -> Mirror {
        let pki = Pki::new(dir.path());
        let access_log = dir.path().join("access.log");
        let mut cmd = Command::new(BIN);
        cmd.args(["--log", "info", "serve", "--root"])
            .arg(&root)
            .args(["--listen", "127.0.0.1:0", "--cert"])
            .arg(&pki.cert)
            .arg("--key")
            .arg(&pki.key)
            .args([
                "--http-listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .arg("--access-log")
            .arg(&access_log)
            .args(["--workers", "2"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if !extra.contains(&"--reload-interval") {
            cmd.args(["--reload-interval", "200ms"]);
        }
        let mut child = cmd.spawn().expect("start cpantuf-mirror");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (mut https, mut http, mut admin) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while https.is_none() || http.is_none() || admin.is_none() {
            assert!(Instant::now() < deadline, "server did not start");
            let Some(Ok(line)) = lines.next() else {
                panic!("server exited early: {}", stderr.lock().unwrap());
            };
            stderr.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some((_, rest)) = line.split_once("listening: ") {
                let (scheme, addr) = rest.split_once(' ').unwrap();
                let addr: SocketAddr = addr.trim().parse().unwrap();
                match scheme {
                    "https" => https = Some(addr),
                    "http" => http = Some(addr),
                    "admin" => admin = Some(addr),
                    _ => {}
                }
            }
        }
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Mirror {
            child,
            https: https.unwrap(),
            http: http.unwrap(),
            admin: admin.unwrap(),
            root,
            access_log,
            pki,
            stderr,
            dir,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// A TLS connection (ALPN http/1.1).
    pub fn tls(&self) -> Tls {
        self.tls_with(&[b"http/1.1"])
    }

    pub fn tls_with(&self, alpn: &[&[u8]]) -> Tls {
        let tcp = TcpStream::connect(self.https).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let conn = ClientConnection::new(
            self.pki.client_config(alpn),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut s = StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).expect("TLS handshake");
        }
        s
    }

    /// One GET over a new TLS connection, with extra header lines.
    pub fn get(&self, path: &str, headers: &[&str]) -> Response {
        self.send(&request("GET", path, headers))
    }

    /// Sends raw request bytes over a new TLS connection and reads one response.
    pub fn send(&self, raw: &[u8]) -> Response {
        let mut s = self.tls();
        s.write_all(raw).unwrap();
        s.flush().unwrap();
        let head = raw.starts_with(b"HEAD ");
        read_response(&mut s, head).expect("a response")
    }

    /// One GET over plain HTTP to the admin listener.
    pub fn admin_get(&self, path: &str) -> Response {
        let mut s = TcpStream::connect(self.admin).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&request("GET", path, &[])).unwrap();
        read_response(&mut s, false).unwrap()
    }

    /// The value of one metric line, e.g. `cpantuf_mirror_responses_total{status="404"}`.
    pub fn metric(&self, series: &str) -> f64 {
        let text = String::from_utf8(self.admin_get("/metrics").body).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
    }

    /// The access log, once it holds at least `min_lines` lines.
    pub fn access_log(&self, min_lines: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&self.access_log).unwrap_or_default();
            if text.lines().count() >= min_lines || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts the server still serves a good client normally.
    pub fn assert_healthy(&self) {
        let r = self.get("/timestamp.json", &[]);
        assert_eq!(r.status, 200, "a good client must still be served");
        assert_eq!(
            r.body,
            std::fs::read(self.root.join("timestamp.json")).unwrap()
        );
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub type Tls = StreamOwned<ClientConnection, TcpStream>;

/// An HTTP/1.1 request with `Host` and any extra header lines.
pub fn request(method: &str, target: &str, headers: &[&str]) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response (Content-Length framed, as this server always sends). `None` if the
/// connection closed before a status line.
pub fn read_response(s: &mut impl Read, head: bool) -> Option<Response> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(0) | Err(_) => return None,
            Ok(_) => buf.push(byte[0]),
        }
    }
    let text = String::from_utf8(buf).unwrap();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut r = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = r.header("content-length").map_or(0, |v| v.parse().unwrap());
    if !head && status != 304 && status != 204 {
        r.body = vec![0; len];
        s.read_exact(&mut r.body).ok()?;
    }
    Some(r)
}

/// True if the peer closed the connection (EOF or reset) within `limit`.
pub fn closed_within(s: &mut impl Read, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}
