//! `cpantuf refresh`.

use super::Ctx;
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the verified versions as one JSON object: {"root": N,
    /// "timestamp": N, "snapshot": N, "targets": N}.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let mut s = ctx.session()?;
    s.refresh()?;
    let Some(versions) = s.trusted_versions() else {
        return Ok(0);
    };
    if args.json {
        let obj: serde_json::Map<String, serde_json::Value> = versions
            .iter()
            .map(|(r, n)| (r.clone(), (*n).into()))
            .collect();
        println!("{}", serde_json::Value::Object(obj));
    } else if !ctx.quiet {
        let parts: Vec<String> = versions.iter().map(|(r, n)| format!("{r} v{n}")).collect();
        println!("cpantuf: metadata verified: {}", parts.join(", "));
    }
    Ok(0)
}
