//! `cpantuf-mirror`: serve a TUF-signed CPAN mirror over TLS.
//!
//! Mirrors are untrusted in TUF: this binary holds no keys and makes no trust decision. It serves
//! bytes fast and correctly, and keeps a hostile client from hurting the others. `main` only
//! parses, runs and reports; each subcommand lives in its own module.
//!
//! `sync` is a TUF client: it uses the client crate's fetcher, metadata store and URL helpers
//! (the dependency runs from this crate to the client, never back). `serve` is hyper, for the
//! internet-facing server; the client's loopback verifying mirror is a different job (ADR 0014).

mod check_config;
mod cli;
mod logging;
mod serve;
mod sync;

use std::process::ExitCode;

/// Exit status when a subcommand fails at run time.
const EXIT_FAILURE: u8 = 1;
/// Exit status of a usage error (as clap's own).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_args();
    if let Err(err) = logging::init(cli.verbose, cli.quiet, cli.log.as_deref()) {
        eprintln!("cpantuf-mirror: usage error: {err:#}");
        return ExitCode::from(EXIT_USAGE);
    }
    match cli.command.run() {
        Ok(status) => ExitCode::from(status),
        Err(err) => {
            eprintln!("cpantuf-mirror: error: {err:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
