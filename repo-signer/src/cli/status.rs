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
    for l in audit::status(&mirror)? {
        let left = l.expires - now;
        let left = if left.num_seconds() <= 0 {
            "EXPIRED".to_owned()
        } else if left.num_hours() >= 48 {
            format!("{} days", left.num_days())
        } else {
            format!("{} h {} min", left.num_hours(), left.num_minutes() % 60)
        };
        println!(
            "{:<14} {:>8} {:>7}  {:<20}  {left}",
            l.role,
            l.version,
            l.count,
            cpantuf_core::metadata::expiry::format(&l.expires)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One warning line for each claimed author's role that expires within
/// the configured window, or has expired (the author chose the expiry, and
/// only the author can renew it). PAUSE's key tells claimed authors from
/// the others.
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
    Ok(())
}
