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
    m.on_refusal(|r| eprintln!("cpantuf: refused {}: {}", r.path, r.why));
    let url = m.url();
    eprintln!("cpantuf: verifying mirror at {url}");
    eprintln!(
        "cpantuf: a client must use it as its only source, with no proxy for 127.0.0.1: \
         `cpanm --from {url}`; `cpm install --no-prebuilt --resolver 02packages,{url} --no-default-resolvers`; \
         carton and CPAN.pm fall back to other sources: use `cpantuf carton` and `cpantuf cpan` (docs/users.md)"
    );
    m.wait();
    Ok(0)
}
