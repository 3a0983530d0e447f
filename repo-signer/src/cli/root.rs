//! `root ...`: root rotation with multi-party offline signing.
//!
//! `prepare` writes root N+1 unsigned and prints what it changes; each key
//! holder runs `sign` on their own machine (old root keys and new ones),
//! which prints the same review against the root they trust before
//! signing; `publish` checks both thresholds and publishes it with fresh
//! snapshot and timestamp.

use crate::common::{PassArgs, RepoArgs};
use anyhow::{bail, Context, Result};
use cpantuf_core::metadata::{Envelope, Root};
use cpantuf_repo_signer::ceremony::RootReview;
use cpantuf_repo_signer::config::load_public_key;
use cpantuf_repo_signer::ops::{self, RootChange};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
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
        /// Root threshold; omit to keep the current one.
        #[arg(long)]
        root_threshold: Option<NonZeroU64>,
        /// New targets keys (public PEM); repeat.
        #[arg(long = "targets-key")]
        targets_keys: Vec<PathBuf>,
        /// Targets threshold; omit to keep the current one.
        #[arg(long)]
        targets_threshold: Option<NonZeroU64>,
        /// Allow a threshold to go down (refused otherwise).
        #[arg(long)]
        allow_lower_threshold: bool,
        /// New snapshot key (public PEM).
        #[arg(long)]
        snapshot_key: Option<PathBuf>,
        /// New timestamp key (public PEM).
        #[arg(long)]
        timestamp_key: Option<PathBuf>,
    },
    /// Review a prepared root and add your signature (run by each key
    /// holder).
    Sign {
        /// The prepared root.
        file: PathBuf,
        /// The root you trust now (e.g. your offline copy of the newest
        /// N.root.json): the review shows what the prepared root changes.
        #[arg(long, value_name = "ROOT")]
        previous: Option<PathBuf>,
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

fn keys(paths: &[PathBuf]) -> Result<Option<Vec<cpantuf_core::metadata::Key>>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let k = paths
        .iter()
        .map(|p| load_public_key(p, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(k))
}

/// The review, with a loud line for each lowered threshold.
fn print_review(review: &RootReview) {
    print!("{review}");
    for r in review.lowered() {
        let old = r.old.as_ref().map_or(0, |o| o.threshold.get());
        println!(
            "WARNING: this root LOWERS the {} threshold from {old} to {}",
            r.role, r.new.threshold
        );
    }
}

/// Shows a key holder what the prepared root changes against the root
/// they trust (`previous`), before their signature is added.
fn review_before_signing(file: &Path, previous: Option<&Path>) -> Result<()> {
    let read = |p: &Path| -> Result<Root> {
        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        let env = Envelope::<Root>::from_bytes(&bytes)
            .with_context(|| format!("{} is not root metadata", p.display()))?;
        Ok(env.unverified().clone())
    };
    let new = read(file)?;
    let old = previous.map(read).transpose()?;
    if let Some(old) = &old {
        if old.version.checked_add(1) != Some(new.version) {
            bail!(
                "{} is root version {}, not the one after the trusted root's version {}",
                file.display(),
                new.version,
                old.version
            );
        }
    }
    print_review(&RootReview::between(old.as_ref(), &new));
    Ok(())
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
            allow_lower_threshold,
            snapshot_key,
            timestamp_key,
        } => {
            let ctx = repo.ctx()?;
            let change = RootChange {
                root_keys: keys(&root_keys)?,
                root_threshold,
                targets_keys: keys(&targets_keys)?,
                targets_threshold,
                allow_lower_threshold,
                snapshot: snapshot_key
                    .map(|p| load_public_key(&p, None))
                    .transpose()?,
                timestamp: timestamp_key
                    .map(|p| load_public_key(&p, None))
                    .transpose()?,
            };
            let (f, review) = ops::root_prepare(&ctx, change)?;
            std::fs::write(&out, &f.bytes).with_context(|| format!("writing {}", out.display()))?;
            print_review(&review);
            println!("prepared root version {} in {}", f.version, out.display());
        }
        Cmd::Sign {
            file,
            previous,
            key,
            pass,
        } => {
            review_before_signing(&file, previous.as_deref())?;
            crate::common::sign_prepared(
                "root",
                &file,
                &key,
                &pass,
                cpantuf_repo_signer::signed::add_signature::<Root>,
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
