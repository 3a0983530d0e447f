//! Counters for `/metrics`, in the Prometheus text exposition format.
//!
//! A handful of fixed series, so plain atomics are enough; no label sets grow with input.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::served::Status;

/// Status codes counted separately; anything else is counted by class.
const STATUSES: [u16; 14] = [
    200, 206, 304, 400, 403, 404, 405, 408, 412, 413, 416, 431, 500, 503,
];
/// Upper bounds (seconds) of the response time histogram.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Why a connection ended early.
#[derive(Debug, Clone, Copy)]
pub enum ConnEnd {
    /// The TLS handshake failed (not TLS, bad version, alert...).
    HandshakeFailed,
    /// The TLS handshake did not finish in time.
    HandshakeTimeout,
    /// No byte moved for `--idle-timeout`.
    IdleTimeout,
    /// HTTP-level error (malformed request, header timeout, reset).
    ProtocolError,
}

/// The counters. All updates are relaxed atomics.
#[derive(Default)]
pub struct Metrics {
    by_status: [AtomicU64; STATUSES.len()],
    by_class: [AtomicU64; 6],
    bytes_sent: AtomicU64,
    incomplete_responses: AtomicU64,
    duration_buckets: [AtomicU64; BUCKETS.len()],
    duration_count: AtomicU64,
    duration_sum_us: AtomicU64,
    conns_accepted: AtomicU64,
    conns_open: AtomicI64,
    handshake_failed: AtomicU64,
    handshake_timeout: AtomicU64,
    idle_timeout: AtomicU64,
    protocol_error: AtomicU64,
    accept_errors: AtomicU64,
    cert_reloads: AtomicU64,
    cert_reload_failures: AtomicU64,
    root_switches: AtomicU64,
    access_log_dropped: AtomicU64,
}

impl Metrics {
    /// Records one finished response.
    pub fn response(&self, status: u16, bytes: u64, complete: bool, elapsed: Duration) {
        match STATUSES.iter().position(|&s| s == status) {
            Some(i) => self.by_status[i].fetch_add(1, Relaxed),
            None => self.by_class[usize::from(status / 100).min(5)].fetch_add(1, Relaxed),
        };
        self.bytes_sent.fetch_add(bytes, Relaxed);
        if !complete {
            self.incomplete_responses.fetch_add(1, Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            self.duration_buckets[i].fetch_add(1, Relaxed);
        }
        self.duration_count.fetch_add(1, Relaxed);
        self.duration_sum_us.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Relaxed,
        );
    }

