//! `cpantuf carton install|update [carton args]`: carton through a
//! temporary local verifying mirror, unable to fall back.
//!
//! Carton (Carton::Builder::effective_mirrors) always puts
//! `http://cpan.metacpan.org/` and `http://backpan.perl.org/` behind
//! `PERL_CARTON_MIRROR`, and its cpanm (Menlo) follows a cpanfile's
//! `url`/`dist`+`mirror` options wherever they point: a file the verifying
//! mirror refuses, or a module missing from its index, would be fetched
//! again from elsewhere, unverified. carton runs Menlo in its own process,
//! so cpantuf runs carton's own code (Carton::CLI) in a perl that first
//! replaces those two decisions:
//!
//! * the mirrors are the verifying mirror alone (and a carton that would
//!   install from anything else, e.g. `--cached`'s vendor directory, stops);
//! * every distribution Menlo resolves must come from the verifying mirror;
//!   git repositories and other URLs are refused before anything is fetched
//!   (the project directory itself, `--installdeps .`, is the user's own).
//!
//! The client is also confined like cpanm (`through_mirror::confine`).

use super::through_mirror::{confine, run_client};
use super::Ctx;
use anyhow::Result;
use cpantuf_client::local_mirror::LocalMirror;
use std::process::Command;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The carton command: `install` (also with --deployment) or `update`.
    /// (`carton exec`, `list`, `tree`... fetch nothing: run them directly.)
    #[arg(value_parser = ["install", "update"])]
    command: String,
    /// perl that has Carton installed.
    #[arg(long, default_value = "perl", value_name = "PROGRAM")]
    perl: String,
    /// Address of the temporary verifying mirror (loopback; port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    listen: String,
    /// Arguments for the carton command, e.g. `--deployment` or modules to update.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    carton_args: Vec<String>,
}

/// Carton::CLI, with Carton's fallback mirrors and Menlo's foreign sources
/// taken away. `$ENV{PERL_CARTON_MIRROR}` is the verifying mirror.
const CONFINED_CARTON: &str = r#"
use strict;
use warnings;
use Carton::CLI;
use Carton::Builder;
use Menlo::CLI::Compat;
my $mirror = $ENV{PERL_CARTON_MIRROR};
(my $base = $mirror) =~ s{/+$}{};
{
    no warnings 'redefine';
    *Carton::Builder::effective_mirrors = sub {
        my $self = shift;
        my $url = $self->mirror->url;
        die "cpantuf: refused: carton would install from $url, which cpantuf does not verify\n"
            unless $url eq $mirror;
        return ($self->mirror);
    };
    my $resolve = \&Menlo::CLI::Compat::resolve_name;
    *Menlo::CLI::Compat::resolve_name = sub {
        my ($self, $module) = @_;
        my $refuse = sub {
            $self->diag_fail("cpantuf: refused $module: $_[0], which cpantuf cannot verify", 1);
            return;
        };
        return $refuse->("a git repository") if $module =~ /(?:^git:|\.git(?:@.+)?$)/;
        my $dist = $resolve->(@_) or return;
        my @uris = @{ $dist->{uris} || [] };
        return $dist if !@uris && ($dist->{source} || '') eq 'local' && $dist->{dir};
        return $refuse->("no source") unless @uris;
        for my $uri (@uris) {
            return $refuse->("it would come from $uri")
                unless index($uri, "$base/authors/id/") == 0;
        }
        return $dist;
    };
}
exit Carton::CLI->new->run(@ARGV);
"#;

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let mirror = LocalMirror::start(ctx.session()?, &args.listen, 2)?;
    let url = mirror.url();
    if !ctx.quiet {
        eprintln!(
            "cpantuf: verifying mirror at {url}; running carton {}",
            args.command
        );
    }
    let mut cmd = Command::new(&args.perl);
    cmd.arg("-e")
        .arg(CONFINED_CARTON)
        .arg("--")
        .arg(&args.command)
        .args(&args.carton_args)
        .env("PERL_CARTON_MIRROR", &url)
        .env("PERL_CPANM_OPT", "");
    confine(&mut cmd, &url);
    run_client(ctx, mirror, "carton", cmd)
}
