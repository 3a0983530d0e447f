//! `timestamp`: a fresh timestamp for the current snapshot (cron).

use crate::common::RepoArgs;
use anyhow::Result;
use cpantuf_repo_signer::ops;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let ctx = a.repo.ctx()?;
    let f = ops::timestamp(&ctx)?;
    println!("timestamp version {} written", f.version);
    Ok(ExitCode::SUCCESS)
}
