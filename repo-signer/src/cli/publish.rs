//! `publish`: the full build.

use crate::common::{Bar, RepoArgs};
use anyhow::{Context, Result};
use cpantuf_repo_signer::ops;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Print phase timings.
    #[arg(long)]
    timings: bool,
    /// If the top-level targets role has to change, write it unsigned to
    /// FILE for the targets key holders (`cpantuf-sign targets sign`) and
    /// publish nothing.
    #[arg(long, value_name = "FILE", conflicts_with = "targets_signed")]
    prepare_targets: Option<PathBuf>,
    /// Use this prepared targets file, signed by enough targets key
    /// holders, instead of targets keys given with --key.
    #[arg(long, value_name = "FILE")]
    targets_signed: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let ctx = a.repo.ctx()?;
    let bar = Bar::new();
    let signing = match (&a.prepare_targets, &a.targets_signed) {
        (Some(_), _) => ops::TargetsSigning::Prepare,
        (None, Some(f)) => ops::TargetsSigning::Signed(
            std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        ),
        (None, None) => ops::TargetsSigning::Keys,
    };
    let r = ops::publish_full_with(&ctx, &bar, signing);
    bar.done();
    let r = r?;
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(out) = &a.prepare_targets {
        let Some(f) = &r.prepared_targets else {
            println!("nothing prepared, nothing published");
            return Ok(ExitCode::SUCCESS);
        };
        std::fs::write(out, &f.bytes).with_context(|| format!("writing {}", out.display()))?;
        println!(
            "prepared targets version {} in {} (nothing published); each targets key holder \
             runs `cpantuf-sign targets sign {} --key KEY`, then `cpantuf-sign publish \
             --targets-signed {}`",
            f.version,
            out.display(),
            out.display(),
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "published {} files: {} authors ({} claimed, kept), {} prefixes, {} roles signed, {} unchanged{}; {} twins linked, {} copied; pruned {} metadata files, {} twins",
        r.files,
        r.authors,
        r.claimed_kept,
        r.prefixes,
        r.roles_signed,
        r.roles_unchanged,
        if r.targets_resigned { ", targets re-signed" } else { "" },
        r.write.linked,
        r.write.copied,
        r.pruned.metadata,
        r.pruned.twins,
    );
    if a.timings {
        for (what, secs) in &r.timings {
            println!("  {what:<12} {secs:.3} s");
        }
    }
    Ok(ExitCode::SUCCESS)
}
