//! `cpantuf init`: the trust bootstrap.

use super::Ctx;
use anyhow::{bail, Context, Result};
use cpantuf_client::fetcher::Fetcher;
use cpantuf_client::session::{initialise, mirror_base, Config, Session};
use cpantuf_core::target::sha256_hex;
use cpantuf_core::trusted::root_matches_pin;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("anchor").required(true).args(["root", "root_sha256"])))]
pub struct Args {
    /// Mirror URLs (https://, or http:// to 127.0.0.1 for tests), tried in order.
    #[arg(required = true, value_name = "URL")]
    mirrors: Vec<String>,
    /// The repository's root metadata, obtained out of band (shipped or published by PAUSE).
    #[arg(long, value_name = "FILE")]
    root: Option<PathBuf>,
    /// Instead of a file: fetch the root from the first mirror and trust it
    /// only if its sha256 is exactly this.
    #[arg(long, value_name = "HEX")]
    root_sha256: Option<String>,
    /// Replace the trust this home already has (its root and mirrors).
    #[arg(long)]
    force: bool,
}

/// No root on the mirror has the pinned hash: nothing is trusted.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PinMismatch(String);

/// A mirror URL as given to `init`: with a scheme, https:// unless the host
/// is a loopback address (a test mirror), and nothing after the path.
fn checked_mirror_url(given: &str) -> Result<String> {
    let url = url::Url::parse(given.trim()).map_err(|e| {
        anyhow::anyhow!(
            "mirror URL {given:?}: {e} (give it in full, like https://cpan.example.org/)"
        )
    })?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => bail!(
            "mirror URL {given}: use https:// (http:// is accepted only for a test mirror on \
             127.0.0.1 or localhost)"
        ),
        other => bail!("mirror URL {given}: the scheme {other}:// is not supported; use https://"),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        bail!("mirror URL {given}: no query, fragment or user name, please");
    }
    Ok(mirror_base(url.as_str()))
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let mirrors = args
        .mirrors
        .iter()
        .map(|m| checked_mirror_url(m))
        .collect::<Result<Vec<_>>>()?;
    let existing = ctx.home.join("config.json");
    if existing.exists() && !args.force {
        bail!(
            "{} already trusts a repository ({}): give --force to replace that trust",
            ctx.home.display(),
            existing.display()
        );
    }
    let bytes = match (&args.root, &args.root_sha256) {
        (Some(file), _) => {
            std::fs::read(file).with_context(|| format!("reading {}", file.display()))?
        }
        (None, Some(pin)) => fetch_pinned(ctx, &mirrors[0], pin)?,
        (None, None) => bail!("give --root FILE or --root-sha256 HEX"),
    };
    // Stored absolute: later commands run from other directories.
    let ca_cert = match &ctx.fetch.ca_cert {
        Some(ca) => {
            Some(std::fs::canonicalize(ca).with_context(|| format!("--ca-cert {}", ca.display()))?)
        }
        None => None,
    };
    let config = Config { mirrors, ca_cert };
    check_against_mirror(ctx, &config, &bytes)?;
    initialise(&ctx.home, &config, &bytes)?;
    if !ctx.quiet {
        println!(
            "cpantuf: trusting root sha256 {} for {} mirror(s); home {}",
            sha256_hex(&bytes),
            config.mirrors.len(),
            ctx.home.display()
        );
    }
    Ok(0)
}

/// Before anything is written: a refresh from the mirrors under the new
/// root, in a scratch home. A mirror whose metadata that root does not sign
/// (another repository's root) is refused; one that cannot be reached, or
/// whose metadata is refused for another reason, is only noted, since
/// trusting a root does not depend on a mirror being up today.
fn check_against_mirror(ctx: &Ctx, config: &Config, root: &[u8]) -> Result<()> {
    let scratch = tempfile::tempdir().context("creating a scratch home to check the mirror")?;
    initialise(scratch.path(), config, root)?;
    let mut fetch = ctx.fetch.clone();
    fetch.ca_cert = config.ca_cert.clone();
    let mut session = Session::open(scratch.path(), fetch)?;
    match session.refresh() {
        Ok(()) => Ok(()),
        Err(e) if e.to_string().contains("serves another repository") => {
            Err(e).context("this root does not belong to the mirror; nothing was trusted")
        }
        Err(e) => {
            if !ctx.quiet {
                eprintln!(
                    "cpantuf: note: could not check the root against the mirror: {}",
                    cpantuf_client::report::one_line(&e)
                );
            }
            Ok(())
        }
    }
}

fn fetch_pinned(ctx: &Ctx, mirror: &str, pin: &str) -> Result<Vec<u8>> {
    let pin = pin.trim().to_ascii_lowercase();
    if pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("--root-sha256 must be 64 hex digits");
    }
    let fetcher = Fetcher::new(ctx.fetch.clone())?;
    let base = cpantuf_client::urls::metadata_base(mirror.trim());
    let mut seen = Vec::new();
    for name in ["root.json", "1.root.json"] {
        let url = format!("{base}{name}");
        match fetcher.fetch_bytes(&url, 512_000) {
            Ok(bytes) if root_matches_pin(&bytes, &pin) => return Ok(bytes),
            Ok(bytes) => seen.push(format!("{url} has sha256 {}", sha256_hex(&bytes))),
            Err(e) => seen.push(format!("{url}: {e}")),
        }
    }
    Err(PinMismatch(format!(
        "no root on {mirror} matches the pinned sha256 {pin}: refusing to trust an unpinned root\n  {}",
        seen.join("\n  ")
    ))
    .into())
}
