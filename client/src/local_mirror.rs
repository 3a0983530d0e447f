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
//!
//! It is also the proxy `cpantuf install`, `carton` and `cpan` give their
//! CPAN client (a sinkhole): a proxied request for any other host, and every
//! `CONNECT`, is refused with 403, so a client that tries another source
//! despite its options is stopped and the attempt is reported.
//!
//! The trusted metadata is refreshed on the first request more than
//! [`REFRESH_AFTER`] after the last refresh, whatever is asked for: nothing
//! is served under metadata that has expired since. A refresh that fails
//! leaves every request refused until one succeeds.

use crate::session::{Session, SessionError};
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

/// A request answered with an error instead of data.
#[derive(Debug, Clone)]
pub struct Refused {
    /// What was asked for: a CPAN path, or the URL / host of a request
    /// for another source.
    pub path: String,
    /// The HTTP status sent (404: not signed by any role allowed to sign
    /// it; 403: not the verifying mirror; 502: verification failed).
    pub status: u16,
    /// Why, in one line.
    pub why: String,
}

impl Refused {
    /// Whether verification (or the sinkhole) refused it, as opposed to a
    /// path no role signs, which clients probe for routinely.
    pub fn is_refusal(&self) -> bool {
        self.status != 404
    }
}

/// What a local mirror did in its life.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Files sent, each verified first.
    pub served: Vec<Served>,
    /// Requests answered with an error, in order.
    pub refused: Vec<Refused>,
}

type RefusalHook = Box<dyn Fn(&Refused) + Send>;

struct State {
    session: Session,
    last_refresh: Instant,
    report: Report,
    on_refusal: Option<RefusalHook>,
}

impl State {
    fn refuse(&mut self, path: &str, status: u16, why: String) -> Response<Cursor<Vec<u8>>> {
        let r = Refused {
            path: sanitize(path),
            status,
            why: sanitize(&why),
        };
        tracing::debug!(path = r.path, status, "{}", r.why);
        if let Some(hook) = &self.on_refusal {
            hook(&r);
        }
        let body = format!("cpantuf: {}\n", r.why);
        self.report.refused.push(r);
        text(status, body)
    }
}

/// A running local mirror.
pub struct LocalMirror {
    server: Arc<Server>,
    state: Arc<Mutex<State>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    port: u16,
}

