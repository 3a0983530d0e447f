//! Accept loops and connections: the layer that keeps one bad client from hurting the rest.
//!
//! - at most `--max-connections` at once: beyond that, accept waits and clients queue in the
//!   kernel backlog instead of exhausting file descriptors;
//! - a TLS handshake must finish within `--handshake-timeout`;
//! - a request head must arrive within `--header-timeout` and fit in `--max-header-bytes`
//!   (hyper answers 431 beyond it); the same timer closes idle HTTP/1.1 keep-alive
//!   connections;
//! - a connection on which no byte moves for `--idle-timeout` is closed (HTTP/2 included);
//! - every connection runs in its own task, so an error or a panic ends only that connection.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tokio_rustls::LazyConfigAcceptor;

use super::tls::ServerConfigs;

use super::config::Limits;
use super::handler::{self, ConnInfo, Ctx, Listener};
use super::metrics::ConnEnd;

/// Pending connections the kernel may queue per listener.
const LISTEN_BACKLOG: u32 = 4096;
/// Connections to the admin listener served at once.
const ADMIN_MAX_CONNECTIONS: usize = 16;
/// Concurrent HTTP/2 streams per connection.
const H2_MAX_STREAMS: u32 = 128;

/// Everything an accept loop needs.
pub struct Server {
    pub ctx: Arc<Ctx>,
    pub limits: Limits,
    builder: auto::Builder<TokioExecutor>,
    slots: Arc<Semaphore>,
}

impl Server {
    /// Sets up the HTTP/1.1 + HTTP/2 connection builder with the limits.
    pub fn new(ctx: Arc<Ctx>, limits: Limits) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.max_header_bytes)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(H2_MAX_STREAMS)
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(20));
        Server {
            ctx,
            limits,
            builder,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
        }
    }
}

/// Binds a listening socket with `SO_REUSEADDR` and a deep backlog.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Resolves once `stop` turns true (at once if it already is).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Accepts connections until `stop` turns true, each served in its own task.
pub async fn accept_loop(
    server: Arc<Server>,
    listener: TcpListener,
    kind: Listener,
    tls: Option<ServerConfigs>,
    mut stop: watch::Receiver<bool>,
    graceful: Arc<GracefulShutdown>,
) {
    // The admin listener has its own few slots, so metrics still answer when the mirror is full.
    let slots = match kind {
        Listener::Admin => Arc::new(Semaphore::new(ADMIN_MAX_CONNECTIONS)),
        Listener::Tls | Listener::Plain => server.slots.clone(),
    };
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    server.ctx.metrics.accept_error();
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => return,
        };
        // At the limit, this loop stops accepting until a slot frees: later clients wait in
        // the kernel's backlog rather than being refused.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            () = stopped(&mut stop) => return,
        };
        let _ = tcp.set_nodelay(true);
        let server = server.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            serve_connection(
                &server,
                tcp,
                ConnInfo {
                    peer,
                    listener: kind,
                },
                tls,
                watcher,
            )
            .await;
        });
    }
}

async fn serve_connection(
    server: &Server,
    tcp: TcpStream,
    info: ConnInfo,
    tls: Option<ServerConfigs>,
    watcher: Watcher,
) {
    let metrics = &server.ctx.metrics;
    let _open = metrics.connection();
    let activity = Arc::new(Activity::new());
    let io = Tracked {
        inner: tcp,
        activity: activity.clone(),
    };
    let Some(configs) = tls else {
        return serve_http(server, TokioIo::new(io), info, &activity, watcher).await;
    };
    // The ClientHello is read first, to pick the configuration (cipher preference) for it.
    let handshake = async move {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io).await?;
        let config = configs.for_hello(&start.client_hello());
        start.into_stream(config).await
    };
    match tokio::time::timeout(server.limits.handshake_timeout, handshake).await {
        Ok(Ok(stream)) => serve_http(server, TokioIo::new(stream), info, &activity, watcher).await,
        Ok(Err(e)) => {
            tracing::debug!(peer = %info.peer, "TLS handshake failed: {e}");
            metrics.connection_ended(ConnEnd::HandshakeFailed);
        }
        Err(_) => {
            tracing::debug!(peer = %info.peer, "TLS handshake timed out");
            metrics.connection_ended(ConnEnd::HandshakeTimeout);
        }
    }
}

async fn serve_http<I>(
    server: &Server,
    io: TokioIo<I>,
    info: ConnInfo,
    activity: &Activity,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ctx = server.ctx.clone();
    let service = service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(handler::handle(&ctx, info, req).await) }
    });
    let conn = watcher.watch(server.builder.serve_connection(io, service).into_owned());
    tokio::select! {
        r = conn => if let Err(e) = r {
            tracing::debug!(peer = %info.peer, "connection ended: {e}");
            server.ctx.metrics.connection_ended(ConnEnd::ProtocolError);
        },
        () = idle(activity, server.limits.idle_timeout) => {
            tracing::debug!(peer = %info.peer, "idle timeout");
            server.ctx.metrics.connection_ended(ConnEnd::IdleTimeout);
        }
    }
}

/// Resolves once no byte has moved for `limit`.
async fn idle(activity: &Activity, limit: Duration) {
    loop {
        let deadline = activity.last() + limit;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// When bytes last moved on a connection, in milliseconds since it was accepted.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A TCP stream that records progress in an [`Activity`].
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
