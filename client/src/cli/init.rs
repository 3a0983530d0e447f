//! `cpantuf init`: the trust bootstrap.

use super::Ctx;
use anyhow::{bail, Context, Result};
use cpantuf_client::fetcher::Fetcher;
use cpantuf_client::session::{initialise, mirror_base, Config};
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
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let bytes = match (&args.root, &args.root_sha256) {
        (Some(file), _) => {
            std::fs::read(file).with_context(|| format!("reading {}", file.display()))?
        }
        (None, Some(pin)) => fetch_pinned(ctx, &args.mirrors[0], pin)?,
        (None, None) => bail!("give --root FILE or --root-sha256 HEX"),
    };
    // Stored absolute: later commands run from other directories.
    let ca_cert = match &ctx.fetch.ca_cert {
        Some(ca) => {
            Some(std::fs::canonicalize(ca).with_context(|| format!("--ca-cert {}", ca.display()))?)
        }
        None => None,
    };
    let config = Config {
        mirrors: args.mirrors.iter().map(|m| mirror_base(m)).collect(),
        ca_cert,
    };
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
    bail!(
        "no root on {mirror} matches the pinned sha256 {pin}: refusing to trust an unpinned root\n  {}",
        seen.join("\n  ")
    )
}