/// How long trusted metadata is used without a refresh while serving: the
/// first request after this long triggers a TUF refresh (and so a new check
/// of every role's expiry).
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
            report: Report::default(),
            on_refusal: None,
        }));
        let threads = (0..workers.max(1))
            .map(|_| {
                let server = Arc::clone(&server);
                let state = Arc::clone(&state);
                std::thread::spawn(move || {
                    while let Ok(req) = server.recv() {
                        handle(&state, req, port);
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

    /// What has been served and refused so far.
    pub fn report(&self) -> Report {
        lock_state(&self.state).report.clone()
    }

    /// Calls `hook` for each refused request as it happens (for a
    /// long-running server's log).
    pub fn on_refusal(&self, hook: impl Fn(&Refused) + Send + 'static) {
        lock_state(&self.state).on_refusal = Some(Box::new(hook));
    }

    /// Blocks until the server stops (never, unless unblocked elsewhere).
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Stops serving, waits for the workers and returns what they did.
    pub fn stop(mut self) -> Report {
        self.server.unblock();
        for _ in 1..self.threads.len() {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.report()
    }
}

fn lock_state(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A worker that panicked mid-request leaves nothing half-done that
    // matters here (the session's trusted state is only replaced whole).
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// A response header. Values can come from signed metadata (role names),
/// which an author may choose: anything but printable ASCII is
/// percent-encoded, so a value can neither panic a worker (non-ASCII) nor
/// inject a header (CR/LF).
fn header(name: &'static str, value: &str) -> Header {
    let mut safe = String::with_capacity(value.len());
    for b in value.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            safe.push(b as char);
        } else {
            safe.push_str(&format!("%{b:02X}"));
        }
    }
    Header::from_bytes(name.as_bytes(), safe.as_bytes())
        .expect("a fixed header name and printable ASCII value are always valid")
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

fn handle(state: &Mutex<State>, req: Request, port: u16) {
    let method = req.method().clone();
    let target = req.url().to_owned();
    if method == Method::Connect {
        let why = format!("CONNECT {target} refused: the verifying mirror is the only source");
        let resp = lock_state(state).refuse(&target, 403, why);
        let _ = req.respond(resp);
        return;
    }
    if !matches!(method, Method::Get | Method::Head) {
        let _ = req.respond(text(405, "only GET and HEAD\n".into()));
        return;
    }
    let raw = match origin_path(&target, port) {
        Ok(raw) => raw,
        Err(url) => {
            let why = format!("{url} refused: not the verifying mirror, so not verified");
            let resp = lock_state(state).refuse(&url, 403, why);
            let _ = req.respond(resp);
            return;
        }
    };
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
    let mut st = lock_state(state);
    if let Err(e) = refresh_if_due(&mut st) {
        let why = format!("TUF refresh failed, nothing served: {e}");
        let resp = st.refuse(path.as_str(), 502, why);
        let _ = req.respond(resp);
        return;
    }
    let verified = match resolve(&mut st, &path) {
        Ok(v) => v,
        Err((status, msg)) => {
            let resp = st.refuse(path.as_str(), status, msg);
            let _ = req.respond(resp);
            return;
        }
    };
    st.report.served.push(Served {
        path: path.as_str().to_owned(),
        role: verified.1.clone(),
        sha256: verified.2.clone(),
    });
    drop(st);
    respond_verified(req, &path, verified);
}

/// The path of a request target: origin-form (`/authors/...`), or
/// absolute-form naming this mirror itself (what a client sends when it
/// uses this mirror as its proxy). Any other absolute URL is returned as the
/// error: a request for another source.
fn origin_path(target: &str, port: u16) -> Result<String, String> {
    let target = target.split(['?', '#']).next().unwrap_or("");
    let path = match target.split_once("://") {
        None => target,
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let own = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
            if !scheme.eq_ignore_ascii_case("http")
                || !own.iter().any(|o| o.eq_ignore_ascii_case(authority))
            {
                return Err(sanitize(target));
            }
            path
        }
    };
    Ok(path.trim_start_matches('/').to_owned())
}

/// Refreshes the trusted metadata if the last refresh is older than
/// [`REFRESH_AFTER`]: what is served is never verified against metadata
/// older than that, so expiry is re-checked at least as often.
fn refresh_if_due(st: &mut State) -> Result<(), SessionError> {
    if st.last_refresh.elapsed() > REFRESH_AFTER {
        st.session.refresh()?;
        st.last_refresh = Instant::now();
    }
    Ok(())
}

/// Sends a verified file (or 304 when the client's copy is current).
fn respond_verified(req: Request, path: &CpanPath, (body, role, sha256, mtime): Resolved) {
    let etag = sha256.as_ref().map(|h| format!("\"{h}\""));
    let last_modified = httpdate::fmt_http_date(mtime);
    let mut resp = if client_copy_is_current(&req, etag.as_deref(), mtime) {
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

/// Conditional GET: `If-None-Match` against the sha256 ETag, else
/// `If-Modified-Since` against the file's time.
fn client_copy_is_current(req: &Request, etag: Option<&str>, mtime: SystemTime) -> bool {
    let find = |name: &'static str| req.headers().iter().find(|h| h.field.equiv(name));
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    match (find("If-None-Match"), etag) {
        (Some(h), Some(tag)) => h
            .value
            .as_str()
            .split(',')
            .any(|v| v.trim() == tag || v.trim() == "*"),
        (Some(_), None) => false,
        (None, _) => find("If-Modified-Since")
            .and_then(|h| httpdate::parse_http_date(h.value.as_str()).ok())
            .is_some_and(|since| secs(mtime) <= secs(since)),
    }
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
    // The cache is shared with other cpantuf processes on the same home:
    // what is sent is checked again, in memory, against what was verified.
    if !cpantuf_core::target::reader_matches(&found.path, &found.info, Cursor::new(&body)) {
        return Err((
            502,
            format!(
                "{}: the cached file changed after it was verified; nothing served",
                path.as_str()
            ),
        ));
    }
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
        SessionError::Local(_) | SessionError::Io { .. } => (
            500,
            format!("local error on the cpantuf host, nothing served: {e}"),
        ),
        _ => (502, format!("verification failed, nothing served: {e}")),
    }
}

/// Replaces control characters in untrusted text before it is printed.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Role names come from signed metadata that an author may write:
    /// `header` used to panic on non-ASCII (killing a worker) and pass
    /// CR/LF through (injecting headers).
    #[test]
    fn role_names_from_metadata_cannot_panic_a_worker_or_inject_headers() {
        for role in [
            "author-\u{c9}T\u{c9}",
            "author-X\r\nSet-Cookie: a=b",
            "a\u{7f}%",
        ] {
            let h = header("X-TUF-Role", role);
            let v = h.value.as_str();
            assert!(
                v.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "{role:?} -> {v:?}"
            );
        }
        assert_eq!(
            header("X-TUF-Role", "author-X\r\nA: b").value.as_str(),
            "author-X%0D%0AA: b"
        );
    }

    /// A proxied request for another host is a request for an unverified
    /// source; one naming this mirror is served as usual.
    #[test]
    fn absolute_urls_for_other_hosts_are_requests_for_another_source() {
        assert_eq!(origin_path("/modules/x?a", 80).unwrap(), "modules/x");
        assert_eq!(
            origin_path("http://127.0.0.1:8231/authors/id/x", 8231).unwrap(),
            "authors/id/x"
        );
        for other in [
            "http://cpan.metacpan.org/authors/id/x",
            "http://127.0.0.1:9999/authors/id/x",
            "https://127.0.0.1:8231/authors/id/x",
            "ftp://ftp.perl.org/pub/CPAN/x",
        ] {
            assert!(origin_path(other, 8231).is_err(), "{other}");
        }
    }
}
