//! `index`: re-sign the index role after PAUSE rewrote its files.

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
    let r = ops::index(&ctx)?;
    println!("index role re-signed over {} file(s)", r.files);
    Ok(ExitCode::SUCCESS)
}
