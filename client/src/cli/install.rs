//! `cpantuf install Module... [-- cpanm args]`: cpanm through a temporary
//! local verifying mirror.

use super::Ctx;
use anyhow::{Context, Result};
use cpantuf_client::local_mirror::{sanitize, LocalMirror};
use std::process::Command;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Modules to install.
    #[arg(required = true)]
    modules: Vec<String>,
    /// cpanm program to run.
    #[arg(long, default_value = "cpanm", value_name = "PROGRAM")]
    cpanm: String,
    /// Extra arguments for cpanm (after `--`), e.g. `-- -L local --notest`.
    #[arg(last = true)]
    cpanm_args: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let mirror = LocalMirror::start(ctx.session()?, "127.0.0.1:0", 2)?;
    let url = mirror.url();
    if !ctx.quiet {
        eprintln!("cpantuf: verifying mirror at {url}; running {}", args.cpanm);
    }
    // --from = --mirror URL --mirror-only: cpanm asks no other index and no
    // other mirror. PERL_CPANM_OPT is replaced so a user setting cannot add
    // another mirror behind our back.
    let status = Command::new(&args.cpanm)
        .arg("--from")
        .arg(&url)
        .args(&args.cpanm_args)
        .args(&args.modules)
        .env("PERL_CPANM_OPT", "")
        .status()
        .with_context(|| format!("running {} (is cpanminus installed?)", args.cpanm))?;
    let served = mirror.stop();
    if !ctx.quiet {
        eprintln!(
            "cpantuf: {} file(s) served, each verified before the first byte was sent:",
            served.len()
        );
        for s in &served {
            eprintln!(
                "  {}  [{}]{}",
                sanitize(&s.path),
                sanitize(&s.role),
                s.sha256
                    .as_ref()
                    .map(|h| format!(" sha256 {}", &h[..16]))
                    .unwrap_or_default()
            );
        }
    }
    Ok(status.code().unwrap_or(1))
}
