//! `root ...`: root rotation with multi-party offline signing.
//!
//! `prepare` writes root N+1 unsigned; each key holder runs `sign` on their
//! own machine (old root keys and new ones); `publish` checks both
//! thresholds and publishes it with fresh snapshot and timestamp.

use crate::common::{PassArgs, RepoArgs};
use anyhow::{Context, Result};
use cpantuf_core::metadata::Root;
use cpantuf_core::repo::config::load_public_key;
use cpantuf_core::repo::ops::{self, RootChange};
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Write root N+1 (unsigned) with the given key changes.
    Prepare {
        #[command(flatten)]
        repo: RepoArgs,
        /// Where to write it.
        #[arg(long, short)]
        out: PathBuf,
        /// New root keys (public PEM); repeat. Omit to keep the current ones.
        #[arg(long = "root-key")]
        root_keys: Vec<PathBuf>,
        /// Threshold for the new root keys.
        #[arg(long, default_value_t = NonZeroU64::MIN)]
        root_threshold: NonZeroU64,
        /// New targets keys (public PEM); repeat.
        #[arg(long = "targets-key")]
        targets_keys: Vec<PathBuf>,
        /// Threshold for the new targets keys.
        #[arg(long, default_value_t = NonZeroU64::MIN)]
        targets_threshold: NonZeroU64,
        /// New snapshot key (public PEM).
        #[arg(long)]
        snapshot_key: Option<PathBuf>,
        /// New timestamp key (public PEM).
        #[arg(long)]
        timestamp_key: Option<PathBuf>,
    },
    /// Add your signature to a prepared root (run by each key holder).
    Sign {
        /// The prepared root.
        file: PathBuf,
        /// Your root key.
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
    },
    /// Publish a prepared root once both thresholds are met.
    Publish {
        #[command(flatten)]
        repo: RepoArgs,
        /// The signed root.
        file: PathBuf,
    },
}

fn keys(
    paths: &[PathBuf],
    t: NonZeroU64,
) -> Result<Option<(Vec<cpantuf_core::metadata::Key>, NonZeroU64)>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let k = paths
        .iter()
        .map(|p| load_public_key(p, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((k, t)))
}

pub fn run(a: Args) -> Result<ExitCode> {
    match a.cmd {
        Cmd::Prepare {
            repo,
            out,
            root_keys,
            root_threshold,
            targets_keys,
            targets_threshold,
            snapshot_key,
            timestamp_key,
        } => {
            let ctx = repo.ctx()?;
            let change = RootChange {
                root: keys(&root_keys, root_threshold)?,
                targets: keys(&targets_keys, targets_threshold)?,
                snapshot: snapshot_key
                    .map(|p| load_public_key(&p, None))
                    .transpose()?,
                timestamp: timestamp_key
                    .map(|p| load_public_key(&p, None))
                    .transpose()?,
            };
            let f = ops::root_prepare(&ctx, change)?;
            std::fs::write(&out, &f.bytes).with_context(|| format!("writing {}", out.display()))?;
            println!("prepared root version {} in {}", f.version, out.display());
        }
        Cmd::Sign { file, key, pass } => {
            crate::common::sign_prepared(
                "root",
                &file,
                &key,
                &pass,
                cpantuf_core::repo::signed::add_signature::<Root>,
            )?;
        }
        Cmd::Publish { repo, file } => {
            let ctx = repo.ctx()?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let f = ops::root_publish(&ctx, bytes)?;
            println!("published root version {}", f.version);
        }
    }
    Ok(ExitCode::SUCCESS)
}
