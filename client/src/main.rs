//! `cpantuf`: verified CPAN downloads and installs for Perl users.
//!
//! `main` parses, runs and reports; each subcommand lives in `cli/`.

mod cli;

use clap::Parser;
use cpantuf_client::report::Fault;

fn main() {
    let args = cli::Args::parse();
    cli::init_logging(args.verbose, args.quiet);
    let code = match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            let fault = cli::fault_of(&e);
            let line = cpantuf_client::report::one_line(e.as_ref());
            match fault {
                Fault::Local => eprintln!("cpantuf: error on this machine: {line}"),
                _ => eprintln!("cpantuf: error: {line}"),
            }
            fault.exit_code()
        }
    };
    std::process::exit(code);
}
