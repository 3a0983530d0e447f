//! `targets sign`: multi-party offline signing of the top-level targets role.
//!
//! `publish --prepare-targets FILE` writes the new targets role unsigned
//! (and publishes nothing); each targets key holder runs `targets sign` on
//! their own machine; `publish --targets-signed FILE` publishes once the
//! threshold is met and the file still matches what the mirror needs.

use crate::common::PassArgs;
use anyhow::Result;
use cpantuf_core::metadata::Targets;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Add your signature to a prepared targets file (run by each targets
    /// key holder, offline).
    Sign {
        /// The file `publish --prepare-targets` wrote.
        file: PathBuf,
        /// Your targets key.
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
    },
}

pub fn run(a: Args) -> Result<ExitCode> {
    match a.cmd {
        Cmd::Sign { file, key, pass } => {
            crate::common::sign_prepared(
                "targets",
                &file,
                &key,
                &pass,
                cpantuf_repo_signer::signed::add_signature::<Targets>,
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
