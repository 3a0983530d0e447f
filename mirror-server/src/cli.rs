//! The command line: one subcommand per module, each with an `Args` and a `run`.

use clap::{Parser, Subcommand};

use crate::{serve, sync};

/// Serve a TUF-signed CPAN mirror. The mirror holds no keys and makes no trust decision.
#[derive(Debug, Parser)]
#[command(name = "cpantuf-mirror", version, about, max_term_width = 100)]
pub struct Cli {
    /// Diagnostic log filter (tracing `EnvFilter` syntax), written to stderr.
    #[arg(long, env = "CPANTUF_LOG", default_value = "info", global = true)]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per process: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a mirror tree over HTTPS (HTTP/1.1 and HTTP/2).
    Serve(serve::Args),
    /// Follow an upstream mirror through the TUF client workflow, verify everything, and
    /// publish each new state by switching a `current` symlink atomically.
    Sync(sync::Args),
}

impl Command {
    /// Runs the chosen subcommand to completion.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Serve(args) => serve::run(args),
            Command::Sync(args) => sync::run(args),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
