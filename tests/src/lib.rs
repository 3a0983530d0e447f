//! Harness for cpantuf's end-to-end tests: real processes on 127.0.0.1.
//!
//! * [`bin`] finds (building once if needed) the workspace binaries.
//! * [`EvilMirror`] is a small HTTP/1.1 server over a directory that can be
//!   told to lie about individual paths: other bytes, an older file, an
//!   endless body, a drip-fed body, an error status. It stands between the
//!   signed repository and the client in the attack tests.
//! * [`TestDirs`] lays out a signer state, a mirror tree and a client home in
//!   one temporary directory.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Path of a workspace binary (debug profile), building the workspace's
/// binaries once per test run so the tests never run stale ones.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--workspace", "--bins", "--quiet"])
            .current_dir(workspace_root())
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build --bins failed");
    });
    let p = target_dir().join("debug").join(name);
    assert!(p.is_file(), "{} not built", p.display());
    p
}

/// Runs a command, returning its output; panics with stdout/stderr if it
/// could not start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"))
}

/// Runs a command that must succeed.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What the evil mirror does for one path.
#[derive(Clone, Debug)]
pub enum Lie {
    /// Serve these bytes instead.
    Bytes(Vec<u8>),
    /// Serve the contents of this file instead (e.g. an older version).
    File(PathBuf),
    /// Send an endless body (no Content-Length, never ends on its own).
    Endless,
    /// Send the real file, one byte every `delay`.
    Drip(Duration),
    /// Answer with this HTTP status and no body.
    Status(u16),
}

struct EvilState {
    root: PathBuf,
    lies: HashMap<String, Lie>,
    log: Vec<String>,
}

/// A loopback HTTP server over a directory that lies on request.
pub struct EvilMirror {
    port: u16,
    state: Arc<Mutex<EvilState>>,
    stop: Arc<AtomicBool>,
}

impl EvilMirror {
    /// Serves `root` on 127.0.0.1 (ephemeral port).
    pub fn start(root: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(EvilState {
            root: root.to_owned(),
            lies: HashMap::new(),
            log: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = Arc::clone(&st);
                let sp = Arc::clone(&sp);
                std::thread::spawn(move || serve_conn(conn, &st, &sp));
            }
        });
        EvilMirror { port, state, stop }
    }

    /// The mirror's base URL, ending in `/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Makes the mirror lie about `path` (relative, e.g. `tuf/timestamp.json`).
    pub fn lie(&self, path: &str, lie: Lie) {
        self.state
            .lock()
            .unwrap()
            .lies
            .insert(path.trim_start_matches('/').to_owned(), lie);
    }

    /// Stops lying about everything.
    pub fn honest(&self) {
        self.state.lock().unwrap().lies.clear();
    }

    /// Paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for EvilMirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_conn(conn: TcpStream, state: &Mutex<EvilState>, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut out = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut keep_alive = true;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.to_ascii_lowercase().starts_with("connection: close") {
                keep_alive = false;
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("");
        let raw_path = parts.next().unwrap_or("/");
        let path = raw_path
            .split('?')
            .next()
            .unwrap_or("")
            .trim_start_matches('/')
            .to_owned();
        let (root, lie) = {
            let mut st = state.lock().unwrap();
            st.log.push(path.clone());
            (st.root.clone(), st.lies.get(&path).cloned())
        };
        let head = method == "HEAD";
        let real = || -> Option<Vec<u8>> {
            if path.split('/').any(|s| s == "..") {
                return None;
            }
            std::fs::read(root.join(&path)).ok()
        };
        let result = match lie {
            Some(Lie::Endless) => {
                let _ = out.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                let chunk = vec![b'x'; 64 * 1024];
                while !stop.load(Ordering::SeqCst) {
                    if out.write_all(&chunk).is_err() {
                        break;
                    }
                }
                return;
            }
            Some(Lie::Drip(delay)) => {
                let body = real().unwrap_or_default();
                let _ = out.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                for b in body {
                    if stop.load(Ordering::SeqCst) || out.write_all(&[b]).is_err() {
                        break;
                    }
                    std::thread::sleep(delay);
                }
                return;
            }
            Some(Lie::Status(code)) => Err(code),
            Some(Lie::Bytes(b)) => Ok(b),
            Some(Lie::File(f)) => std::fs::read(f).map_err(|_| 404),
            None => real().ok_or(404),
        };
        let wrote = match result {
            Ok(body) => {
                let hdr = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                    body.len()
                );
                out.write_all(hdr.as_bytes()).and_then(|_| {
                    if head {
                        Ok(())
                    } else {
                        out.write_all(&body)
                    }
                })
            }
            Err(code) => out
                .write_all(format!("HTTP/1.1 {code} Lie\r\nContent-Length: 0\r\n\r\n").as_bytes()),
        };
        if wrote.is_err() || !keep_alive {
            return;
        }
    }
}

