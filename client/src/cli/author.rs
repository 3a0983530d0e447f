//! `cpantuf author ...`: an author who holds their own key signs their role on their own
//! machine (docs/authors.md, ADR 0017).

use super::Ctx;
use anyhow::{bail, Context, Result};
use chrono::Utc;
use cpantuf_client::author::bins::{earliest_expiry, listed, plan, Change, Roles};
use cpantuf_client::author::next::{expiry, DEFAULT_LIFETIME_DAYS};
use cpantuf_client::author::status::{checksums_names, compare};
use cpantuf_client::author::{envelope, local, AuthorError};
use cpantuf_client::session::{AuthorRole, Session, SessionError};
use cpantuf_client::updater::ClientError;
use cpantuf_core::cpan::{CpanPath, PauseId};
use cpantuf_core::crypto::Ed25519Signer;
use cpantuf_core::metadata::expiry::format as fmt_time;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Where the passphrase of the author's key comes from.
#[derive(clap::Args, Debug)]
struct Pass {
    /// Read the key's passphrase from this file (first line). CPANTUF_AUTHOR_PASSPHRASE also
    /// works; with neither it is asked on the terminal, not echoed.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

/// The role file to write and how long it lives.
#[derive(clap::Args, Debug)]
struct Out {
    /// Days until the signed role expires (1 to 365; PAUSE refuses more than its maximum,
    /// one year by default). Your files stay installable until then: renew before.
    #[arg(long, default_value_t = DEFAULT_LIFETIME_DAYS, value_name = "DAYS")]
    days: i64,
    /// Directory to write ID.role.json into (default: beside the first file, or here).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Split your role into 2^BITS hash bins signed by your key (1 to 12), so that a client
    /// fetches only the bins of the files it installs and a release re-signs one bin. PAUSE
    /// asks for it above its bin threshold. A split role stays split.
    #[arg(long, value_name = "BITS")]
    bins: Option<u32>,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Make your key: a passphrase-protected PKCS#8 file, and its public half beside it.
    Keygen {
        /// The private key file to write (NAME.pem; NAME.pub.pem is its public key).
        #[arg(value_name = "OUT.pem")]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        pass: Pass,
    },
    /// Ask PAUSE to register your key: signs your current role (the files PAUSE lists for you,
    /// verified through TUF) with it, as the proof that you hold the key.
    Claim {
        /// Your PAUSE id.
        id: PauseId,
        /// Your (new) private key.
        #[arg(long)]
        key: PathBuf,
        /// Rotation: the key your role is delegated to now, which signs the request too
        /// (its passphrase comes from the same place as --key's).
        #[arg(long, value_name = "OLD.pem")]
        old_key: Option<PathBuf>,
        #[command(flatten)]
        out: Out,
        #[command(flatten)]
        pass: Pass,
    },
    /// Sign a release: your published role (fetched and verified through TUF) plus the
    /// tarballs given, hashed here, at the next version. Upload ID.role.json with them.
    Release {
        /// Your PAUSE id.
        id: PauseId,
        /// The tarballs to release (their names are their names on CPAN).
        files: Vec<PathBuf>,
        /// Also drop this file (its name, or its CPAN path) from the role.
        #[arg(long, value_name = "FILE")]
        remove: Vec<String>,
        /// Your private key.
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        out: Out,
        #[command(flatten)]
        pass: Pass,
    },
    /// Sign the same files again with a new expiry, at the next version.
    Renew {
        /// Your PAUSE id.
        id: PauseId,
        /// Your private key.
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        out: Out,
        #[command(flatten)]
        pass: Pass,
    },
    /// What the repository publishes for you: the files your role lists, files in your
    /// directory it does not (waiting for your signature, or not yours), your local tarballs
    /// that differ, and when the role expires. Exits 1 when a file in your directory is not
    /// signed by you, a local tarball differs, or the role is not delegated to --key.
    Status {
        /// Your PAUSE id.
        id: PauseId,
        /// Your directory of built tarballs, compared with what your role lists.
        #[arg(long, value_name = "DIST_DIR")]
        dir: Option<PathBuf>,
        /// Your public (or private) key file, to check the role is delegated to it.
        #[arg(long)]
        key: Option<PathBuf>,
        #[command(flatten)]
        pass: Pass,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    match a.cmd {
        Cmd::Keygen { out, force, pass } => keygen(&out, force, &pass),
        Cmd::Claim {
            id,
            key,
            old_key,
            out,
            pass,
        } => {
            let key = load_key(&key, &pass)?;
            let old = old_key.map(|k| load_key(&k, &pass)).transpose()?;
            let mut s = ctx.session()?;
            let role = published(&mut s, &id)?;
            if role.keyids.contains(key.keyid()) {
                bail!("{} is already delegated to key {}", role.name, key.keyid());
            }
            if let Some(old) = &old {
                own_role_check(&role, old)?;
            }
            let c = Change {
                add: &[],
                remove: &[],
                expires: expiry(Utc::now(), out.days)?,
                everything: true,
            };
            let roles = plan(&id, &role, key.public_key(), out.bins, &c)?;
            let file = write_roles(&id, &role, &roles, &key, old.as_ref(), &out, None)?;
            println!(
                "wrote {} ({}; key {}); send it and your public key to PAUSE from your PAUSE \
                 account, which registers the key with `cpantuf-sign author import -c CFG {id} \
                 {} --claim-key KEY.pub.pem`",
                file.display(),
                summary(&roles),
                key.keyid(),
                file.file_name().unwrap_or_default().to_string_lossy()
            );
            Ok(0)
        }
        Cmd::Release {
            id,
            files,
            remove,
            key,
            out,
            pass,
        } => {
            if files.is_empty() && remove.is_empty() {
                bail!("nothing to release: give tarballs, or --remove FILE");
            }
            let key = load_key(&key, &pass)?;
            let add = files
                .iter()
                .map(|f| local::hash(&id, f))
                .collect::<Result<Vec<_>, _>>()?;
            let remove = remove
                .iter()
                .map(|r| removal_path(&id, r))
                .collect::<Result<Vec<_>>>()?;
            let mut s = ctx.session()?;
            let role = own_role(&mut s, &id, &key)?;
            let c = Change {
                add: &add,
                remove: &remove,
                expires: expiry(Utc::now(), out.days)?,
                everything: false,
            };
            let roles = plan(&id, &role, key.public_key(), out.bins, &c)?;
            let beside = files.first().and_then(|f| f.parent());
            let file = write_roles(&id, &role, &roles, &key, None, &out, beside)?;
            for f in &add {
                println!("  + {}", f.path);
            }
            for p in &remove {
                println!("  - {p}");
            }
            report_written(&file, &roles);
            Ok(0)
        }
        Cmd::Renew { id, key, out, pass } => {
            let key = load_key(&key, &pass)?;
            let mut s = ctx.session()?;
            let role = own_role(&mut s, &id, &key)?;
            let c = Change {
                add: &[],
                remove: &[],
                expires: expiry(Utc::now(), out.days)?,
                everything: true,
            };
            let roles = plan(&id, &role, key.public_key(), out.bins, &c)?;
            let file = write_roles(&id, &role, &roles, &key, None, &out, None)?;
            report_written(&file, &roles);
            Ok(0)
        }
        Cmd::Status { id, dir, key, pass } => status(ctx, &id, dir.as_deref(), key, &pass),
    }
}

fn report_written(file: &Path, roles: &Roles) {
    let expires = roles.first().map(|(_, t)| fmt_time(&t.expires));
    println!(
        "wrote {} ({}, expires {}): upload it with the tarballs",
        file.display(),
        summary(roles),
        expires.unwrap_or_default()
    );
}

/// "author-ETHER version 4, 12 files" or "3 roles: author-ETHER-1 version 2 (5 files), ...".
fn summary(roles: &Roles) -> String {
    if let [(name, t)] = roles.as_slice() {
        return format!("{name} version {}, {} files", t.version, t.targets.len());
    }
    let each: Vec<String> = roles
        .iter()
        .map(|(n, t)| format!("{n} version {} ({} files)", t.version, t.targets.len()))
        .collect();
    format!("{} roles: {}", roles.len(), each.join(", "))
}

/// Signs `roles` with `key` (the author's role also with `old`, in a rotation) and writes
/// them as ID.role.json: the role's envelope when it is the only one, else a bundle.
fn write_roles(
    id: &PauseId,
    role: &AuthorRole,
    roles: &Roles,
    key: &Ed25519Signer,
    old: Option<&Ed25519Signer>,
    out: &Out,
    beside: Option<&Path>,
) -> Result<PathBuf> {
    let signed: Vec<(String, Vec<u8>)> = roles
        .iter()
        .map(|(name, t)| {
            let signers: Vec<&Ed25519Signer> = if *name == role.name {
                std::iter::once(key).chain(old).collect()
            } else {
                vec![key]
            };
            (name.clone(), envelope::sign_with(t, &signers))
        })
        .collect();
    let bytes = match signed.as_slice() {
        [(name, one)] if *name == role.name => one.clone(),
        _ => envelope::bundle(&signed),
    };
    write_role(id, out, beside, &bytes)
}

/// The author's role as published, verified through TUF.
fn published(s: &mut Session, id: &PauseId) -> Result<AuthorRole> {
    let role = s.author_role(id)?.with_context(|| {
        format!(
            "unknown id: the repository delegates no role to {id} (not a PAUSE id, or no upload \
             yet)"
        )
    })?;
    let expires = earliest_expiry(&role);
    if expires <= Utc::now() {
        eprintln!(
            "cpantuf: {} (or one of its bins) expired at {}: clients refuse your files until \
             PAUSE publishes the version you sign now",
            role.name,
            fmt_time(&expires)
        );
    }
    Ok(role)
}

/// The author's role, which must be delegated to `key` (the author claimed with it).
fn own_role(s: &mut Session, id: &PauseId, key: &Ed25519Signer) -> Result<AuthorRole> {
    let role = published(s, id)?;
    own_role_check(&role, key)?;
    Ok(role)
}

/// Refuses `key` unless `role` is delegated to it.
fn own_role_check(role: &AuthorRole, key: &Ed25519Signer) -> Result<()> {
    if !role.keyids.contains(key.keyid()) {
        return Err(AuthorError::WrongKey {
            role: role.name.clone(),
            published: role
                .keyids
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            given: key.keyid().to_string(),
        }
        .into());
    }
    Ok(())
}

/// A `--remove` argument as a CPAN path in the author's directory.
fn removal_path(id: &PauseId, r: &str) -> Result<CpanPath> {
    let dir = id.author_dir();
    let path = if r.contains('/') {
        r.to_owned()
    } else {
        format!("{}/{r}", dir.as_str())
    };
    let p = CpanPath::new(&path).with_context(|| format!("{r} is not a CPAN path"))?;
    if !p.as_str().starts_with(&format!("{}/", dir.as_str())) {
        return Err(AuthorError::NotYours {
            path,
            why: format!("outside your directory {dir}"),
        }
        .into());
    }
    Ok(p)
}

/// Writes `bytes` to `ID.role.json` in `--out`, else beside the files, else here.
fn write_role(id: &PauseId, out: &Out, beside: Option<&Path>, bytes: &[u8]) -> Result<PathBuf> {
    let dir = out
        .out
        .clone()
        .or_else(|| {
            beside
                .filter(|d| !d.as_os_str().is_empty())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| PathBuf::from("."));
    let file = dir.join(format!("{id}.role.json"));
    cpantuf_client::store::write_atomic(&file, bytes)
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}

fn status(
    ctx: &Ctx,
    id: &PauseId,
    dir: Option<&Path>,
    key: Option<PathBuf>,
    pass: &Pass,
) -> Result<i32> {
    let keyid = key.map(|k| load_public_keyid(&k, pass)).transpose()?;
    let local = match dir {
        Some(d) => local_tarballs(id, d)?,
        None => Vec::new(),
    };
    let mut s = ctx.session()?;
    let role = published(&mut s, id)?;
    let on_mirror = named_on_mirror(&mut s, id)?;
    let r = compare(
        &listed(&role),
        &role.keyids,
        keyid.as_ref(),
        &on_mirror,
        &local,
    );
    let bins = match role.bins.len() {
        0 => String::new(),
        n => format!(" (split into {n} hash bins)"),
    };
    println!(
        "{} version {}{bins}, expires {}, delegated to key {}",
        role.name,
        role.targets.version,
        fmt_time(&earliest_expiry(&role)),
        role.keyids
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    match r.signed_by_key {
        Some(true) => println!("  your key signs it"),
        Some(false) => println!("  NOT your key: PAUSE signs it, or someone else's key does"),
        None => {}
    }
    println!("signed ({}), installable:", r.signed.len());
    for p in &r.signed {
        println!("  {p}");
    }
    let mut problems = 0;
    for (title, list) in [
        (
            "in your directory but not signed by your role (waiting for your signature, or not \
             yours; clients refuse them)",
            &r.not_signed,
        ),
        (
            "local tarballs with other bytes than you signed",
            &r.local_differs,
        ),
        ("local tarballs not released", &r.local_not_released),
    ] {
        if !list.is_empty() {
            problems += list.len();
            println!("{title} ({}):", list.len());
            for p in list {
                println!("  {p}");
            }
        }
    }
    // Local tarballs not released yet are news, not trouble.
    let trouble = problems - r.local_not_released.len();
    Ok(if trouble > 0 || r.signed_by_key == Some(false) {
        1
    } else {
        0
    })
}

/// What the repository's signed index files name in the author's directory: the
/// distributions 02packages maps modules to, and the names PAUSE's CHECKSUMS lists.
fn named_on_mirror(s: &mut Session, id: &PauseId) -> Result<std::collections::BTreeSet<String>> {
    let dir = id.author_dir();
    let mut out: std::collections::BTreeSet<String> = s
        .packages()?
        .dists()
        .into_iter()
        .map(|d| d.cpan_path().as_str().to_owned())
        .filter(|p| p.starts_with(&format!("{}/", dir.as_str())))
        .collect();
    let checksums = CpanPath::new(&format!("{}/CHECKSUMS", dir.as_str())).expect("valid");
    match s.verified(&checksums) {
        Ok((file, _)) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            out.extend(
                checksums_names(&text)
                    .into_iter()
                    .map(|n| format!("{}/{n}", dir.as_str())),
            );
        }
        Err(SessionError::AllMirrorsFailed(f))
            if f.iter()
                .all(|(_, e)| matches!(e, ClientError::TargetNotFound(_))) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(out)
}

/// The tarballs in a local directory, hashed.
fn local_tarballs(id: &PauseId, d: &Path) -> Result<Vec<local::LocalFile>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(d).with_context(|| format!("reading {}", d.display()))?;
    for e in entries {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let dist = [".tar.gz", ".tgz", ".zip", ".tar.bz2", ".tar.xz"];
        if p.is_file() && dist.iter().any(|x| name.ends_with(x)) {
            out.push(local::hash(id, &p)?);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The author's private key, its passphrase asked for when it is encrypted.
fn load_key(path: &Path, pass: &Pass) -> Result<Ed25519Signer> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let passphrase = if pem.contains("BEGIN ENCRYPTED PRIVATE KEY") {
        Some(passphrase(
            pass,
            &format!("Passphrase for {}: ", path.display()),
        )?)
    } else {
        None
    };
    Ed25519Signer::from_pkcs8_pem(&pem, passphrase.as_deref())
        .with_context(|| format!("{}: not your key, or the wrong passphrase", path.display()))
}

/// The key id of a public key file (or of a private key's public half).
fn load_public_keyid(path: &Path, pass: &Pass) -> Result<cpantuf_core::metadata::KeyId> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if pem.contains("BEGIN PUBLIC KEY") {
        let key = cpantuf_core::crypto::ed25519_key_from_public_pem(&pem)
            .with_context(|| format!("{} is not an ed25519 public key", path.display()))?;
        return Ok(cpantuf_core::crypto::compute_keyid(&key));
    }
    Ok(load_key(path, pass)?.keyid().clone())
}

/// The passphrase from --passphrase-file or CPANTUF_AUTHOR_PASSPHRASE, else the terminal.
fn passphrase(pass: &Pass, prompt: &str) -> Result<String> {
    if let Some(f) = &pass.passphrase_file {
        let s = std::fs::read_to_string(f)
            .with_context(|| format!("reading passphrase file {}", f.display()))?;
        return Ok(s.lines().next().unwrap_or("").to_owned());
    }
    if let Ok(p) = std::env::var("CPANTUF_AUTHOR_PASSPHRASE") {
        return Ok(p);
    }
    use std::io::IsTerminal as _;
    if !std::io::stdin().is_terminal() {
        bail!(
            "the key needs a passphrase and there is no terminal to ask on: give \
             --passphrase-file FILE or CPANTUF_AUTHOR_PASSPHRASE"
        );
    }
    rpassword::prompt_password(prompt).context("reading the passphrase from the terminal")
}

/// `author keygen`: a new key, encrypted with a passphrase, and its public half.
fn keygen(out: &Path, force: bool, pass: &Pass) -> Result<i32> {
    let pub_path = out.with_extension("pub.pem");
    let given =
        pass.passphrase_file.is_some() || std::env::var_os("CPANTUF_AUTHOR_PASSPHRASE").is_some();
    let first = passphrase(pass, &format!("New passphrase for {}: ", out.display()))?;
    if !given && first != passphrase(pass, "The same passphrase again: ")? {
        bail!("the two passphrases differ: nothing was written");
    }
    if first.is_empty() {
        bail!("an empty passphrase does not protect {}", out.display());
    }
    let key = Ed25519Signer::generate();
    let pem = key.to_pkcs8_pem(Some(&first))?;
    write_new(out, pem.as_bytes(), 0o600, force)?;
    write_new(&pub_path, key.public_pem().as_bytes(), 0o644, force)?;
    println!(
        "{} {} (public key {})",
        key.keyid(),
        out.display(),
        pub_path.display()
    );
    Ok(0)
}

/// Creates `path` with `mode` (never through a symbolic link: O_EXCL), replacing a regular
/// file only with `force`.
fn write_new(path: &Path, data: &[u8], mode: u32, force: bool) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_symlink() || !force {
            bail!(
                "{} exists{}: nothing was written",
                path.display(),
                if m.file_type().is_symlink() {
                    " as a symbolic link"
                } else {
                    " (use --force to replace it)"
                }
            );
        }
        std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
