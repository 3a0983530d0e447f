//! `keygen`: an ed25519 key pair as PKCS#8 PEM files openssl can read.

use crate::common::PassArgs;
use anyhow::{bail, Context, Result};
use cpantuf_repo_signer::config::generate_key;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The private key file to write (NAME.pem); the public key goes to
    /// NAME.pub.pem beside it.
    #[arg(value_name = "OUT.pem")]
    out: PathBuf,
    /// Encrypt the private key with the passphrase from --passphrase-file or
    /// CPANTUF_SIGN_PASSPHRASE, else asked twice on the terminal (not echoed).
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
        refuse_symlink(p)?;
        if std::fs::symlink_metadata(p).is_ok() && !a.force {
            bail!("{} exists (use --force to replace it)", p.display());
        }
    }
    let pass = if a.encrypt {
        Some(a.pass.for_new_key(&a.out)?)
    } else {
        None
    };
    let (key, pem) = generate_key(pass.as_deref())?;
    write_new(&a.out, pem.as_bytes(), 0o600, a.force)
        .with_context(|| format!("writing {}", a.out.display()))?;
    write_new(&pub_path, key.public_pem().as_bytes(), 0o644, a.force)
        .with_context(|| format!("writing {}", pub_path.display()))?;
    println!("{} {}", key.keyid(), a.out.display());
    Ok(ExitCode::SUCCESS)
}

/// A symbolic link at a key file's name is refused, dangling or not: the
/// key would land wherever it points (another user's file, a world-readable
/// place), and replacing it silently would hide that someone put it there.
fn refuse_symlink(p: &Path) -> Result<()> {
    if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!(
            "{} is a symbolic link: refusing to write a key through it (remove it, or give \
             the real path)",
            p.display()
        );
    }
    Ok(())
}

/// Writes `data` to `path` as a new file of `mode` (less the umask), which
/// never exists with other permissions or half written: a temporary file
/// created with O_EXCL and that mode in the same directory, synced, then
/// renamed over `path` (`replace`) or linked to it only if nothing is there
/// yet. Neither follows a symbolic link at `path`; an existing file's mode
/// is not inherited.
fn write_new(path: &Path, data: &[u8], mode: u32, replace: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".keygen-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    if replace {
        tmp.persist(path)?;
    } else {
        tmp.persist_noclobber(path)?;
    }
    Ok(())
}
