//! `cpantuf resolve Module::Name`.

use super::Ctx;
use anyhow::Result;
use cpantuf_client::local_mirror::sanitize;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Module names, e.g. Moo or Try::Tiny.
    #[arg(required = true)]
    modules: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let mut s = ctx.session()?;
    for m in &args.modules {
        let r = s.resolve(m)?;
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
