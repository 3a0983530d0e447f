//! `status`: what expires when.

use anyhow::Result;
use cpantuf_repo_signer::audit;
use cpantuf_repo_signer::config::{hours, load_signer, SignerConfig};
use cpantuf_repo_signer::mirror::Mirror;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The signer configuration (for the mirror location).
    #[arg(
        long,
        short,
        env = "CPANTUF_SIGN_CONFIG",
        value_name = "FILE",
        conflicts_with = "mirror"
    )]
    config: Option<PathBuf>,
    /// The mirror directory, instead of --config.
    #[arg(long, value_name = "DIR", required_unless_present = "config")]
    mirror: Option<PathBuf>,
    /// Exit 4 when an online role (timestamp, snapshot, index, authors, ...)
    /// expires within this time (e.g. 12h, 2days).
    #[arg(long, value_name = "DURATION", default_value = "12h", value_parser = humantime::parse_duration)]
    warn_within: std::time::Duration,
    /// The same for the offline roles, root and targets, whose renewal needs a
    /// ceremony.
    #[arg(long, value_name = "DURATION", default_value = "30days", value_parser = humantime::parse_duration)]
    warn_offline_within: std::time::Duration,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let cfg = a.config.as_deref().map(SignerConfig::load).transpose()?;
    let dir = match (a.mirror, &cfg) {
        (Some(m), _) => m,
        (None, Some(c)) => c.mirror.clone(),
        (None, None) => unreachable!("clap requires one"),
    };
    let mirror = Mirror::open(&dir)?;
    let now = chrono::Utc::now();
    match &cfg {
        Some(cfg) => warn_claimed_expiry(&mirror, cfg, now)?,
        None => eprintln!("note: claimed authors' expiry is checked only with --config"),
    }
    println!(
        "{:<14} {:>8} {:>7}  {:<20}  left",
        "role", "version", "roles", "expires (earliest)"
    );
    let mut due = 0;
    for l in audit::status(&mirror)? {
        let window = if matches!(l.role.as_str(), "root" | "targets") {
            a.warn_offline_within
        } else {
            a.warn_within
        };
        let left = l.expires - now;
        let soon = left.to_std().map_or(true, |left| left <= window);
        due += usize::from(soon);
        println!(
            "{:<14} {:>8} {:>7}  {:<20}  {}{}",
            l.role,
            l.version,
            l.count,
            cpantuf_core::metadata::expiry::format(&l.expires),
            time_left(left),
            if soon { "  <- renew" } else { "" }
        );
    }
    if due > 0 {
        eprintln!("cpantuf-sign: {due} role(s) expired or expire within the warning window");
        return Ok(ExitCode::from(4));
    }
    Ok(ExitCode::SUCCESS)
}

fn time_left(left: chrono::TimeDelta) -> String {
    if left.num_seconds() <= 0 {
        "EXPIRED".to_owned()
    } else if left.num_hours() >= 48 {
        format!("{} days", left.num_days())
    } else {
        format!("{} h {} min", left.num_hours(), left.num_minutes() % 60)
    }
}

/// One warning line for each claimed author's role that expires within
/// the configured window, or has expired (the author chose the expiry, and
/// only the author can renew it), and one line for each upload of a claimed
/// author held until the author signs it. PAUSE's key tells claimed authors
/// from the others.
fn warn_claimed_expiry(
    mirror: &Mirror,
    cfg: &SignerConfig,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let authors_key = load_signer(&cfg.online_keys.authors, None)?.keyid().clone();
    let window = hours(cfg.expiry.claimed_author_warn_hours);
    for w in audit::claimed_expiries(mirror, &authors_key, now, window)? {
        eprintln!("warning: {w}");
    }
    for h in audit::held_uploads(mirror, &authors_key)? {
        eprintln!("held: {h}");
    }
    Ok(())
}
