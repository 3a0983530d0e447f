//! `cpantuf cpan Module...`: CPAN.pm through a temporary local verifying
//! mirror, with the user's CPAN.pm configuration overridden for the run
//! where it would reach another source:
//!
//! * `pushy_https` off: when on, CPAN.pm ignores `urllist` and downloads
//!   from `https://cpan.org/`;
//! * `urllist` is the verifying mirror alone (an empty one makes CPAN.pm
//!   fall back on its built-in sites) and `connect_to_internet_ok` is off;
//! * no proxy from the configuration, and the client is confined like
//!   cpanm (`through_mirror::confine`);
//! * the index, CHECKSUMS and tarballs go to a fresh `keep_source_where`,
//!   with no metadata cache, SQLite index or reused build directory, so
//!   nothing CPAN.pm kept from an earlier (perhaps unverified) session
//!   stands in for what the mirror refuses.
//!
//! Nothing is written back to the configuration (`auto_commit` off).

use super::cpanm_args::{check_module, Usage};
use super::through_mirror::{confine, run_client};
use super::Ctx;
use anyhow::Result;
use cpantuf_client::local_mirror::LocalMirror;
use std::process::Command;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Module names (Try::Tiny) or CPAN distribution paths (ETHER/Try-Tiny-0.31.tar.gz).
    #[arg(required = true)]
    modules: Vec<String>,
    /// Install even if up to date (CPAN.pm's `force install`).
    #[arg(long)]
    force: bool,
    /// perl whose CPAN.pm to run.
    #[arg(long, default_value = "perl", value_name = "PROGRAM")]
    perl: String,
    /// Address of the temporary verifying mirror (loopback; port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    listen: String,
}

/// Loads the user's configuration, overrides the source settings, installs
/// each module and exits 1 unless every one ended installed or up to date.
const CONFINED_CPAN: &str = r#"
use strict;
use warnings;
use CPAN;
use File::Temp ();
my ($url, $force, @modules) = @ARGV;
CPAN::HandleConfig->load;
my $sources = File::Temp::tempdir("cpantuf-cpan-XXXXXX", TMPDIR => 1, CLEANUP => 1);
my %only_the_verifying_mirror = (
    urllist => [$url], pushy_https => 0, randomize_urllist => 0,
    connect_to_internet_ok => 0,
    http_proxy => '', https_proxy => '', ftp_proxy => '', no_proxy => '127.0.0.1',
    keep_source_where => $sources, cache_metadata => 0, use_sqlite => 0,
    build_dir_reuse => 0, auto_commit => 0,
);
@{$CPAN::Config}{keys %only_the_verifying_mirror} = values %only_the_verifying_mirror;
my @failed;
for my $m (@modules) {
    if ($force) { CPAN::Shell->force('install', $m) } else { CPAN::Shell->install($m) }
    my ($mo, $d);
    if ($m =~ m{/}) {
        $d = CPAN::Shell->expand('Distribution', $m);
    } else {
        $mo = CPAN::Shell->expand('Module', $m);
        $d = $mo && $mo->distribution;
    }
    my $ok = $d && $d->{install} ? !$d->{install}->failed : $mo && $mo->uptodate;
    push @failed, $m unless $ok;
}
print STDERR "cpantuf: CPAN.pm did not install: @failed\n" if @failed;
exit(@failed ? 1 : 0);
"#;

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    for m in &args.modules {
        if let Err(Usage(msg)) = check_module(m) {
            eprintln!("cpantuf: error: {msg}");
            return Ok(2);
        }
    }
    let mirror = LocalMirror::start(ctx.session()?, &args.listen, 2)?;
    let url = mirror.url();
    if !ctx.quiet {
        eprintln!("cpantuf: verifying mirror at {url}; running CPAN.pm");
    }
    let mut cmd = Command::new(&args.perl);
    cmd.arg("-e")
        .arg(CONFINED_CPAN)
        .arg("--")
        .arg(&url)
        .arg(if args.force { "1" } else { "0" })
        .args(&args.modules);
    confine(&mut cmd, &url);
    run_client(ctx, mirror, "CPAN.pm", cmd)
}
