//! `cpantuf-mirror`: serve a TUF-signed CPAN mirror over TLS.
//!
//! Mirrors are untrusted in TUF: this binary holds no keys and makes no trust decision. It serves
//! bytes fast and correctly, and keeps a hostile client from hurting the others. `main` only
//! parses, runs and reports; each subcommand lives in its own module.
//!
//! `sync` is a TUF client: it uses the client crate's fetcher, metadata store and URL helpers
//! (the dependency runs from this crate to the client, never back). `serve` is hyper, for the
//! internet-facing server; the client's loopback verifying mirror is a different job (ADR 0014).

mod cli;
mod serve;
mod sync;

use std::process::ExitCode;

use clap::Parser as _;

/// Exit status when a subcommand fails at run time (clap itself exits 2 on a usage error).
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(&cli.log);
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cpantuf-mirror: error: {err:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn init_tracing(filter: &str) {
    let mut filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // rustls warns for every client that sends an IP address as SNI (wrk, some scripts):
    // harmless, and one line per connection would drown the log. `--log rustls=warn` restores it.
    if !filter.to_string().contains("rustls") {
        filter = filter.add_directive("rustls=error".parse().expect("static directive"));
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
