//! Running a CPAN client (cpanm, carton, CPAN.pm) through a temporary local
//! verifying mirror so that a refusal is final:
//!
//! * the client's environment has no proxy but the verifying mirror itself
//!   (a sinkhole for any other host, see `local_mirror`), and `no_proxy`
//!   for 127.0.0.1, so its requests for the mirror go straight to it;
//! * cpanm's (and carton's Menlo's) cached copy of the mirror's index is
//!   removed before and after the run: a refused index must not be
//!   replaced by a copy kept from an earlier run on the same port;
//! * the report lists what was served (each verified) and ends with one
//!   line naming the first refusal, with a non-zero exit status.

use super::Ctx;
use anyhow::Result;
use cpantuf_client::local_mirror::{sanitize, LocalMirror, Report};
use std::path::PathBuf;
use std::process::{Command, ExitStatus};

/// The proxy variables downloaders read (curl, wget, LWP, HTTP::Tiny,
/// git, CPAN.pm): each is pointed at the verifying mirror.
const PROXY_VARS: &[&str] = &["http_proxy", "https_proxy", "ftp_proxy", "all_proxy"];

/// Confines `cmd` to the verifying mirror at `url`: every proxy variable
/// of the user's (any case, any protocol) is removed, then each is set to
/// the mirror, which refuses anything that is not a request for itself;
/// `no_proxy` exempts 127.0.0.1, where the mirror listens.
pub fn confine(cmd: &mut Command, url: &str) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().to_ascii_lowercase().ends_with("_proxy") {
            cmd.env_remove(&k);
        }
    }
    for v in PROXY_VARS {
        cmd.env(v, url).env(v.to_ascii_uppercase(), url);
    }
    cmd.env("no_proxy", "127.0.0.1")
        .env("NO_PROXY", "127.0.0.1");
}

/// Where cpanm (and Menlo, carton's cpanm) caches the index of mirror
/// `url`: `$PERL_CPANM_HOME/sources/<url with runs of other characters
/// as %>` (App::cpanminus::script::source_for, without the trailing `/`).
pub fn cpanm_index_cache(url: &str) -> Option<PathBuf> {
    let home = match std::env::var_os("PERL_CPANM_HOME") {
        Some(h) => PathBuf::from(h),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cpanm"),
    };
    let mut name = String::new();
    for c in url.trim_end_matches('/').chars() {
        if c.is_alphanumeric() || "_.-".contains(c) {
            name.push(c);
        } else if !name.ends_with('%') {
            name.push('%');
        }
    }
    Some(home.join("sources").join(name))
}

fn forget_cpanm_index(url: &str) {
    if let Some(dir) = cpanm_index_cache(url) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Runs `cmd` (already confined) with cpanm's index cache for `mirror`
/// cleared, then stops the mirror and reports. Returns the exit status.
pub fn run_client(ctx: &Ctx, mirror: LocalMirror, client: &str, mut cmd: Command) -> Result<i32> {
    let url = mirror.url();
    forget_cpanm_index(&url);
    let status = cmd.status();
    forget_cpanm_index(&url);
    let report = mirror.stop();
    let status =
        anyhow::Context::with_context(status, || format!("running {client} (is it installed?)"))?;
    Ok(finish(ctx, client, status, &report))
}

/// Prints the report; the last line says what decided the outcome.
fn finish(ctx: &Ctx, client: &str, status: ExitStatus, report: &Report) -> i32 {
    if !ctx.quiet {
        eprintln!(
            "cpantuf: {} file(s) served, each verified before the first byte was sent:",
            report.served.len()
        );
        for s in &report.served {
            let sha = s
                .sha256
                .as_ref()
                .map(|h| format!(" sha256 {}", &h[..16.min(h.len())]))
                .unwrap_or_default();
            eprintln!("  {}  [{}]{sha}", sanitize(&s.path), sanitize(&s.role));
        }
    }
    let (refused, not_signed): (Vec<_>, Vec<_>) =
        report.refused.iter().partition(|r| r.is_refusal());
    if !status.success() {
        // A client that failed may have failed for want of these.
        for r in &not_signed {
            eprintln!("cpantuf: not served: {}: {}", r.path, r.why);
        }
    }
    if let Some((first, rest)) = refused.split_first() {
        for r in rest.iter().rev() {
            eprintln!("cpantuf: also refused {}: {}", r.path, r.why);
        }
        eprintln!("cpantuf: refused {}: {}", first.path, first.why);
        return 1;
    }
    if !status.success() {
        let code = status
            .code()
            .map_or("a signal".to_owned(), |c| format!("exit status {c}"));
        eprintln!("cpantuf: {client} failed ({code}); cpantuf refused nothing it was asked for");
        return status.code().filter(|c| *c != 0).unwrap_or(1);
    }
    0
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpanm_index_cache_is_named_as_cpanm_names_it() {
        let p = super::cpanm_index_cache("http://127.0.0.1:8231/");
        let name = p
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(name, "http%127.0.0.1%8231");
    }
}
