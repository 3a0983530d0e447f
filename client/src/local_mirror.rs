//! The local verifying mirror: an HTTP server on 127.0.0.1 that unmodified
//! cpanm, CPAN.pm and cpm use as their CPAN mirror.
//!
//! Security invariant: a byte is sent only from a file in the client cache
//! that the TUF workflow has just verified (or re-verified against the
//! current trusted metadata). Anything that does not verify is answered with
//! an error status and a message naming what failed; nothing unverified is
//! ever streamed through.
//!
//! Served paths: `modules/02packages.details.txt.gz`,
//! `authors/01mailrc.txt.gz`, `modules/03modlist.data.gz`, anything under
//! `authors/id/` signed by its author's role, and `CHECKSUMS` for an author
//! directory, generated from verified hashes. Conditional GET (`ETag` /
//! `If-None-Match`, `Last-Modified` / `If-Modified-Since`) and `HEAD` are
//! answered.

use crate::session::{Session, SessionError, PACKAGES_PATH};
use cpantuf_core::cpan::{owner, CpanPath, Owner};
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tiny_http::{Header, Method, Request, Response, Server, StatusCode};

/// One file served, for the report printed after an install.
#[derive(Debug, Clone)]
pub struct Served {
    /// The CPAN path.
    pub path: String,
    /// The TUF role that signed it (or "generated" for CHECKSUMS).
    pub role: String,
    /// Its sha256, when known.
    pub sha256: Option<String>,
}

struct State {
    session: Session,
    last_refresh: Instant,
    served: Vec<Served>,
}

/// A running local mirror.
pub struct LocalMirror {
    server: Arc<Server>,
    state: Arc<Mutex<State>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    port: u16,
}

/// How often the index is re-checked while serving (a new 02packages
/// request after this long triggers a TUF refresh).
pub const REFRESH_AFTER: Duration = Duration::from_secs(60);

