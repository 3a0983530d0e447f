//! `cpantuf fetch Module::Name|PATH`.

use super::Ctx;
use anyhow::{Context, Result};
use cpantuf_client::local_mirror::sanitize;
use cpantuf_core::cpan::CpanPath;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A module name (Try::Tiny) or a CPAN path (authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz,
    /// or relative to authors/id/: E/ET/ETHER/Try-Tiny-0.31.tar.gz).
    #[arg(required = true)]
    what: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let mut s = ctx.session()?;
    for w in &args.what {
        let path = if w.contains('/') {
            let p = if w.starts_with("authors/") || w.starts_with("modules/") {
                CpanPath::new(w)
            } else {
                CpanPath::from_dist_path(w)
            };
            p.with_context(|| format!("{w} is not a CPAN path"))?
        } else {
            s.resolve(w)?.dist.cpan_path().clone()
        };
        let (file, found) = s.verified(&path)?;
        if !ctx.quiet {
            eprintln!(
                "cpantuf: {} verified ({} bytes, signed by role {})",
                sanitize(path.as_str()),
                found.info.length,
                sanitize(&found.role)
            );
        }
        println!("{}", file.display());
    }
    Ok(0)
}
