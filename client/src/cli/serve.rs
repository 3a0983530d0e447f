//! `cpantuf serve`: the local verifying mirror, in the foreground.

use super::Ctx;
use anyhow::Result;
use cpantuf_client::local_mirror::LocalMirror;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:8231", value_name = "ADDR")]
    listen: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let m = LocalMirror::start(ctx.session()?, &args.listen, 4)?;
    eprintln!(
        "cpantuf: verifying mirror at {} (cpanm --from {0}; CPAN.pm: o conf urllist {0}, o conf pushy_https 0)",
        m.url()
    );
    m.wait();
    Ok(0)
}
