//! Command-line interface of `cpantuf`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use cpantuf_client::fetcher::FetchConfig;
use cpantuf_client::session::{default_home, Session};
use std::path::PathBuf;
use std::time::Duration;

mod carton;
mod cpan;
mod cpanm_args;
mod fetch;
mod init;
mod install;
mod mirror;
mod refresh;
mod resolve;
mod serve;
mod through_mirror;

/// Verified CPAN downloads: every file passes The Update Framework's checks
/// (signatures, versions, expiry, hashes) before cpanm, CPAN.pm or cpm sees it.
#[derive(Parser, Debug)]
#[command(
    name = "cpantuf",
    version,
    after_help = "Start with `cpantuf init https://MIRROR/ --root root.json`, then `cpantuf install Moo`.\nEnvironment: CPANTUF_HOME (client home, default ~/.cpantuf), https_proxy / http_proxy / no_proxy\n(for cpantuf's own downloads; the CPAN clients it runs get no proxy but the verifying mirror)."
)]
pub struct Args {
    /// Client home: configuration, trusted metadata and verified cache.
    #[arg(long, global = true, env = "CPANTUF_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// PEM file of CA certificates to trust for the mirrors (instead of the system roots).
    #[arg(long, global = true, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Seconds to wait for any network read before giving up on a mirror.
    #[arg(long, global = true, default_value_t = 20, value_name = "SECS")]
    timeout: u64,
    /// More logging (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Trust a repository: pin its root metadata and record its mirrors.
    Init(init::Args),
    /// Update trusted metadata (root, timestamp, snapshot, targets).
    Refresh(refresh::Args),
    /// Show which distribution provides a module, and who signed it.
    Resolve(resolve::Args),
    /// Download and verify a module's distribution (or a CPAN path); print where it is.
    Fetch(fetch::Args),
    /// Run a local verifying CPAN mirror on 127.0.0.1 for cpanm, CPAN.pm or cpm.
    Serve(serve::Args),
    /// Install modules with cpanm through a temporary local verifying mirror.
    Install(install::Args),
    /// Run `carton install` or `carton update` through a temporary local
    /// verifying mirror, with carton's fallback mirrors removed.
    Carton(carton::Args),
    /// Install modules with CPAN.pm through a temporary local verifying
    /// mirror (your CPAN.pm configuration, with the mirror settings overridden).
    Cpan(cpan::Args),
    /// Write a verified file:// mirror (for CI and air-gapped hosts).
    Mirror(mirror::Args),
}

/// Shared context for subcommands.
pub struct Ctx {
    pub home: PathBuf,
    pub fetch: FetchConfig,
    pub quiet: bool,
}

impl Ctx {
    pub fn session(&self) -> Result<Session> {
        let mut s = Session::open(&self.home, self.fetch.clone())?;
        s.on_warning = Box::new(|w| eprintln!("cpantuf: warning: {w}"));
        s.on_notice = Box::new(|n| eprintln!("cpantuf: {n}"));
        Ok(s)
    }
}

pub fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CPANTUF_LOG")
                .unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, never into a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

pub fn run(args: Args) -> Result<i32> {
    let fetch = FetchConfig {
        read_timeout: Duration::from_secs(args.timeout),
        ca_cert: args.ca_cert.clone(),
        ..FetchConfig::default()
    };
    let ctx = Ctx {
        home: args.home.clone().unwrap_or_else(default_home),
        fetch,
        quiet: args.quiet,
    };
    match args.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Refresh(a) => refresh::run(&ctx, a),
        Command::Resolve(a) => resolve::run(&ctx, a),
        Command::Fetch(a) => fetch::run(&ctx, a),
        Command::Serve(a) => serve::run(&ctx, a),
        Command::Install(a) => install::run(&ctx, a),
        Command::Carton(a) => carton::run(&ctx, a),
        Command::Cpan(a) => cpan::run(&ctx, a),
        Command::Mirror(a) => mirror::run(&ctx, a),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
