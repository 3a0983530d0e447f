//! Command-line interface of `cpantuf`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use cpantuf_client::fetcher::{FetchConfig, FetcherSetupError};
use cpantuf_client::report::Fault;
use cpantuf_client::session::{default_home, Session, SessionError};
use cpantuf_client::updater::ClientError;
use std::path::PathBuf;
use std::time::Duration;

mod author;
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
mod status;
mod through_mirror;

/// The exit statuses, at the end of every `--help` (the text of
/// [`cpantuf_client::report::EXIT_STATUS_HELP`], which a test keeps equal).
macro_rules! exit_status_help {
    () => {
        "Exit status: 0 success; 1 refused by verification (an attack, or a stale or broken mirror); 2 usage (or the client home is not initialised); 3 no mirror could be reached or answered (network, HTTP, timeout); 4 not found (no such module or file on CPAN); 5 local error (disk, client home, configuration). install, carton and cpan end with the CPAN client's own status when it failed and cpantuf refused nothing."
    };
}

/// Verified CPAN downloads: every file passes The Update Framework's checks
/// (signatures, versions, expiry, hashes) before cpanm, CPAN.pm or cpm sees it.
#[derive(Parser, Debug)]
#[command(
    name = "cpantuf",
    version,
    after_help = concat!(
        "Start with `cpantuf init https://MIRROR/ --root root.json`, then `cpantuf install Moo`.\n",
        "Environment: CPANTUF_HOME (client home, default ~/.cpantuf), CPANTUF_LOG (log filter,\n",
        "overrides -v/-q), https_proxy / http_proxy / no_proxy (for cpantuf's own downloads; the\n",
        "CPAN clients it runs get no proxy but the verifying mirror).\n\n",
        exit_status_help!()
    )
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
    #[command(after_help = concat!(
        "System-wide trust, for shared machines: `sudo cpantuf --home /etc/cpantuf init URL --root \
         root.json` (or a home named by CPANTUF_SYSTEM_TRUST). A user's home that was never \
         initialised starts from it (its mirrors and trusted root) and then updates on its own.\n\n",
        exit_status_help!()
    ))]
    Init(init::Args),
    /// Update trusted metadata (root, timestamp, snapshot, targets).
    #[command(after_help = exit_status_help!())]
    Refresh(refresh::Args),
    /// Show which distribution provides a module, and who signed it.
    #[command(after_help = exit_status_help!())]
    Resolve(resolve::Args),
    /// Download and verify a module's distribution (or a CPAN path); print where it is.
    #[command(after_help = exit_status_help!())]
    Fetch(fetch::Args),
    /// Run a local verifying CPAN mirror on 127.0.0.1 for cpanm, CPAN.pm or cpm.
    #[command(after_help = exit_status_help!())]
    Serve(serve::Args),
    /// Install modules with cpanm through a temporary local verifying mirror.
    #[command(after_help = exit_status_help!())]
    Install(install::Args),
    /// Run `carton install` or `carton update` through a temporary local
    /// verifying mirror, with carton's fallback mirrors removed.
    #[command(after_help = exit_status_help!())]
    Carton(carton::Args),
    /// Install modules with CPAN.pm through a temporary local verifying
    /// mirror (your CPAN.pm configuration, with the mirror settings overridden).
    #[command(after_help = exit_status_help!())]
    Cpan(cpan::Args),
    /// Write a verified file:// mirror (for CI and air-gapped hosts).
    #[command(after_help = exit_status_help!())]
    Mirror(mirror::Args),
    /// What this home trusts (root version, keys, each role's version and
    /// expiry), when each mirror last answered, the cache's size; offline.
    #[command(after_help = exit_status_help!())]
    Status(status::Args),
    /// For CPAN authors who hold their own key: make it, claim your role, sign your releases
    /// on your machine, and check what the repository publishes for you (docs/authors.md).
    #[command(after_help = exit_status_help!())]
    Author(author::Args),
    /// Write man pages or print shell completions, generated from this
    /// command line's definition.
    #[command(subcommand, after_help = exit_status_help!())]
    Generate(cpantuf_cli_support::generate::Generate),
}

