//! `cpantuf-sign`: TUF metadata for a CPAN mirror, for PAUSE operators.
//!
//! This file only parses arguments, runs the subcommand and reports; the
//! work is in `cpantuf_repo_signer`. Exit status: see [`EXIT_STATUS`].

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod add;
mod author;
mod common;
mod index;
mod init;
mod keygen;
mod publish;
mod remove;
mod root;
mod status;
mod targets;
mod timestamp;
mod verify;

/// The exit statuses, at the end of `--help`.
const EXIT_STATUS: &str = "Exit status: 0 success; 1 the operation failed (nothing was \
published); 2 usage; 3 `verify` found problems; 4 `status`: a role has expired or expires \
within the warning window.";

/// Sign a CPAN mirror with TUF metadata: per-author delegated roles,
/// incremental re-signing of uploads, crash-safe publishing.
#[derive(Parser, Debug)]
#[command(name = "cpantuf-sign", version, about, long_about = None, after_help = EXIT_STATUS)]
struct Cli {
    /// More logging (-v info, -vv debug, other crates too); CPANTUF_LOG (a
    /// tracing filter) replaces -v/-q.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate an ed25519 key pair (PKCS#8 PEM, optional passphrase).
    Keygen(keygen::Args),
    /// Create a repository over a mirror directory: root metadata and config.
    Init(init::Args),
    /// Full build: hash every file, build every role, sign the ones that
    /// changed, publish.
    Publish(publish::Args),
    /// Re-sign the roles owning some uploaded or changed files.
    Add(add::Args),
    /// Re-sign the roles listing files deleted from the mirror, without
    /// them.
    Remove(remove::Args),
    /// Re-sign the index role after PAUSE rewrote its index files.
    Index(index::Args),
    /// Sign a fresh timestamp (run from cron).
    Timestamp(timestamp::Args),
    /// Show what expires when.
    Status(status::Args),
    /// Authors holding their own key: export, sign, import (claim,
    /// rotate), revoke.
    Author(author::Args),
    /// Root rotation with multi-party offline signing: prepare, sign,
    /// publish.
    Root(root::Args),
    /// Multi-party offline signing of the top-level targets role (see
    /// `publish --prepare-targets` and `--targets-signed`).
    Targets(targets::Args),
    /// Audit a repository from a trusted root; exit 3 on any problem.
    Verify(verify::Args),
    /// Write man pages or print shell completions, generated from this
    /// command line.
    #[command(subcommand)]
    Generate(cpantuf_cli_support::generate::Generate),
}

/// The command line, with the exit statuses at the end of every subcommand's help too.
fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_subcommands(|c| c.after_help(EXIT_STATUS))
}

fn main() -> ExitCode {
    let cli = {
        use clap::FromArgMatches;
        Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
    };
    common::init_logging(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Keygen(a) => keygen::run(a),
        Command::Init(a) => init::run(a),
        Command::Publish(a) => publish::run(a),
        Command::Add(a) => add::run(a),
        Command::Remove(a) => remove::run(a),
        Command::Index(a) => index::run(a),
        Command::Timestamp(a) => timestamp::run(a),
        Command::Status(a) => status::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Author(a) => author::run(a),
        Command::Root(a) => root::run(a),
        Command::Targets(a) => targets::run(a),
        Command::Generate(what) => cpantuf_cli_support::generate::run(&what, command())
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cpantuf-sign: error: {}", report(&e));
            ExitCode::from(1)
        }
    }
}

/// The error chain on one line, leaving out a cause whose text the line
/// already contains (the core's errors quote their source, and anyhow would
/// print it again).
fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if out.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
