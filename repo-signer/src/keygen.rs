//! `keygen`: an ed25519 key pair as PKCS#8 PEM files openssl can read.

use crate::common::PassArgs;
use anyhow::{bail, Context, Result};
use cpantuf_core::repo::config::generate_key;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The private key file to write (NAME.pem); the public key goes to
    /// NAME.pub.pem beside it.
    #[arg(value_name = "OUT.pem")]
    out: PathBuf,
    /// Encrypt the private key with the passphrase from --passphrase-file or
    /// CPANTUF_SIGN_PASSPHRASE.
    #[arg(long)]
    encrypt: bool,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    pass: PassArgs,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let pub_path = a.out.with_extension("pub.pem");
    for p in [&a.out, &pub_path] {
        if p.exists() && !a.force {
            bail!("{} exists (use --force to replace it)", p.display());
        }
    }
    let pass = if a.encrypt {
        let p = a.pass.get()?;
        if p.as_deref().is_none_or(str::is_empty) {
            bail!("--encrypt needs a passphrase (--passphrase-file or CPANTUF_SIGN_PASSPHRASE)");
        }
        p
    } else {
        None
    };
    let (key, pem) = generate_key(pass.as_deref())?;
    write_private(&a.out, pem.as_bytes())
        .with_context(|| format!("writing {}", a.out.display()))?;
    std::fs::write(&pub_path, key.public_pem())
        .with_context(|| format!("writing {}", pub_path.display()))?;
    println!("{} {}", key.keyid(), a.out.display());
    Ok(ExitCode::SUCCESS)
}

fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}