    /// A connection was accepted; the returned guard counts it as open until dropped.
    pub fn connection(&self) -> OpenConnection<'_> {
        self.conns_accepted.fetch_add(1, Relaxed);
        self.conns_open.fetch_add(1, Relaxed);
        OpenConnection(self)
    }

    /// A connection ended for `why`.
    pub fn connection_ended(&self, why: ConnEnd) {
        let c = match why {
            ConnEnd::HandshakeFailed => &self.handshake_failed,
            ConnEnd::HandshakeTimeout => &self.handshake_timeout,
            ConnEnd::IdleTimeout => &self.idle_timeout,
            ConnEnd::ProtocolError => &self.protocol_error,
        };
        c.fetch_add(1, Relaxed);
    }

    pub fn accept_error(&self) {
        self.accept_errors.fetch_add(1, Relaxed);
    }

    pub fn cert_reload(&self, ok: bool) {
        let c = if ok {
            &self.cert_reloads
        } else {
            &self.cert_reload_failures
        };
        c.fetch_add(1, Relaxed);
    }

    pub fn root_switched(&self) {
        self.root_switches.fetch_add(1, Relaxed);
    }

    pub fn access_log_dropped(&self) {
        self.access_log_dropped.fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        let g = |a: &AtomicU64| a.load(Relaxed);
        o.push_str("# HELP cpantuf_mirror_responses_total Responses by HTTP status.\n");
        o.push_str("# TYPE cpantuf_mirror_responses_total counter\n");
        for (s, c) in STATUSES.iter().zip(&self.by_status) {
            let _ = writeln!(
                o,
                "cpantuf_mirror_responses_total{{status=\"{s}\"}} {}",
                g(c)
            );
        }
        for (class, c) in self.by_class.iter().enumerate().skip(1) {
            let _ = writeln!(
                o,
                "cpantuf_mirror_responses_total{{status=\"{class}xx_other\"}} {}",
                g(c)
            );
        }
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            "cpantuf_mirror_response_bytes_total",
            "Body bytes sent.",
            g(&self.bytes_sent),
        );
        counter(
            "cpantuf_mirror_incomplete_responses_total",
            "Responses whose body was not sent in full (client gone, timeout, error).",
            g(&self.incomplete_responses),
        );
        counter(
            "cpantuf_mirror_connections_total",
            "Connections accepted.",
            g(&self.conns_accepted),
        );
        counter(
            "cpantuf_mirror_accept_errors_total",
            "Errors from accept(2).",
            g(&self.accept_errors),
        );
        counter(
            "cpantuf_mirror_tls_handshake_failures_total",
            "TLS handshakes that failed.",
            g(&self.handshake_failed),
        );
        counter(
            "cpantuf_mirror_tls_handshake_timeouts_total",
            "TLS handshakes that did not finish in time.",
            g(&self.handshake_timeout),
        );
        counter(
            "cpantuf_mirror_idle_timeouts_total",
            "Connections closed after --idle-timeout without traffic.",
            g(&self.idle_timeout),
        );
        counter(
            "cpantuf_mirror_protocol_errors_total",
            "Connections ended by an HTTP error (malformed request, header timeout, reset).",
            g(&self.protocol_error),
        );
        counter(
            "cpantuf_mirror_cert_reloads_total",
            "Certificate reloads that took effect.",
            g(&self.cert_reloads),
        );
        counter(
            "cpantuf_mirror_cert_reload_failures_total",
            "Certificate reloads refused (the previous certificate stays in use).",
            g(&self.cert_reload_failures),
        );
        counter(
            "cpantuf_mirror_root_switches_total",
            "Times the --root path was found pointing at a new directory.",
            g(&self.root_switches),
        );
        counter(
            "cpantuf_mirror_access_log_dropped_total",
            "Access log lines dropped because the log writer fell behind.",
            g(&self.access_log_dropped),
        );
        let _ = writeln!(
            o,
            "# HELP cpantuf_mirror_connections_open Connections open now.\n\
             # TYPE cpantuf_mirror_connections_open gauge\n\
             cpantuf_mirror_connections_open {}",
            self.conns_open.load(Relaxed)
        );
        o.push_str(
            "# HELP cpantuf_mirror_response_seconds Time from request to last body byte.\n\
             # TYPE cpantuf_mirror_response_seconds histogram\n",
        );
        let mut cumulative = 0;
        for (b, c) in BUCKETS.iter().zip(&self.duration_buckets) {
            cumulative += g(c);
            let _ = writeln!(
                o,
                "cpantuf_mirror_response_seconds_bucket{{le=\"{b}\"}} {cumulative}"
            );
        }
        let count = g(&self.duration_count);
        let _ = writeln!(
            o,
            "cpantuf_mirror_response_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = g(&self.duration_sum_us) as f64 / 1e6;
        let _ = writeln!(o, "cpantuf_mirror_response_seconds_sum {sum}");
        let _ = writeln!(o, "cpantuf_mirror_response_seconds_count {count}");
        o
    }
}

/// The gauges about what is served (not verified: see `served`), and the certificate's
/// expiry, at `now`. A series whose value is unknown (no readable served timestamp, no sync
/// status file, no certificate) is left out rather than given a made-up value.
pub fn render_served(
    status: &Status,
    cert_not_after: Option<SystemTime>,
    now: DateTime<Utc>,
) -> String {
    let mut o = String::with_capacity(1024);
    let mut gauge = |name: &str, help: &str, v: Option<i64>| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        if let Some(v) = v {
            let _ = writeln!(o, "{name} {v}");
        }
    };
    for (role, meta) in [
        ("timestamp", &status.timestamp),
        ("snapshot", &status.snapshot),
    ] {
        let meta = meta.as_ref().ok();
        gauge(
            &format!("cpantuf_mirror_served_{role}_version"),
            &format!("Version the served {role} metadata claims (read, not verified)."),
            meta.map(|m| i64::try_from(m.version).unwrap_or(i64::MAX)),
        );
        gauge(
            &format!("cpantuf_mirror_served_{role}_expiry_seconds"),
            &format!("Seconds until the served {role} metadata expires (negative: expired)."),
            meta.map(|m| (m.expires - now).num_seconds()),
        );
    }
    gauge(
        "cpantuf_mirror_served_metadata_ok",
        "1 if the served timestamp and snapshot are present, signed and unexpired, else 0.",
        Some(i64::from(status.problem(now).is_none())),
    );
    gauge(
        "cpantuf_mirror_last_sync_success_timestamp_seconds",
        "Unix time of the last successful `cpantuf-mirror sync` of the served tree.",
        status.last_sync.map(|t| t.timestamp()),
    );
    let now_sys = SystemTime::from(now);
    gauge(
        "cpantuf_mirror_certificate_expiry_seconds",
        "Seconds until the TLS certificate in use expires (negative: expired).",
        cert_not_after.map(|t| match t.duration_since(now_sys) {
            Ok(left) => i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            Err(past) => -i64::try_from(past.duration().as_secs()).unwrap_or(i64::MAX),
        }),
    );
    o
}

