//! `cpantuf refresh`.

use super::Ctx;
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> Result<i32> {
    let mut s = ctx.session()?;
    s.refresh()?;
    if !ctx.quiet {
        if let Some(v) = s.trusted_versions() {
            let parts: Vec<String> = v.iter().map(|(r, n)| format!("{r} v{n}")).collect();
            println!("cpantuf: metadata verified: {}", parts.join(", "));
        }
    }
    Ok(0)
}