impl LocalMirror {
    /// Refreshes trusted metadata, then starts serving on `listen` (which
    /// must be a loopback address) with `workers` threads.
    pub fn start(
        mut session: Session,
        listen: &str,
        workers: usize,
    ) -> Result<Self, anyhow::Error> {
        let addr: std::net::SocketAddr = listen
            .parse()
            .map_err(|e| anyhow::anyhow!("--listen {listen}: {e} (expected 127.0.0.1:PORT)"))?;
        if !addr.ip().is_loopback() {
            anyhow::bail!(
                "--listen {listen}: the verifying mirror only listens on a loopback address"
            );
        }
        session.refresh()?;
        let server = Arc::new(
            Server::http(addr).map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?,
        );
        let port = server.server_addr().to_ip().map(|a| a.port()).unwrap_or(0);
        let state = Arc::new(Mutex::new(State {
            session,
            last_refresh: Instant::now(),
            served: Vec::new(),
        }));
        let threads = (0..workers.max(1))
            .map(|_| {
                let server = Arc::clone(&server);
                let state = Arc::clone(&state);
                std::thread::spawn(move || {
                    while let Ok(req) = server.recv() {
                        handle(&state, req);
                    }
                })
            })
            .collect();
        Ok(LocalMirror {
            server,
            state,
            threads,
            port,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The mirror URL to give a CPAN client.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// What has been served so far.
    pub fn served(&self) -> Vec<Served> {
        self.state
            .lock()
            .map(|s| s.served.clone())
            .unwrap_or_default()
    }

    /// Blocks until the server stops (never, unless unblocked elsewhere).
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Stops serving and waits for the workers.
    pub fn stop(mut self) -> Vec<Served> {
        self.server.unblock();
        for _ in 1..self.threads.len() {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.served()
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header names are valid")
}

fn text(status: u16, body: String) -> Response<Cursor<Vec<u8>>> {
    Response::from_data(body.into_bytes())
        .with_status_code(StatusCode(status))
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &str) -> &'static str {
    if path.ends_with(".gz") || path.ends_with(".tgz") {
        "application/x-gzip"
    } else if path.ends_with(".zip") {
        "application/zip"
    } else if path.ends_with(".bz2") {
        "application/x-bzip2"
    } else {
        "text/plain; charset=utf-8"
    }
}

fn handle(state: &Mutex<State>, req: Request) {
    let method = req.method().clone();
    if !matches!(method, Method::Get | Method::Head) {
        let _ = req.respond(text(405, "only GET and HEAD\n".into()));
        return;
    }
    let raw = req
        .url()
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_owned();
    let Some(decoded) = percent_decode(&raw) else {
        let _ = req.respond(text(400, "bad percent-encoding\n".into()));
        return;
    };
    let Ok(path) = CpanPath::new(&decoded) else {
        let _ = req.respond(text(
            404,
            format!("not a CPAN path: {}\n", sanitize(&decoded)),
        ));
        return;
    };
    let mut guard = match state.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let st = &mut *guard;
    if path.as_str() == PACKAGES_PATH && st.last_refresh.elapsed() > REFRESH_AFTER {
        if let Err(e) = st.session.refresh() {
            tracing::error!("refresh failed, serving nothing new: {e}");
            let _ = req.respond(text(502, format!("TUF refresh failed: {e}\n")));
            return;
        }
        st.last_refresh = Instant::now();
    }
    let (body, role, sha256, mtime) = match resolve(st, &path) {
        Ok(x) => x,
        Err((status, msg)) => {
            tracing::warn!(path = path.as_str(), status, "{msg}");
            let _ = req.respond(text(status, format!("{msg}\n")));
            return;
        }
    };
    st.served.push(Served {
        path: path.as_str().to_owned(),
        role: role.clone(),
        sha256: sha256.clone(),
    });
    drop(guard);

    let etag = sha256.as_ref().map(|h| format!("\"{h}\""));
    let last_modified = httpdate::fmt_http_date(mtime);
    let not_modified = match (
        req.headers()
            .iter()
            .find(|h| h.field.equiv("If-None-Match")),
        &etag,
    ) {
        (Some(h), Some(tag)) => h
            .value
            .as_str()
            .split(',')
            .any(|v| v.trim() == tag || v.trim() == "*"),
        (Some(_), None) => false,
        (None, _) => req
            .headers()
            .iter()
            .find(|h| h.field.equiv("If-Modified-Since"))
            .and_then(|h| httpdate::parse_http_date(h.value.as_str()).ok())
            .is_some_and(|since| {
                mtime
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|m| m.as_secs())
                    .unwrap_or(0)
                    <= since
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(|s| s.as_secs())
                        .unwrap_or(0)
            }),
    };
    let mut resp = if not_modified {
        Response::from_data(Vec::new()).with_status_code(StatusCode(304))
    } else {
        // tiny_http sends headers only (with the body's length) for HEAD.
        Response::from_data(body).with_header(header("Content-Type", content_type(path.as_str())))
    };
    resp = resp
        .with_header(header("Last-Modified", &last_modified))
        .with_header(header("X-TUF-Role", &role));
    if let Some(tag) = &etag {
        resp = resp.with_header(header("ETag", tag));
    }
    let _ = req.respond(resp);
}

type Resolved = (Vec<u8>, String, Option<String>, SystemTime);

fn resolve(st: &mut State, path: &CpanPath) -> Result<Resolved, (u16, String)> {
    let own = owner(path).map_err(|e| (404, format!("{}: {e}", path.as_str())))?;
    if path.file_name() == "CHECKSUMS" {
        if let Owner::Index = own {
            let segs: Vec<&str> = path.segments().collect();
            // authors/id/X/XY/AUTHOR/CHECKSUMS
            if segs.len() == 6 {
                let author =
                    cpantuf_core::cpan::PauseId::new(segs[4]).map_err(|e| (404, e.to_string()))?;
                let dir = author.author_dir();
                let body = st
                    .session
                    .checksums(&author, &dir)
                    .map_err(session_status)?;
                let sha = cpantuf_core::target::sha256_hex(&body);
                return Ok((
                    body,
                    "generated from verified metadata".into(),
                    Some(sha),
                    SystemTime::now(),
                ));
            }
        }
    }
    let (file, found) = st.session.verified(path).map_err(session_status)?;
    let body =
        std::fs::read(&file).map_err(|e| (500, format!("reading the verified file: {e}")))?;
    let mtime = std::fs::metadata(&file)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    Ok((
        body,
        found.role,
        found.info.hashes.get("sha256").cloned(),
        mtime,
    ))
}

fn session_status(e: SessionError) -> (u16, String) {
    use crate::updater::ClientError;
    match &e {
        SessionError::AllMirrorsFailed(list)
            if list
                .iter()
                .all(|(_, c)| matches!(c, ClientError::TargetNotFound(_))) =>
        {
            (404, e.to_string())
        }
        SessionError::UnknownModule(_) | SessionError::BadPath(_) => (404, e.to_string()),
        _ => (502, format!("verification failed, nothing served: {e}")),
    }
}

/// Replaces control characters in untrusted text before it is printed.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
