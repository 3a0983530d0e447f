//! `author ...`: authors who hold their own key (claimed authors).
//!
//! PAUSE runs `export`, `import` (with `--claim-key` to claim or rotate) and
//! `revoke`; the author runs `sign` on their own machine.

use crate::common::{PassArgs, RepoArgs};
use anyhow::{Context, Result};
use cpantuf_core::cpan::PauseId;
use cpantuf_core::metadata::Targets;
use cpantuf_repo_signer::config::{load_public_key, load_signer};
use cpantuf_repo_signer::ops;
use cpantuf_repo_signer::signed::{self, SignedFile};
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// (PAUSE) Write the unsigned role of an author's current files.
    Export {
        #[command(flatten)]
        repo: RepoArgs,
        /// The PAUSE id.
        author: PauseId,
        /// Where to write the proposal.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// (Author) Sign a role file in place with your key.
    Sign {
        /// The role file from `export`.
        file: PathBuf,
        /// Your private key.
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
    },
    /// (PAUSE) Check an author-signed role and publish it unchanged.
    Import {
        #[command(flatten)]
        repo: RepoArgs,
        /// The PAUSE id.
        author: PauseId,
        /// The file the author uploaded, ID.role.json from `cpantuf author`:
        /// their signed role, or the roles of a split one (`{"roles": ...}`).
        file: PathBuf,
        /// Register this public key for the author first (claim or
        /// rotation); the file must be signed by it.
        #[arg(long, value_name = "PEM")]
        claim_key: Option<PathBuf>,
        /// With --claim-key: replace a claimed author's key without the old key's
        /// signature (the author lost it; authenticate them first).
        #[arg(long, requires = "claim_key")]
        recover: bool,
        #[command(flatten)]
        ceremony: Ceremony,
    },
    /// (PAUSE) Take an author back to PAUSE's key.
    Revoke {
        #[command(flatten)]
        repo: RepoArgs,
        /// The PAUSE id.
        author: PauseId,
        #[command(flatten)]
        ceremony: Ceremony,
    },
}

/// How a claim, a new key or a revocation gets the top-level targets role signed: with the
/// targets keys given (--key), or in an offline ceremony.
#[derive(clap::Args, Debug)]
struct Ceremony {
    /// Write the new top-level targets role unsigned to FILE for the targets key holders
    /// (`cpantuf-sign targets sign FILE --key KEY`, each on their own machine) and publish
    /// nothing. The upload is checked first.
    #[arg(long, value_name = "FILE", conflicts_with = "targets_signed")]
    prepare_targets: Option<PathBuf>,
    /// Use this prepared targets file, signed by enough targets key holders, instead of
    /// targets keys given with --key (run the same command again with it).
    #[arg(long, value_name = "FILE")]
    targets_signed: Option<PathBuf>,
}

impl Ceremony {
    fn signing(&self) -> Result<ops::TargetsSigning> {
        Ok(match (&self.prepare_targets, &self.targets_signed) {
            (Some(_), _) => ops::TargetsSigning::Prepare,
            (None, Some(f)) => ops::TargetsSigning::Signed(
                std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
            ),
            (None, None) => ops::TargetsSigning::Keys,
        })
    }

    /// Prints what was published, or writes the prepared file and says what comes next.
    fn report(&self, r: ops::AuthorChange, done: impl FnOnce(ops::AddReport)) -> Result<()> {
        let prepared = match r {
            ops::AuthorChange::Published(r) => {
                done(r);
                return Ok(());
            }
            ops::AuthorChange::Prepared(f) => f,
        };
        let out = self
            .prepare_targets
            .as_ref()
            .expect("prepared only when asked");
        std::fs::write(out, &prepared.bytes)
            .with_context(|| format!("writing {}", out.display()))?;
        println!(
            "prepared targets version {} in {} (nothing published); each targets key holder \
             runs `cpantuf-sign targets sign {} --key KEY`, then run this command again with \
             --targets-signed {} instead of --prepare-targets",
            prepared.version,
            out.display(),
            out.display(),
            out.display()
        );
        Ok(())
    }
}

pub fn run(a: Args) -> Result<ExitCode> {
    match a.cmd {
        Cmd::Export { repo, author, out } => {
            let ctx = repo.ctx()?;
            let f = ops::author_export(&ctx, &author)?;
            std::fs::write(&out, &f.bytes).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "wrote unsigned {} version {} to {}",
                f.role,
                f.version,
                out.display()
            );
        }
        Cmd::Sign { file, key, pass } => {
            let signer = load_signer(&key, pass.for_keys([key.as_path()])?.as_deref())?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let f = SignedFile {
                role: "author".into(),
                version: NonZeroU64::MIN,
                bytes,
            };
            let t = f.envelope::<Targets>()?;
            for path in t.unverified().targets.keys() {
                println!("  {path}");
            }
            let signed = signed::add_signature::<Targets>(&f, &signer)?;
            std::fs::write(&file, &signed.bytes)
                .with_context(|| format!("writing {}", file.display()))?;
            println!(
                "signed version {} ({} files) with key {}",
                t.unverified().version,
                t.unverified().targets.len(),
                signer.keyid()
            );
        }
        Cmd::Import {
            repo,
            author,
            file,
            claim_key,
            recover,
            ceremony,
        } => {
            let ctx = repo.ctx()?;
            let key = claim_key.map(|p| load_public_key(&p, None)).transpose()?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let how = ceremony.signing()?;
            let r = ops::author_import(&ctx, &author, bytes, key, recover, how)?;
            ceremony.report(r, |r| {
                println!("published {} ({} files)", r.roles.join(", "), r.files)
            })?;
        }
        Cmd::Revoke {
            repo,
            author,
            ceremony,
        } => {
            let ctx = repo.ctx()?;
            let r = ops::author_revoke(&ctx, &author, ceremony.signing()?)?;
            ceremony.report(r, |r| {
                println!("revoked {author}'s key; re-signed {}", r.roles.join(", "))
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
