//! `cpantuf`: verified CPAN downloads and installs for Perl users.
//!
//! `main` parses, runs and reports; each subcommand lives in `cli/`.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Args::parse();
    cli::init_logging(args.verbose, args.quiet);
    let code = match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cpantuf: error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
