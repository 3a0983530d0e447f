//! `remove PATH...`: re-sign the roles that list deleted files, without them.

use crate::common::RepoArgs;
use anyhow::{Context, Result};
use cpantuf_core::cpan::CpanPath;
use cpantuf_repo_signer::ops;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Files already deleted from the mirror: paths inside the mirror
    /// (absolute), or CPAN paths relative to its root
    /// (`authors/id/E/ET/ETHER/Old-1.0.tar.gz`).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let ctx = a.repo.ctx()?;
    let root = ctx.mirror.root().to_owned();
    let paths = a
        .paths
        .iter()
        .map(|p| {
            // The file is gone, so it cannot be canonicalised: an absolute
            // path must name the mirror root literally.
            let rel = if p.is_absolute() {
                p.strip_prefix(&root).with_context(|| {
                    format!(
                        "{} is not inside the mirror {}",
                        p.display(),
                        root.display()
                    )
                })?
            } else {
                p.as_path()
            };
            let s = rel
                .to_str()
                .with_context(|| format!("{} is not UTF-8", rel.display()))?;
            CpanPath::new(s).with_context(|| format!("{s} is not a CPAN path"))
        })
        .collect::<Result<Vec<_>>>()?;
    let r = ops::remove(&ctx, &paths)?;
    println!(
        "removed {} file(s); re-signed {}",
        r.files,
        r.roles.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