/// The demo keys (`keys-example/`).
pub fn example_keys() -> PathBuf {
    workspace_root().join("keys-example")
}

/// `cpantuf-sign init` over `mirror` with the demo keys (root 2-of-3, targets 2-of-2,
/// online snapshot/timestamp/index/registry/authors keys), configuration in `cfg`, then a
/// full `publish` signed by both targets keys.
pub fn sign_new_repository(mirror: &Path, cfg: &Path) {
    sign_new_repository_with_keys(mirror, cfg, &example_keys());
}

/// [`sign_new_repository`] with the keys of `keys` (a directory laid out like
/// `keys-example/`; the targets keys must stay the demo ones, which
/// [`sign_publish`] signs with).
pub fn sign_new_repository_with_keys(mirror: &Path, cfg: &Path, keys: &Path) {
    let k = |n: &str| keys.join(n);
    run_ok(
        Command::new(bin("cpantuf-sign"))
            .arg("init")
            .arg("--mirror")
            .arg(mirror)
            .arg("--config")
            .arg(cfg)
            .args(["--root-key".as_ref(), k("root-1.pem").as_os_str()])
            .args(["--root-key".as_ref(), k("root-2.pem").as_os_str()])
            .args(["--root-key".as_ref(), k("root-3.pem").as_os_str()])
            .args(["--root-threshold", "2"])
            .args(["--targets-key".as_ref(), k("targets-1.pub.pem").as_os_str()])
            .args(["--targets-key".as_ref(), k("targets-2.pub.pem").as_os_str()])
            .args(["--targets-threshold", "2"])
            .args(["--snapshot-key".as_ref(), k("snapshot.pem").as_os_str()])
            .args(["--timestamp-key".as_ref(), k("timestamp.pem").as_os_str()])
            .args(["--index-key".as_ref(), k("index.pem").as_os_str()])
            .args(["--registry-key".as_ref(), k("registry.pem").as_os_str()])
            .args(["--authors-key".as_ref(), k("authors.pem").as_os_str()])
            .arg("--no-fsync"),
    );
    sign_publish(cfg);
}

/// A full `cpantuf-sign publish` signed by both demo targets keys.
pub fn sign_publish(cfg: &Path) -> Output {
    let k = |n: &str| example_keys().join(n);
    run_ok(
        Command::new(bin("cpantuf-sign"))
            .arg("publish")
            .arg("--key")
            .arg(k("targets-1.pem"))
            .arg("--key")
            .arg(k("targets-2.pem"))
            .arg("--config")
            .arg(cfg),
    )
}

/// Copies a directory tree (hard links are not preserved; fine for tests).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        let ft = entry.file_type().unwrap();
        if ft.is_dir() {
            copy_tree(&entry.path(), &dest);
        } else if ft.is_file() {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// Every file under `dir` with its bytes, for "trusted state intact" checks.
pub fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push((
                    p.strip_prefix(base).unwrap().to_owned(),
                    std::fs::read(&p).unwrap_or_default(),
                ));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// What a [`HostileProxy`] saw: the request line's method and target, as
/// sent (`GET http://host:port/path`, `CONNECT host:443`).
pub type ProxyRequest = String;

struct ProxyState {
    swaps: Vec<(String, Vec<u8>)>,
    log: Vec<ProxyRequest>,
}

/// An HTTP forward proxy on 127.0.0.1 that a hostile network put in the
/// user's `http_proxy`: it forwards requests for loopback hosts and answers
/// any request whose URL ends with a chosen suffix with other bytes. It
/// never connects anywhere but 127.0.0.1; requests for other hosts (and
/// `CONNECT`) are logged and answered 502, so a test can see that a client
/// tried to reach them.
pub struct HostileProxy {
    port: u16,
    state: Arc<Mutex<ProxyState>>,
    stop: Arc<AtomicBool>,
}

impl HostileProxy {
    /// Listens on 127.0.0.1 (ephemeral port).
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(ProxyState {
            swaps: Vec::new(),
            log: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = Arc::clone(&st);
                std::thread::spawn(move || proxy_conn(conn, &st));
            }
        });
        HostileProxy { port, state, stop }
    }

    /// The proxy URL, for `http_proxy`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Answers every request whose URL ends with `suffix` with `body`.
    pub fn swap(&self, suffix: &str, body: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .swaps
            .push((suffix.to_owned(), body));
    }

    /// The request lines received so far.
    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for HostileProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves one proxied request (then closes the connection).
