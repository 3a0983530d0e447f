//! `init`: root metadata and the signer configuration for a new repository.

use crate::common::PassArgs;
use anyhow::{bail, Context, Result};
use cpantuf_repo_signer::config::{
    load_public_key, load_signer, ExpiryPolicy, OnlineKeyFiles, SignerConfig,
    DEFAULT_AUTHOR_BINS_ABOVE, DEFAULT_PREFIX_DEPTH,
};
use cpantuf_repo_signer::mirror::Mirror;
use cpantuf_repo_signer::ops::{self, InitParams};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The mirror directory (holds authors/ and modules/; tuf/ is created).
    #[arg(long, value_name = "DIR")]
    mirror: PathBuf,
    /// The configuration file to write.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// A root private key; repeat. All of them sign 1.root.json.
    #[arg(long = "root-key", value_name = "PEM", required = true)]
    root_keys: Vec<PathBuf>,
    /// Distinct root keys needed to sign root; required with more than one
    /// root key.
    #[arg(long)]
    root_threshold: Option<NonZeroU64>,
    /// A targets key (public PEM or private); repeat.
    #[arg(long = "targets-key", value_name = "PEM", required = true)]
    targets_keys: Vec<PathBuf>,
    /// Distinct targets keys needed to sign targets; required with more
    /// than one targets key.
    #[arg(long)]
    targets_threshold: Option<NonZeroU64>,
    /// Online snapshot private key.
    #[arg(long, value_name = "PEM")]
    snapshot_key: PathBuf,
    /// Online timestamp private key.
    #[arg(long, value_name = "PEM")]
    timestamp_key: PathBuf,
    /// Online index-role private key.
    #[arg(long, value_name = "PEM")]
    index_key: PathBuf,
    /// Online registry private key (signs the prefix roles).
    #[arg(long, value_name = "PEM")]
    registry_key: PathBuf,
    /// Online PAUSE key for unclaimed authors' roles.
    #[arg(long, value_name = "PEM")]
    authors_key: PathBuf,
    /// Levels below an author directory the prefix delegations cover.
    #[arg(long, default_value_t = DEFAULT_PREFIX_DEPTH)]
    prefix_depth: usize,
    /// An unclaimed author with more files than this gets a role split into
    /// hash bins (TUF succinct delegations), so new clients never fetch one
    /// huge role. 0 turns binning off.
    #[arg(long, default_value_t = DEFAULT_AUTHOR_BINS_ABOVE, value_name = "FILES")]
    author_bins_above: usize,
    /// Hours superseded metadata and hash-named files are kept.
    #[arg(long, default_value_t = 72)]
    retention_hours: u32,
    /// Root and targets lifetime, hours.
    #[arg(long, default_value_t = 365 * 24)]
    offline_hours: u32,
    /// Lifetime of every online role, hours.
    #[arg(long, default_value_t = 24)]
    online_hours: u32,
    /// Skip fsync (tests and benchmarks on throw-away mirrors only).
    #[arg(long)]
    no_fsync: bool,
    #[command(flatten)]
    pass: PassArgs,
}

/// The threshold given, or 1 for a single key. With several keys there is
/// no safe default: 1 would let any one holder sign alone, and the old
/// silent default did exactly that.
fn threshold(flag: &str, given: Option<NonZeroU64>, keys: usize) -> Result<NonZeroU64> {
    match given {
        Some(t) => Ok(t),
        None if keys <= 1 => Ok(NonZeroU64::MIN),
        None => bail!(
            "{keys} keys given but no {flag}: say how many of them must sign (a majority is {})",
            keys / 2 + 1
        ),
    }
}

fn abs(p: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("{}", p.display()))
}

pub fn run(a: Args) -> Result<ExitCode> {
    if a.config.exists() {
        bail!(
            "{} exists; refusing to overwrite a configuration",
            a.config.display()
        );
    }
    if a.prefix_depth == 0 || a.prefix_depth > 32 {
        bail!("--prefix-depth must be 1..=32");
    }
    let root_threshold = threshold("--root-threshold", a.root_threshold, a.root_keys.len())?;
    let targets_threshold = threshold(
        "--targets-threshold",
        a.targets_threshold,
        a.targets_keys.len(),
    )?;
    let pass = a.pass.for_keys(
        a.root_keys
            .iter()
            .chain(&a.targets_keys)
            .map(PathBuf::as_path),
    )?;
    let mirror = Mirror::open(&a.mirror)?;
    let root_signers = a
        .root_keys
        .iter()
        .map(|p| load_signer(p, pass.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let targets_keys = a
        .targets_keys
        .iter()
        .map(|p| load_public_key(p, pass.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    // Online keys must be readable without a passphrase: cron uses them.
    for p in [
        &a.index_key,
        &a.registry_key,
        &a.authors_key,
        &a.snapshot_key,
        &a.timestamp_key,
    ] {
        load_signer(p, None).with_context(|| "online keys must not be encrypted")?;
    }
    let expiry = ExpiryPolicy {
        root_hours: a.offline_hours,
        targets_hours: a.offline_hours,
        snapshot_hours: a.online_hours,
        timestamp_hours: a.online_hours,
        index_hours: a.online_hours,
        prefix_hours: a.online_hours,
        author_hours: a.online_hours,
        ..ExpiryPolicy::default()
    };
    let cfg = SignerConfig {
        mirror: mirror.root().to_owned(),
        online_keys: OnlineKeyFiles {
            timestamp: abs(&a.timestamp_key)?,
            snapshot: abs(&a.snapshot_key)?,
            index: abs(&a.index_key)?,
            registry: abs(&a.registry_key)?,
            authors: abs(&a.authors_key)?,
        },
        expiry,
        prefix_depth: a.prefix_depth,
        retention_hours: a.retention_hours,
        fsync: !a.no_fsync,
        author_bins_above: a.author_bins_above,
    };
    let root = ops::init(InitParams {
        mirror: &mirror,
        root_signers,
        root_threshold,
        targets_keys,
        targets_threshold,
        snapshot_key: load_signer(&a.snapshot_key, None)?.public_key().clone(),
        timestamp_key: load_signer(&a.timestamp_key, None)?.public_key().clone(),
        root_hours: a.offline_hours,
        now: chrono::Utc::now(),
    })?;
    std::fs::write(&a.config, cfg.to_json())
        .with_context(|| format!("writing {}", a.config.display()))?;
    println!(
        "initialised {}: tuf/{} written; configuration in {}",
        mirror.root().display(),
        root.file_name(),
        a.config.display()
    );
    let env = root.envelope::<cpantuf_core::metadata::Root>()?;
    for name in cpantuf_repo_signer::ceremony::TOP_LEVEL_ROLES {
        let r = &env.unverified().roles[name];
        let n = r.keyids.len();
        let keys = if n == 1 { "key" } else { "keys" };
        println!("  {name}: {} of {n} {keys}", r.threshold);
    }
    println!(
        "next: cpantuf-sign publish --config {} --key TARGETS-KEY ...",
        a.config.display()
    );
    Ok(ExitCode::SUCCESS)
}