/// Counts a connection as open while alive.
pub struct OpenConnection<'a>(&'a Metrics);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.conns_open.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::served::ServedMeta;

    #[test]
    fn served_gauges_count_down_to_expiry() {
        let now = Utc::now();
        let status = Status {
            timestamp: Ok(ServedMeta {
                version: 42,
                expires: now + chrono::Duration::seconds(3600),
            }),
            snapshot: Ok(ServedMeta {
                version: 7,
                expires: now - chrono::Duration::seconds(5),
            }),
            last_sync: Some(now),
        };
        let cert = SystemTime::from(now) + Duration::from_secs(86_400);
        let text = render_served(&status, Some(cert), now);
        assert!(
            text.contains("cpantuf_mirror_served_timestamp_version 42\n"),
            "{text}"
        );
        assert!(text.contains("cpantuf_mirror_served_timestamp_expiry_seconds 3600\n"));
        assert!(text.contains("cpantuf_mirror_served_snapshot_version 7\n"));
        assert!(text.contains("cpantuf_mirror_served_snapshot_expiry_seconds -5\n"));
        assert!(text.contains("cpantuf_mirror_served_metadata_ok 0\n"));
        assert!(text.contains("cpantuf_mirror_certificate_expiry_seconds 86400\n"));
        let ts = format!(
            "cpantuf_mirror_last_sync_success_timestamp_seconds {}\n",
            now.timestamp()
        );
        assert!(text.contains(&ts));
    }

    #[test]
    fn unknown_values_are_left_out() {
        let status = Status {
            timestamp: Err("tuf/timestamp.json is missing".into()),
            snapshot: Err("not read".into()),
            last_sync: None,
        };
        let text = render_served(&status, None, Utc::now());
        let has_sample = |name: &str| text.lines().any(|l| l.starts_with(&format!("{name} ")));
        assert!(!has_sample("cpantuf_mirror_served_timestamp_version"));
        assert!(!has_sample("cpantuf_mirror_certificate_expiry_seconds"));
        assert!(!has_sample(
            "cpantuf_mirror_last_sync_success_timestamp_seconds"
        ));
        assert!(text.contains("cpantuf_mirror_served_metadata_ok 0\n"));
    }

    #[test]
    fn exposition_has_every_series() {
        let m = Metrics::default();
        m.response(200, 10, true, Duration::from_micros(300));
        m.response(418, 0, true, Duration::from_secs(9));
        m.response(304, 0, false, Duration::from_millis(3));
        {
            let _c = m.connection();
            assert!(m.render().contains("cpantuf_mirror_connections_open 1\n"));
        }
        let text = m.render();
        assert!(text.contains("cpantuf_mirror_responses_total{status=\"200\"} 1\n"));
        assert!(text.contains("cpantuf_mirror_responses_total{status=\"4xx_other\"} 1\n"));
        assert!(text.contains("cpantuf_mirror_response_bytes_total 10\n"));
        assert!(text.contains("cpantuf_mirror_incomplete_responses_total 1\n"));
        assert!(text.contains("cpantuf_mirror_response_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("cpantuf_mirror_response_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("cpantuf_mirror_response_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("cpantuf_mirror_connections_open 0\n"));
        assert!(text.contains("cpantuf_mirror_connections_total 1\n"));
    }
}
