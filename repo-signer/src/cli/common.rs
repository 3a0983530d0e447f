//! What several subcommands share: the config and key arguments, the
//! passphrase, progress bars, logging.

use anyhow::{bail, Context, Result};
use cpantuf_core::crypto::Ed25519Signer;
use cpantuf_repo_signer::config::{load_signer, SignerConfig};
use cpantuf_repo_signer::ops::{Ctx, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// The options of every command that works on a configured repository.
#[derive(clap::Args, Debug)]
pub struct RepoArgs {
    /// The signer configuration written by `init`.
    #[arg(long, short, env = "CPANTUF_SIGN_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// An offline key (root or targets) for this run; repeat for several.
    #[arg(long = "key", value_name = "PEM")]
    pub keys: Vec<PathBuf>,
    #[command(flatten)]
    pub pass: PassArgs,
}

/// Where the passphrase of encrypted key files comes from.
#[derive(clap::Args, Debug)]
pub struct PassArgs {
    /// Read the passphrase of encrypted key files from this file (first
    /// line). The environment variable CPANTUF_SIGN_PASSPHRASE also works;
    /// with neither, it is asked on the terminal (not echoed) when a key is
    /// encrypted.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

impl PassArgs {
    /// The passphrase given by --passphrase-file or CPANTUF_SIGN_PASSPHRASE.
    fn given(&self) -> Result<Option<String>> {
        if let Some(p) = &self.passphrase_file {
            let s = std::fs::read_to_string(p)
                .with_context(|| format!("reading passphrase file {}", p.display()))?;
            return Ok(Some(s.lines().next().unwrap_or("").to_owned()));
        }
        Ok(std::env::var("CPANTUF_SIGN_PASSPHRASE").ok())
    }

    /// The passphrase for `keys`: the one given, else (only when one of them is
    /// encrypted) asked on the terminal without echo.
    pub fn for_keys<'a>(&self, keys: impl IntoIterator<Item = &'a Path>) -> Result<Option<String>> {
        if let Some(p) = self.given()? {
            return Ok(Some(p));
        }
        match keys.into_iter().find(|k| is_encrypted(k)) {
            Some(k) => ask(k, &format!("Passphrase for {}: ", k.display())).map(Some),
            None => Ok(None),
        }
    }

    /// The passphrase to encrypt a new key with: the one given, else asked
    /// twice on the terminal without echo.
    pub fn for_new_key(&self, key: &Path) -> Result<String> {
        let pass = match self.given()? {
            Some(p) => p,
            None => {
                let first = ask(key, &format!("New passphrase for {}: ", key.display()))?;
                let again = ask(key, "The same passphrase again: ")?;
                if first != again {
                    bail!("the two passphrases differ: nothing was written");
                }
                first
            }
        };
        if pass.is_empty() {
            bail!("an empty passphrase does not protect {}", key.display());
        }
        Ok(pass)
    }
}

/// Whether a PEM key file holds an encrypted PKCS#8 key.
fn is_encrypted(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|pem| pem.contains("BEGIN ENCRYPTED PRIVATE KEY"))
}

/// Asks on the terminal without echo; with no terminal, says how to give it.
fn ask(key: &Path, prompt: &str) -> Result<String> {
    use std::io::IsTerminal as _;
    if !std::io::stdin().is_terminal() {
        bail!(
            "{} needs a passphrase and there is no terminal to ask on: give \
             --passphrase-file FILE or CPANTUF_SIGN_PASSPHRASE",
            key.display()
        );
    }
    rpassword::prompt_password(prompt).context("reading the passphrase from the terminal")
}

impl RepoArgs {
    /// Loads the config and every key into a run context.
    pub fn ctx(&self) -> Result<Ctx> {
        let cfg = SignerConfig::load(&self.config)
            .with_context(|| format!("loading configuration {}", self.config.display()))?;
        let pass = self.pass.for_keys(self.keys.iter().map(PathBuf::as_path))?;
        let extra = self
            .keys
            .iter()
            .map(|p| load_signer(p, pass.as_deref()))
            .collect::<Result<Vec<Ed25519Signer>, _>>()?;
        Ok(Ctx::new(cfg, extra, chrono::Utc::now())?)
    }
}

/// An indicatif bar behind the core's progress trait; hidden when stderr
/// is not a terminal.
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new() -> Self {
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template("{msg:>22} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("static template")
                .progress_chars("=> "),
        );
        Bar(pb)
    }
    pub fn done(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        self.0.set_message(name.to_owned());
        self.0.set_length(total);
        self.0.set_position(0);
    }
    fn step(&self) {
        self.0.inc(1);
    }
}

/// The crates whose log lines `-v`/`-q` govern.
const OWN_CRATES: &[&str] = &["cpantuf_sign", "cpantuf_repo_signer", "cpantuf_core"];

/// Logging on stderr, the convention of the three tools
/// ([`cpantuf_cli_support::logging`]).
pub fn init_logging(verbose: u8, quiet: bool) {
    cpantuf_cli_support::logging::init(OWN_CRATES, verbose, quiet);
}

/// `signed::add_signature` for one role type.
pub type AddSignature =
    fn(
        &cpantuf_repo_signer::signed::SignedFile,
        &cpantuf_core::crypto::Ed25519Signer,
    ) -> Result<cpantuf_repo_signer::signed::SignedFile, cpantuf_repo_signer::RepoError>;

/// Adds the signature of `key` to a prepared role file in place (multi-party
/// signing: each key holder runs this on their own machine). The signed
/// bytes are kept exactly as they are.
pub fn sign_prepared(
    role: &str,
    file: &std::path::Path,
    key: &std::path::Path,
    pass: &PassArgs,
    add_signature: AddSignature,
) -> Result<()> {
    use cpantuf_repo_signer::signed::SignedFile;
    let signer = cpantuf_repo_signer::config::load_signer(key, pass.for_keys([key])?.as_deref())?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let f = SignedFile {
        role: role.into(),
        version: std::num::NonZeroU64::MIN,
        bytes,
    };
    let signed = add_signature(&f, &signer)?;
    std::fs::write(file, &signed.bytes).with_context(|| format!("writing {}", file.display()))?;
    println!("signed {} with key {}", file.display(), signer.keyid());
    Ok(())
}
