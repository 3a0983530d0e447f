//! `cpantuf install Module... [-- cpanm args]`: cpanm through a temporary
//! local verifying mirror, confined to it (see `through_mirror`).

use super::cpanm_args::{check_install, Usage};
use super::through_mirror::{confine, run_client};
use super::Ctx;
use anyhow::Result;
use cpantuf_client::local_mirror::{sanitize, LocalMirror};
use std::process::Command;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Modules (Moo, Moo~2.0) or CPAN distribution paths (HAARG/Moo-2.005005.tar.gz).
    /// URLs, git repositories and local files are refused: cpantuf cannot verify them.
    #[arg(required = true)]
    modules: Vec<String>,
    /// Install the dependencies of local directories (cpanm --installdeps DIR):
    /// DIR itself is your code and is not verified; its dependencies are.
    #[arg(long)]
    installdeps: bool,
    /// cpanm program to run.
    #[arg(long, default_value = "cpanm", value_name = "PROGRAM")]
    cpanm: String,
    /// Address of the temporary verifying mirror (loopback; port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    listen: String,
    /// Extra arguments for cpanm (after `--`), e.g. `-- -L local --notest`.
    /// Options that add mirrors or indexes (--mirror, --from, --mirror-index,
    /// --cascade-search, --metacpan, ...) are refused.
    #[arg(last = true)]
    cpanm_args: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let scanned = match check_install(&args.modules, &args.cpanm_args, args.installdeps) {
        Ok(s) => s,
        Err(Usage(msg)) => {
            eprintln!("cpantuf: error: {msg}");
            return Ok(2);
        }
    };
    let mirror = LocalMirror::start(ctx.session()?, &args.listen, 2)?;
    let url = mirror.url();
    if !ctx.quiet {
        eprintln!("cpantuf: verifying mirror at {url}; running {}", args.cpanm);
        for dir in &scanned.local_dirs {
            eprintln!(
                "cpantuf: {} is your own directory and is not verified; its dependencies come through the verifying mirror",
                sanitize(dir)
            );
        }
    }
    // --from = --mirror URL --mirror-only: no other mirror, no cpanmetadb or
    // metacpan lookup. PERL_CPANM_OPT is emptied so a user setting cannot
    // add a source behind our back (cpanm reads no other configuration).
    let mut cmd = Command::new(&args.cpanm);
    cmd.arg("--from").arg(&url);
    if args.installdeps {
        cmd.arg("--installdeps");
    }
    cmd.args(&args.cpanm_args)
        .args(&args.modules)
        .env("PERL_CPANM_OPT", "");
    confine(&mut cmd, &url);
    run_client(ctx, mirror, &args.cpanm, cmd)
}
