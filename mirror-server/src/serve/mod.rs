//! `cpantuf-mirror serve`: static files of a mirror tree over HTTPS (HTTP/1.1 and HTTP/2).
//!
//! Layout of this module, from the outside in:
//! - [`config`]: the command line, checked into a [`config::Config`]; [`config_file`]: the
//!   same options from a TOML file;
//! - [`conn`]: accept loops, connection limits and timeouts;
//! - [`tls`]: the certificate, reloaded without dropping connections;
//! - [`handler`]: routing, error responses, the health and metrics endpoints;
//! - [`root`]: request paths and the only way to open a file under the root;
//! - [`entity`]: one version of one file, and the small-file cache;
//! - [`files`]: conditional GET, ranges, gzip and caching headers for one file;
//! - [`served`]: what the served TUF metadata claims (version, expiry), for health and metrics;
//! - [`gzip`], [`body`], [`metrics`], [`access_log`]: the pieces those use.
//!
//! The server holds no keys and checks no signatures: TUF clients verify what they download,
//! so a mirror only has to serve the bytes it was given, quickly and without falling over.

mod access_log;
mod body;
mod config;
mod config_file;
mod conn;
mod entity;
mod files;
mod gzip;
mod handler;
mod metrics;
mod root;
mod served;
mod tls;

use std::sync::Arc;

use anyhow::Context as _;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

pub use config::Args;
use config::Config;
use handler::{Ctx, Listener};

/// Builds the configuration, opens the root and loads the certificate as `serve` would, and
/// describes the result (for `check-config`); warns as `serve` would at start.
pub fn check(args: Args) -> anyhow::Result<String> {
    let config = Config::try_from(args)?;
    root::Root::open(&config.root, config.file_cache)?;
    let certs = match &config.tls {
        Some(files) => Some(tls::CertStore::load(&files.cert, &files.key)?),
        None => None,
    };
    let served = served::Watch::new(&config.root, config.sync_status.clone());
    let mut text = config.describe();
    for w in startup_warnings(&served.status(), certs.as_ref()) {
        text.push_str(&format!("warning: {w}\n"));
    }
    Ok(text)
}

/// What an administrator should hear about before clients notice: served metadata that
/// clients would refuse, and a certificate that has expired or expires within a week.
fn startup_warnings(status: &served::Status, certs: Option<&tls::CertStore>) -> Vec<String> {
    let now = chrono::Utc::now();
    let mut out: Vec<String> = status.problem(now).into_iter().collect();
    if let Some(not_after) = certs.and_then(|c| c.not_after()) {
        let not_after = chrono::DateTime::<chrono::Utc>::from(not_after);
        if not_after <= now {
            out.push(format!(
                "the TLS certificate expired at {}",
                not_after.to_rfc3339()
            ));
        } else if not_after - now < chrono::Duration::days(7) {
            out.push(format!(
                "the TLS certificate expires soon, at {}",
                not_after.to_rfc3339()
            ));
        }
    }
    out
}

/// Runs the server until SIGTERM or SIGINT, then drains connections.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::try_from(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .thread_name("serve")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(config));
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let root = root::Root::open(&config.root, config.file_cache)?;
    let certs = match &config.tls {
        Some(files) => Some(Arc::new(tls::CertStore::load(&files.cert, &files.key)?)),
        None => None,
    };
    let served = served::Watch::new(&config.root, config.sync_status.clone());
    for w in startup_warnings(&served.status(), certs.as_deref()) {
        tracing::warn!("{w}");
    }
    let ctx = Arc::new(Ctx {
        root,
        cache: config.cache,
        gzip: gzip::GzipCache::new(config.gzip_cache_bytes),
        metrics: metrics::Metrics::default(),
        log: access_log::AccessLog::start(&config.access_log, config.access_log_format)?,
        served,
        certs: certs.clone(),
    });
    let server = Arc::new(conn::Server::new(ctx.clone(), config.limits));
    let (stop_tx, stop_rx) = watch::channel(false);
    let graceful = Arc::new(GracefulShutdown::new());

    let tls_configs = match &certs {
        Some(store) => Some(store.server_configs()?),
        None => None,
    };
    let mut listeners = Vec::new();
    for addr in &config.tls_listen {
        listeners.push((*addr, Listener::Tls, tls_configs.clone(), "https"));
    }
    for addr in &config.http_listen {
        listeners.push((*addr, Listener::Plain, None, "http"));
    }
    if let Some(addr) = config.admin_listen {
        listeners.push((addr, Listener::Admin, None, "admin"));
    }
    // Signal handlers go in before any port is open: a SIGHUP sent as soon
    // as the port answers must reload, never hit the default action (exit).
    let signals = Signals {
        term: signal(SignalKind::terminate()).context("SIGTERM handler")?,
        int: signal(SignalKind::interrupt()).context("SIGINT handler")?,
        hup: signal(SignalKind::hangup()).context("SIGHUP handler")?,
    };
    let mut loops = Vec::new();
    for (addr, kind, tls, scheme) in listeners {
        let listener = conn::bind(addr).with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr()?;
        tracing::info!("listening: {scheme} {local}");
        loops.push(tokio::spawn(conn::accept_loop(
            server.clone(),
            listener,
            kind,
            tls,
            stop_rx.clone(),
            graceful.clone(),
        )));
    }
    tracing::info!(root = %config.root.display(), "serving");

    wait_for_stop(&ctx, certs.as_deref(), &config, signals).await?;

    let _ = stop_tx.send(true);
    for l in loops {
        let _ = l.await;
    }
    tracing::info!(
        "stopping: waiting up to {:?} for requests in flight",
        config.shutdown_timeout
    );
    // The accept loops have returned their handles, so this is the last one.
    let graceful = Arc::try_unwrap(graceful).map_err(|_| anyhow::anyhow!("accept loop leaked"))?;
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(config.shutdown_timeout) => {
            tracing::warn!("shutdown timeout: closing the remaining connections");
        }
    }
    Ok(())
}

/// The signal streams, created before the listeners open.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

/// Handles signals and periodic checks until SIGTERM or SIGINT.
async fn wait_for_stop(
    ctx: &Ctx,
    certs: Option<&tls::CertStore>,
    config: &Config,
    signals: Signals,
) -> anyhow::Result<()> {
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = signals;
    let mut tick = tokio::time::interval(config.reload_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading certificate, root and access log");
                reload(ctx, certs, true);
                ctx.log.reopen();
            }
            _ = tick.tick() => reload(ctx, certs, false),
        }
    }
}

fn reload(ctx: &Ctx, certs: Option<&tls::CertStore>, force: bool) {
    if let Some(store) = certs {
        match store.reload(force) {
            Ok(true) => {
                ctx.metrics.cert_reload(true);
                tracing::info!("certificate reloaded");
            }
            Ok(false) => {}
            Err(e) => {
                ctx.metrics.cert_reload(false);
                tracing::error!("certificate reload refused, keeping the previous one: {e:#}");
            }
        }
    }
    match ctx.root.refresh() {
        Ok(true) => {
            ctx.metrics.root_switched();
            tracing::info!(root = %ctx.root.path().display(), "root now names a new directory");
        }
        Ok(false) => {}
        Err(e) => tracing::error!(root = %ctx.root.path().display(), "root check failed: {e}"),
    }
    let before = ctx.served.status().problem(chrono::Utc::now());
    ctx.served.refresh(force);
    let after = ctx.served.status().problem(chrono::Utc::now());
    if after != before {
        match after {
            Some(why) => tracing::warn!("health now fails: {why}"),
            None => tracing::info!("health ok again: served metadata present and unexpired"),
        }
    }
}
