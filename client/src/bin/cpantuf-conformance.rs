//! `cpantuf-conformance`: cpantuf's updater behind the command-line protocol
//! of the TUF conformance suite (`CLIENT-CLI.md` in tuf-conformance):
//!
//! ```text
//! cpantuf-conformance --metadata-dir MD init TRUSTED_ROOT
//! cpantuf-conformance --metadata-url URL --metadata-dir MD refresh
//! cpantuf-conformance --metadata-url URL --metadata-dir MD --target-name T... \
//!     --target-dir TD --target-base-url URL download
//! ```
//!
//! Exit status 0 on success, 1 on any failure (never a panic code).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use cpantuf_client::fetcher::FetchConfig;
use cpantuf_client::store::write_atomic;
use cpantuf_client::updater::{Updater, UpdaterConfig};
use cpantuf_core::workflow::{encode_role_name, Limits};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(about = "cpantuf's TUF client behind the tuf-conformance CLI protocol")]
struct Args {
    /// Trusted metadata directory.
    #[arg(long, global = true)]
    metadata_dir: Option<PathBuf>,
    /// Base URL of repository metadata.
    #[arg(long, global = true)]
    metadata_url: Option<String>,
    /// Target path to download (repeatable, processed in order).
    #[arg(long = "target-name", global = true)]
    target_names: Vec<String>,
    /// Directory for verified artifacts.
    #[arg(long, global = true)]
    target_dir: Option<PathBuf>,
    /// Base URL of repository targets.
    #[arg(long, global = true)]
    target_base_url: Option<String>,
    /// More logging (repeatable).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Store the initial trusted root (no network).
    Init {
        /// File with the initial root.json bytes.
        trusted_root: PathBuf,
    },
    /// Update top-level metadata.
    Refresh,
    /// Refresh, then download every --target-name.
    Download,
}

fn updater(args: &Args, targets_url: Option<String>) -> Result<Updater> {
    let metadata_dir = args
        .metadata_dir
        .clone()
        .context("--metadata-dir is required")?;
    let metadata_url = args
        .metadata_url
        .clone()
        .context("--metadata-url is required")?;
    Ok(Updater::new(UpdaterConfig {
        metadata_dir,
        metadata_url,
        targets_url: targets_url.unwrap_or_default(),
        limits: Limits::default(),
        fetch: FetchConfig::default(),
    })?)
}

fn run(args: Args) -> Result<()> {
    match &args.command {
        Command::Init { trusted_root } => {
            let md = args
                .metadata_dir
                .clone()
                .context("--metadata-dir is required")?;
            let bytes = std::fs::read(trusted_root)
                .with_context(|| format!("reading {}", trusted_root.display()))?;
            write_atomic(&md.join("root.json"), &bytes).context("storing root.json")?;
        }
        Command::Refresh => updater(&args, None)?.refresh()?,
        Command::Download => {
            let target_dir = args
                .target_dir
                .clone()
                .context("--target-dir is required")?;
            let base = args
                .target_base_url
                .clone()
                .context("--target-base-url is required")?;
            if args.target_names.is_empty() {
                bail!("at least one --target-name is required");
            }
            let mut up = updater(&args, Some(base))?;
            up.refresh()?;
            for name in &args.target_names {
                let found = up.target_info(name)?;
                let dest = target_dir.join(encode_role_name(name));
                if Updater::is_cached(&found, &dest) {
                    tracing::info!(target = %name, "already downloaded and verified");
                    continue;
                }
                up.download_target(&found, &dest)?;
                println!("{name}: verified (signed by role {})", found.role);
            }
        }
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    let level = match args.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(args) {
        eprintln!("cpantuf-conformance: error: {e:#}");
        std::process::exit(1);
    }
}
