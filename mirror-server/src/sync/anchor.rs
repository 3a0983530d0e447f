//! The trust anchor of a first sync: the `--trusted-root` file (checked against
//! `--root-sha256` when both are given), or, with the pin alone, the upstream's own
//! `tuf/root.json` or `tuf/1.root.json`, trusted only if its SHA-256 is exactly the pin (as
//! `cpantuf init --root-sha256` does).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use cpantuf_client::fetcher::Fetcher;
use cpantuf_client::urls::metadata_base;
use cpantuf_core::target::sha256_hex;
use cpantuf_core::trusted::root_matches_pin;

/// Largest root document fetched by pin.
const MAX_ROOT_BYTES: u64 = 512_000;

/// Where the anchor comes from.
pub enum Anchor<'a> {
    /// A local file, optionally pinned.
    File(&'a Path, Option<&'a str>),
    /// The upstream's root, pinned.
    Pinned(&'a str),
}

impl<'a> Anchor<'a> {
    /// The anchor the command line names.
    pub fn of(file: Option<&'a PathBuf>, pin: Option<&'a str>) -> anyhow::Result<Anchor<'a>> {
        match (file, pin) {
            (Some(f), pin) => Ok(Anchor::File(f, pin)),
            (None, Some(pin)) => Ok(Anchor::Pinned(pin)),
            (None, None) => bail!("the first sync needs --trusted-root FILE or --root-sha256 HEX"),
        }
    }

    /// The anchor's bytes, and a description of where they came from.
    pub fn load(&self, fetcher: &Fetcher, upstream: &str) -> anyhow::Result<(Vec<u8>, String)> {
        match *self {
            Anchor::File(path, pin) => Ok((read_file(path, pin)?, path.display().to_string())),
            Anchor::Pinned(pin) => fetch_pinned(fetcher, upstream, pin),
        }
    }
}

fn read_file(path: &Path, pin: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading the root {}", path.display()))?;
    if let Some(pin) = pin.filter(|pin| !root_matches_pin(&bytes, pin)) {
        bail!(
            "trusted root {} has sha256 {}, not the pinned {pin}: refusing it \
             (a wrong or tampered file, or a wrong pin)",
            path.display(),
            sha256_hex(&bytes)
        );
    }
    Ok(bytes)
}

fn fetch_pinned(fetcher: &Fetcher, upstream: &str, pin: &str) -> anyhow::Result<(Vec<u8>, String)> {
    let base = metadata_base(upstream);
    let mut seen = Vec::new();
    for name in ["root.json", "1.root.json"] {
        let url = format!("{base}{name}");
        match fetcher.fetch_bytes(&url, MAX_ROOT_BYTES) {
            Ok(bytes) if root_matches_pin(&bytes, pin) => return Ok((bytes, url)),
            Ok(bytes) => seen.push(format!("{url} has sha256 {}", sha256_hex(&bytes))),
            Err(e) => seen.push(format!("{url}: {e}")),
        }
    }
    bail!(
        "no root on the upstream has the pinned sha256 {pin} ({}): refusing to start \
         (a wrong pin, or a mirror serving another root)",
        seen.join("; ")
    )
}
