//! `cpantuf resolve Module::Name`.

use super::Ctx;
use anyhow::Result;
use cpantuf_client::local_mirror::sanitize;
use cpantuf_client::session::Resolved;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Module names, e.g. Moo or Try::Tiny.
    #[arg(required = true)]
    modules: Vec<String>,
    /// Print one JSON object per module, one per line: package, version
    /// (null for undef), dist, target, signed_by, offline.
    #[arg(long)]
    json: bool,
    /// Answer from the verified cache without contacting a mirror while
    /// the stored metadata is unexpired; refresh only when it cannot answer.
    #[arg(long)]
    cache_first: bool,
}

/// The `--json` object: field names and meanings are part of the
/// documented interface (docs/users.md).
#[derive(serde::Serialize)]
struct JsonAnswer<'a> {
    package: &'a str,
    version: Option<&'a str>,
    dist: &'a str,
    target: &'a str,
    signed_by: &'a str,
    offline: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let mut s = ctx.session()?;
    for m in &args.modules {
        let (r, offline) = if args.cache_first {
            s.resolve_cached(m)?
        } else {
            (s.resolve(m)?, false)
        };
        if args.json {
            println!("{}", json_line(&r, offline));
            continue;
        }
        if offline && !ctx.quiet {
            eprintln!(
                "cpantuf: {} answered from the verified cache (metadata unexpired, no mirror contacted)",
                sanitize(m)
            );
        }
        println!(
            "{}\t{}\t{}\tsigned by role {}",
            sanitize(&r.package),
            sanitize(&r.version),
            sanitize(r.dist.as_str()),
            sanitize(&r.signed_by)
        );
    }
    Ok(0)
}

fn json_line(r: &Resolved, offline: bool) -> String {
    let answer = JsonAnswer {
        package: &r.package,
        version: (r.version != "undef").then_some(r.version.as_str()),
        dist: r.dist.as_str(),
        target: r.dist.cpan_path().as_str(),
        signed_by: &r.signed_by,
        offline,
    };
    serde_json::to_string(&answer).expect("strings always serialise")
}
