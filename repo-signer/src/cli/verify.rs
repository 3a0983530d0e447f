//! `verify`: audit a repository from a trusted root.

use anyhow::{Context, Result};
use cpantuf_repo_signer::audit;
use cpantuf_repo_signer::mirror::Mirror;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The mirror directory.
    #[arg(long, value_name = "DIR")]
    mirror: PathBuf,
    /// The root the audit trusts (keep a copy of 1.root.json offline; the
    /// one inside the mirror proves nothing).
    #[arg(long, value_name = "FILE")]
    root: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let mirror = Mirror::open(&a.mirror)?;
    let root = std::fs::read(&a.root).with_context(|| format!("reading {}", a.root.display()))?;
    let r = audit::verify(&mirror, &root, chrono::Utc::now())?;
    for p in &r.problems {
        println!("PROBLEM {p}");
    }
    println!(
        "verified root chain to version {}, {} roles, {} files{}: {} problem(s)",
        r.root_version,
        r.roles_checked,
        r.files_checked,
        if r.roles_retired > 0 {
            format!(" ({} retired empty bins)", r.roles_retired)
        } else {
            String::new()
        },
        r.problems.len()
    );
    Ok(if r.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
