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
    /// Print one JSON object per file, one per line: path (the CPAN path),
    /// file (where the verified copy is), length, sha256, signed_by.
    #[arg(long)]
    json: bool,
}

/// The `--json` object (documented in docs/users.md).
#[derive(serde::Serialize)]
struct JsonFetched<'a> {
    path: &'a str,
    file: String,
    length: u64,
    sha256: Option<&'a str>,
    signed_by: &'a str,
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
        if args.json {
            let line = JsonFetched {
                path: path.as_str(),
                file: file.display().to_string(),
                length: found.info.length,
                sha256: found.info.hashes.get("sha256").map(String::as_str),
                signed_by: &found.role,
            };
            println!("{}", serde_json::to_string(&line)?);
            continue;
        }
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