fn proxy_conn(conn: TcpStream, state: &Mutex<ProxyState>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = conn;
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let swap = {
        let mut st = state.lock().unwrap();
        st.log.push(format!("{method} {target}"));
        st.swaps
            .iter()
            .find(|(suffix, _)| target.ends_with(suffix.as_str()))
            .map(|(_, body)| body.clone())
    };
    if let Some(body) = swap {
        let _ = out.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/x-gzip\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        let _ = out.write_all(&body);
        return;
    }
    if method == "CONNECT" && is_loopback_authority(&target) {
        // cpantuf's own fetches may use the user's proxy: everything it
        // fetches is verified, so the proxy tunnels them honestly.
        return tunnel(out, &target);
    }
    let loopback = target
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(host, _)| is_loopback_authority(host));
    let Some((host, path)) = loopback.filter(|_| method == "GET" || method == "HEAD") else {
        let _ = out.write_all(
            b"HTTP/1.1 502 Not Forwarded\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    };
    let Ok(mut upstream) = TcpStream::connect(host.replace("localhost", "127.0.0.1")) else {
        let _ = out.write_all(
            b"HTTP/1.1 502 Unreachable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    };
    let _ = upstream.write_all(
        format!("{method} /{path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let _ = std::io::copy(&mut upstream, &mut out);
}

/// Removes every proxy variable (any case) from a command's environment, so
/// a test decides alone which proxy a client sees.
pub fn without_proxies(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().to_ascii_lowercase().ends_with("_proxy") {
            cmd.env_remove(&k);
        }
    }
    cmd
}

/// A `.tar.gz` of one directory `name/` holding a `Makefile.PL` that, when
/// run, writes `marker` (proof that code from it ran) and then builds a
/// module `module` at version `version`.
pub fn marker_tarball(name: &str, module: &str, version: &str, marker: &Path) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join(name);
    let lib = top.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(
        top.join("Makefile.PL"),
        format!(
            "open my $f, '>', '{}' or die; print $f \"code from a swapped tarball ran\\n\"; close $f;\n\
             use ExtUtils::MakeMaker;\nWriteMakefile(NAME => '{module}', VERSION => '{version}');\n",
            marker.display()
        ),
    )
    .unwrap();
    let file = module.rsplit("::").next().unwrap();
    let pm_dir = module.split("::").collect::<Vec<_>>();
    let mut pm = lib.clone();
    for seg in &pm_dir[..pm_dir.len() - 1] {
        pm.push(seg);
    }
    std::fs::create_dir_all(&pm).unwrap();
    std::fs::write(
        pm.join(format!("{file}.pm")),
        format!("package {module}; our $VERSION = '{version}'; 1;\n"),
    )
    .unwrap();
    let out = dir.path().join("out.tar.gz");
    run_ok(
        Command::new("tar")
            .arg("czf")
            .arg(&out)
            .arg("-C")
            .arg(dir.path())
            .arg(name),
    );
    std::fs::read(out).unwrap()
}

fn is_loopback_authority(host: &str) -> bool {
    host.starts_with("127.0.0.1:") || host.starts_with("localhost:")
}

/// Answers a `CONNECT` to a loopback port and relays bytes both ways.
fn tunnel(mut client: TcpStream, authority: &str) {
    let Ok(upstream) = TcpStream::connect(authority.replace("localhost", "127.0.0.1")) else {
        let _ = client.write_all(b"HTTP/1.1 502 Unreachable\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let _ = client.set_read_timeout(None);
    let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let mut upstream = upstream;
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut upstream);
        let _ = upstream.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut u2, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}
