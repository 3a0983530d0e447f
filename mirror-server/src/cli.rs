//! The command line: one subcommand per module, each with an `Args` and a `run`.

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::{check_config, serve, sync};

/// Serve a TUF-signed CPAN mirror. The mirror holds no keys and makes no trust decision.
///
/// Diagnostics go to stderr: `-v`/`-q` raise or lower cpantuf's own level from `info`
/// (third-party crates such as rustls and hyper stay at `warn` unless `-v`); `--log FILTER`
/// or `CPANTUF_LOG` sets a precise tracing filter instead. Colour only on a terminal.
#[derive(Debug, Parser)]
#[command(
    name = "cpantuf-mirror",
    version,
    about,
    long_about,
    max_term_width = 100
)]
pub struct Cli {
    /// More diagnostics (repeat for more): debug, then trace; third-party crates too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Fewer diagnostics (repeat for fewer): warnings only, then errors only.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,

    /// Diagnostic log filter (tracing `EnvFilter` syntax, e.g. `info,cpantuf_mirror=debug`);
    /// replaces `-v`/`-q`.
    #[arg(long, env = "CPANTUF_LOG", value_name = "FILTER", global = true)]
    pub log: Option<String>,

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
    /// Check the `serve` options (command line and `--config` file) like `nginx -t`: print
    /// what would be used and exit 0, or print one error line and exit 2.
    CheckConfig(serve::Args),
    /// Follow an upstream mirror through the TUF client workflow and verify everything; apply
    /// each change in place in the order consistent snapshots make safe, or publish a new
    /// state by switching a `current` symlink atomically.
    Sync(sync::Args),
    /// Write man pages or print shell completions, generated from this command line.
    #[command(subcommand)]
    Generate(cpantuf_cli_support::generate::Generate),
}

/// The exit statuses, at the end of every `--help`.
const EXIT_STATUS: &str = "Exit status: 0 success; 1 the run failed, with one error line (a \
failed sync leaves the served tree as it was); 2 usage, or `check-config` found an error.";

impl Cli {
    /// The command line, with the exit statuses at the end of each subcommand's help.
    pub fn command_with_help() -> clap::Command {
        Cli::command()
            .after_help(EXIT_STATUS)
            .mut_subcommands(|c| c.after_help(EXIT_STATUS))
    }

    /// Parses the process arguments (exiting on a usage error), remembering which `serve`
    /// options came from the command line so a config file does not override them.
    pub fn parse_args() -> Cli {
        let matches = Cli::command_with_help().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if let (Command::Serve(args) | Command::CheckConfig(args), Some((_, sub))) =
            (&mut cli.command, matches.subcommand())
        {
            args.from_command_line = given(sub);
        }
        cli
    }
}

/// The ids of the arguments given on the command line (not defaults).
fn given(m: &ArgMatches) -> std::collections::BTreeSet<String> {
    m.ids()
        .filter(|id| m.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.as_str().to_owned())
        .collect()
}

impl Command {
    /// Runs the chosen subcommand to completion; returns the process exit status.
    pub fn run(self) -> anyhow::Result<u8> {
        match self {
            Command::Serve(args) => serve::run(args).map(|()| 0),
            Command::CheckConfig(args) => Ok(check_config::run(args)),
            Command::Sync(args) => sync::run(args).map(|()| 0),
            Command::Generate(what) => {
                cpantuf_cli_support::generate::run(&what, Cli::command_with_help())?;
                Ok(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_help_names_the_exit_statuses() {
        let mut cli = Cli::command_with_help();
        assert!(cli.render_help().to_string().contains("Exit status: 0"));
        for sub in cli.get_subcommands_mut().filter(|s| s.get_name() != "help") {
            let help = sub.render_help().to_string();
            assert!(help.contains("Exit status: 0"), "{help}");
        }
    }
}