/// Shared context for subcommands.
pub struct Ctx {
    pub home: PathBuf,
    pub fetch: FetchConfig,
    pub quiet: bool,
}

impl Ctx {
    pub fn session(&self) -> Result<Session> {
        let system = cpantuf_client::home::system_trust_dir();
        if cpantuf_client::home::adopt_system_trust(&self.home, &system)? && !self.quiet {
            eprintln!(
                "cpantuf: {} starts from the system-wide trust in {} (`cpantuf init --force` \
                 replaces it for this home)",
                self.home.display(),
                system.display()
            );
        }
        let mut s = Session::open(&self.home, self.fetch.clone())?;
        if self.quiet {
            // -q: only errors.
            s.on_warning = Box::new(|_| {});
            s.on_notice = Box::new(|_| {});
        } else {
            s.on_warning = Box::new(|w| eprintln!("cpantuf: warning: {w}"));
            s.on_notice = Box::new(|n| eprintln!("cpantuf: {n}"));
        }
        Ok(s)
    }
}

/// The crates whose log lines `-v`/`-q` govern.
const OWN_CRATES: &[&str] = &["cpantuf", "cpantuf_client", "cpantuf_core"];

/// Logging on stderr, the convention of the three tools
/// ([`cpantuf_cli_support::logging`]).
pub fn init_logging(verbose: u8, quiet: bool) {
    cpantuf_cli_support::logging::init(OWN_CRATES, verbose, quiet);
}

/// Whose failure an error is, from the first error in its chain that
/// knows; errors of the command line itself are usage errors.
pub fn fault_of(e: &anyhow::Error) -> Fault {
    for cause in e.chain() {
        if let Some(s) = cause.downcast_ref::<SessionError>() {
            return s.fault();
        }
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            return c.fault();
        }
        if let Some(a) = cause.downcast_ref::<cpantuf_client::author::AuthorError>() {
            return match a {
                cpantuf_client::author::AuthorError::Io { .. } => Fault::Local,
                _ => Fault::Usage,
            };
        }
        if cause.is::<cpanm_args::Usage>() {
            return Fault::Usage;
        }
        if cause.is::<init::PinMismatch>() {
            return Fault::Refused;
        }
        if cause.is::<FetcherSetupError>() || cause.is::<std::io::Error>() {
            return Fault::Local;
        }
    }
    Fault::Usage
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
        Command::Status(a) => status::run(&ctx, a),
        Command::Author(a) => author::run(&ctx, a),
        Command::Generate(what) => {
            use clap::CommandFactory;
            cpantuf_cli_support::generate::run(&what, Args::command())?;
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }

    /// Scripts could not tell a refusal from a network failure: every
    /// command's help now documents the exit statuses.
    #[test]
    fn every_commands_help_documents_the_exit_statuses() {
        use clap::CommandFactory;
        assert_eq!(
            exit_status_help!(),
            cpantuf_client::report::EXIT_STATUS_HELP
        );
        let mut cmd = super::Args::command();
        let root = cmd.render_help().to_string();
        assert!(root.contains("3 no mirror could be reached"), "{root}");
        for sub in cmd.get_subcommands_mut().filter(|s| s.get_name() != "help") {
            let help = sub.render_help().to_string();
            assert!(
                help.contains("Exit status: 0 success; 1 refused by verification"),
                "{}: {help}",
                sub.get_name()
            );
        }
    }

    /// Man pages were missing: one is generated for every command.
    #[test]
    fn a_man_page_is_generated_for_every_command() {
        use clap::CommandFactory;
        let dir = tempfile::tempdir().unwrap();
        let pages =
            cpantuf_cli_support::generate::man_pages(dir.path(), super::Args::command()).unwrap();
        for name in [
            "cpantuf.1",
            "cpantuf-init.1",
            "cpantuf-status.1",
            "cpantuf-install.1",
        ] {
            assert!(pages.iter().any(|p| p.ends_with(name)), "{name}: {pages:?}");
        }
    }
}
