//! The access log: one line per response, in the combined log format plus the response time,
//! the protocol and whether the body was sent in full; or, with `--access-log-format json`, one
//! JSON object per line with the same fields.
//!
//! Lines are formatted on the request's thread and handed to a writer thread over a bounded
//! channel. If the writer falls behind (a stalled disk), lines are dropped and counted in
//! `cpantuf_mirror_access_log_dropped_total`, never queued without limit nor allowed to stall
//! serving. Request fields come from the client and are escaped: a crafted path or user agent
//! cannot forge log lines.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use super::config::{AccessLogFormat, AccessLogTarget};

/// Lines waiting for the writer before new ones are dropped.
const QUEUE_LINES: usize = 64 * 1024;

enum Msg {
    Line(String),
    Reopen,
}

/// Handle for sending lines; cheap to share.
pub struct AccessLog {
    tx: Option<SyncSender<Msg>>,
    format: AccessLogFormat,
}

/// One finished response, as the log needs it.
pub struct Entry<'a> {
    pub peer: std::net::SocketAddr,
    pub method: &'a str,
    pub target: &'a str,
    pub version: &'static str,
    pub status: u16,
    pub bytes: u64,
    pub referer: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub elapsed: Duration,
    pub complete: bool,
    pub tls: bool,
}

impl AccessLog {
    /// Starts the writer thread (if the log is not off).
    pub fn start(target: &AccessLogTarget, format: AccessLogFormat) -> anyhow::Result<Self> {
        let sink = match target {
            AccessLogTarget::Off => return Ok(AccessLog { tx: None, format }),
            AccessLogTarget::Stdout => Sink::Stdout,
            AccessLogTarget::File(path) => Sink::File(path.clone()),
        };
        let out = sink.open()?;
        let (tx, rx) = sync_channel(QUEUE_LINES);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer(sink, out, rx))?;
        Ok(AccessLog {
            tx: Some(tx),
            format,
        })
    }

    /// True if lines are being written at all.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues one line; returns false if it had to be dropped.
    pub fn log(&self, e: &Entry<'_>) -> bool {
        let Some(tx) = &self.tx else { return true };
        let line = match self.format {
            AccessLogFormat::Combined => combined_line(e),
            AccessLogFormat::Json => json_line(e),
        };
        match tx.try_send(Msg::Line(line)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Asks the writer to reopen its file (after log rotation).
    pub fn reopen(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(Msg::Reopen);
        }
    }
}

/// The combined log format, then response time, protocol and completeness.
fn combined_line(e: &Entry<'_>) -> String {
    let mut line = String::with_capacity(256);
    let now = chrono::Utc::now().format("%d/%b/%Y:%H:%M:%S %z");
    let _ = write!(line, "{} - - [{now}] \"", e.peer.ip());
    escape(&mut line, e.method.as_bytes());
    line.push(' ');
    escape(&mut line, e.target.as_bytes());
    let _ = write!(line, " {}\" {} {} \"", e.version, e.status, e.bytes);
    escape(&mut line, e.referer.unwrap_or(b"-"));
    line.push_str("\" \"");
    escape(&mut line, e.user_agent.unwrap_or(b"-"));
    let _ = writeln!(
        line,
        "\" {:.6} {} {}",
        e.elapsed.as_secs_f64(),
        if e.tls { "tls" } else { "plain" },
        if e.complete { "complete" } else { "incomplete" },
    );
    line
}

/// One JSON object and a newline. serde_json escapes control characters, so a crafted path
/// or user agent cannot start a new line; bytes that are not UTF-8 become U+FFFD.
fn json_line(e: &Entry<'_>) -> String {
    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
    let value = serde_json::json!({
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "remote_addr": e.peer.ip().to_string(),
        "method": e.method,
        "target": e.target,
        "protocol": e.version,
        "status": e.status,
        "bytes": e.bytes,
        "referer": text(e.referer),
        "user_agent": text(e.user_agent),
        "duration_seconds": e.elapsed.as_secs_f64(),
        "tls": e.tls,
        "complete": e.complete,
    });
    let mut line = value.to_string();
    line.push('\n');
    line
}

/// Printable ASCII passes; `"`, `\` and everything else become `\xHH`.
fn escape(out: &mut String, raw: &[u8]) {
    for &b in raw {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
}

/// Where the writer thread writes: stdout, or a file it can reopen.
enum Sink {
    Stdout,
    File(PathBuf),
}

impl Sink {
    fn open(&self) -> anyhow::Result<BufWriter<Box<dyn std::io::Write + Send>>> {
        let w: Box<dyn std::io::Write + Send> = match self {
            Sink::Stdout => Box::new(std::io::stdout()),
            Sink::File(path) => Box::new(open(path)?),
        };
        Ok(BufWriter::with_capacity(64 * 1024, w))
    }
}

fn open(path: &PathBuf) -> anyhow::Result<File> {
    use anyhow::Context as _;
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening access log {}", path.display()))
}

fn writer(sink: Sink, mut out: BufWriter<Box<dyn std::io::Write + Send>>, rx: Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Line(line) => {
                    let _ = out.write_all(line.as_bytes());
                }
                Msg::Reopen => {
                    let _ = out.flush();
                    match sink.open() {
                        Ok(w) => out = w,
                        Err(e) => tracing::error!("access log: {e:#}"),
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        // Flush whenever the queue runs dry: lines appear promptly, and under load writes are
        // still batched.
        if let Err(e) = out.flush() {
            tracing::error!("access log write failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_parse_and_cannot_be_forged() {
        let e = Entry {
            peer: "192.0.2.7:5555".parse().unwrap(),
            method: "GET",
            target: "/x\n{\"status\":200}",
            version: "HTTP/1.1",
            status: 404,
            bytes: 12,
            referer: None,
            user_agent: Some(b"ua\xff\n"),
            elapsed: Duration::from_millis(3),
            complete: true,
            tls: true,
        };
        let line = json_line(&e);
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["status"], 404);
        assert_eq!(v["remote_addr"], "192.0.2.7");
        assert_eq!(v["target"], "/x\n{\"status\":200}");
        assert_eq!(v["user_agent"], "ua\u{fffd}\n");
        assert_eq!(v["referer"], serde_json::Value::Null);
        assert_eq!(v["tls"], true);
    }

    #[test]
    fn client_strings_cannot_forge_lines() {
        let mut s = String::new();
        escape(&mut s, b"GET /x\" 200 0 \"-\" \"-\"\n1.2.3.4 - - \xff\\");
        assert_eq!(
            s,
            "GET /x\\x22 200 0 \\x22-\\x22 \\x22-\\x22\\x0A1.2.3.4 - - \\xFF\\x5C"
        );
        assert!(!s.contains('\n') && !s.contains('"'));
    }
}
