//! `publish`: the full build.

use crate::common::{Bar, RepoArgs};
use anyhow::Result;
use cpantuf_core::repo::ops;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Print phase timings.
    #[arg(long)]
    timings: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let ctx = a.repo.ctx()?;
    let bar = Bar::new();
    let r = ops::publish_full(&ctx, &bar);
    bar.done();
    let r = r?;
    for w in &r.warnings {
        eprintln!("warning: {w}");
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
