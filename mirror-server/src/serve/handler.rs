//! Request routing: the mirror's files, `/-/health`, and the admin listener's `/metrics`.
//! Every response leaves through [`finish`], which hooks the access log and metrics to the end
//! of its body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};

use super::access_log::{AccessLog, Entry};
use super::body::Body;
use super::config::CachePolicy;
use super::files;
use super::gzip::GzipCache;
use super::metrics::Metrics;
use super::root::{OpenError, PathError, RequestPath, Root};
use super::served::Watch;
use super::tls::CertStore;

/// Health check path on the public listeners (`/health` on the admin listener).
pub const HEALTH_PATH: &str = "/-/health";

/// State shared by every connection.
pub struct Ctx {
    pub root: Root,
    pub cache: CachePolicy,
    pub gzip: GzipCache,
    pub metrics: Metrics,
    pub log: AccessLog,
    /// The served TUF metadata's own claims, re-read when it changes.
    pub served: Watch,
    /// The certificate in use, for its expiry.
    pub certs: Option<Arc<CertStore>>,
}

/// Which listener a connection arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Mirror files over TLS.
    Tls,
    /// Mirror files over plain HTTP (loopback only).
    Plain,
    /// `/metrics` and `/health`.
    Admin,
}

/// What a request handler knows about its connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub listener: Listener,
}

/// Answers one request.
pub async fn handle<B>(ctx: &Arc<Ctx>, conn: ConnInfo, req: Request<B>) -> Response<Body> {
    let start = Instant::now();
    let res = match conn.listener {
        Listener::Admin => admin(ctx, &req),
        Listener::Tls | Listener::Plain => mirror(ctx, &req).await,
    };
    finish(ctx, conn, &req, res, start)
}

async fn mirror<B>(ctx: &Ctx, req: &Request<B>) -> Response<Body> {
    let method = req.method();
    if method != Method::GET && method != Method::HEAD {
        return not_allowed(method);
    }
    let raw_path = req.uri().path();
    if raw_path == HEALTH_PATH {
        return health(ctx, method);
    }
    let path = match RequestPath::parse(raw_path) {
        Ok(p) => p,
        Err(PathError::Hidden) => return status_text(StatusCode::NOT_FOUND, method),
        Err(_) => return status_text(StatusCode::BAD_REQUEST, method),
    };
    let entity = match ctx.root.current().open_file(&path) {
        Ok(e) => e,
        Err(OpenError::NotFound) => return status_text(StatusCode::NOT_FOUND, method),
        Err(OpenError::Forbidden) => return status_text(StatusCode::FORBIDDEN, method),
        Err(OpenError::Io(e)) => {
            tracing::error!(path = path.as_str(), "open failed: {e}");
            return status_text(StatusCode::INTERNAL_SERVER_ERROR, method);
        }
    };
    match files::respond(method, req.headers(), &path, entity, &ctx.cache, &ctx.gzip).await {
        Ok(res) => res,
        Err(e) => {
            tracing::error!(path = path.as_str(), "read failed: {e}");
            status_text(StatusCode::INTERNAL_SERVER_ERROR, method)
        }
    }
}

fn admin<B>(ctx: &Ctx, req: &Request<B>) -> Response<Body> {
    let method = req.method();
    if method != Method::GET && method != Method::HEAD {
        return not_allowed(method);
    }
    match req.uri().path() {
        "/metrics" => {
            let mut text = ctx.metrics.render();
            let not_after = ctx.certs.as_ref().and_then(|c| c.not_after());
            text.push_str(&super::metrics::render_served(
                &ctx.served.status(),
                not_after,
                chrono::Utc::now(),
            ));
            let mut res = Response::new(if method == Method::HEAD {
                Body::empty()
            } else {
                Body::full(text)
            });
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        "/health" | HEALTH_PATH => health(ctx, method),
        _ => status_text(StatusCode::NOT_FOUND, method),
    }
}

/// 200 while the current root directory can be read and the served timestamp and snapshot
/// are present, signed and unexpired; else 503 with the reason.
fn health(ctx: &Ctx, method: &Method) -> Response<Body> {
    let problem = if ctx.root.current().is_readable() {
        ctx.served.status().problem(chrono::Utc::now())
    } else {
        Some("the mirror root cannot be read".to_owned())
    };
    let mut res = match problem {
        None => status_text(StatusCode::OK, method),
        Some(why) => {
            let text = format!("503 service unavailable: {why}\n");
            let len = text.len();
            let mut res = status_text(StatusCode::SERVICE_UNAVAILABLE, method);
            if method != Method::HEAD {
                *res.body_mut() = Body::full(text);
            }
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            res
        }
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn not_allowed(method: &Method) -> Response<Body> {
    let (status, body) = if method == Method::OPTIONS {
        (StatusCode::NO_CONTENT, Body::empty())
    } else {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            Body::full("405 method not allowed\n"),
        )
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    res
}

/// A short text response for a status. Errors are not cached for long: a 404 for `N.root.json`
/// is how a TUF client learns there is no newer root, and must not outlive the next one.
fn status_text(status: StatusCode, method: &Method) -> Response<Body> {
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("").to_ascii_lowercase()
    );
    let len = text.len();
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::full(text)
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status != StatusCode::OK {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    res
}

/// Adds the headers every response carries, and hooks logging to the end of the body.
fn finish<B>(
    ctx: &Arc<Ctx>,
    conn: ConnInfo,
    req: &Request<B>,
    mut res: Response<Body>,
    start: Instant,
) -> Response<Body> {
    res.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let status = res.status().as_u16();
    let ctx2 = Arc::clone(ctx);
    let on_finish: super::body::OnFinish = if ctx.log.enabled() {
        let method = req.method().as_str().to_owned();
        let target = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().to_string(), |pq| pq.as_str().to_owned());
        let header_bytes = |name| {
            req.headers()
                .get(name)
                .map(|v: &HeaderValue| v.as_bytes().to_vec())
        };
        let referer = header_bytes(header::REFERER);
        let user_agent = header_bytes(header::USER_AGENT);
        let version = version_str(req.version());
        Box::new(move |bytes, complete| {
            let elapsed = start.elapsed();
            ctx2.metrics.response(status, bytes, complete, elapsed);
            let logged = ctx2.log.log(&Entry {
                peer: conn.peer,
                method: &method,
                target: &target,
                version,
                status,
                bytes,
                referer: referer.as_deref(),
                user_agent: user_agent.as_deref(),
                elapsed,
                complete,
                tls: conn.listener == Listener::Tls,
            });
            if !logged {
                ctx2.metrics.access_log_dropped();
            }
        })
    } else {
        Box::new(move |bytes, complete| {
            ctx2.metrics
                .response(status, bytes, complete, start.elapsed());
        })
    };
    res.body_mut().on_finish(on_finish);
    res
}

fn version_str(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}
