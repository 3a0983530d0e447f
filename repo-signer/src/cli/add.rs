//! `add PATH...`: re-sign the roles owning uploaded or changed files.

use crate::common::RepoArgs;
use anyhow::Result;
use cpantuf_repo_signer::ops;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Files inside the mirror (absolute, or relative to the current
    /// directory).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let ctx = a.repo.ctx()?;
    let paths = a
        .paths
        .iter()
        .map(|p| ctx.mirror.resolve(p))
        .collect::<Result<Vec<_>, _>>()?;
    let r = ops::add(&ctx, &paths)?;
    println!(
        "signed {} file(s); re-signed {}",
        r.files,
        r.roles.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
