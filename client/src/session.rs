//! A CPAN user's client: configured mirrors with failover, the trusted
//! metadata store, and a cache of verified files laid out like a CPAN
//! mirror. Used by every `cpantuf` subcommand and by the local verifying
//! mirror.
//!
//! Layout of the client home (`~/.cpantuf` or `CPANTUF_HOME`):
//!
//! ```text
//! config.json      mirrors and TLS settings (written by `cpantuf init`)
//! metadata/        trusted TUF metadata (exact bytes, atomically replaced)
//! cache/           verified files at their CPAN paths (authors/id/..., modules/...)
//! ```
//!
//! A mirror is a base URL under which the CPAN tree is served, with the TUF
//! metadata in `tuf/`. When a mirror fails (network, or data that fails
//! verification), the next one is tried and the failure is reported naming
//! the mirror; trusted state never takes anything from the failed attempt.

use crate::fetcher::FetchConfig;
use crate::packages_index;
use crate::report::Fault;
use crate::updater::{ClientError, Updater, UpdaterConfig};
use cpantuf_core::cpan::packages::{PackageEntry, Packages};
use cpantuf_core::cpan::{CpanPath, CpanRole, DistPath, PauseId};
use cpantuf_core::workflow::{FoundTarget, Limits};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The TUF target path of the package index.
pub const PACKAGES_PATH: &str = "modules/02packages.details.txt.gz";
/// The TUF target path of the author list.
pub const MAILRC_PATH: &str = "authors/01mailrc.txt.gz";
/// The TUF target path of the module list stub.
pub const MODLIST_PATH: &str = "modules/03modlist.data.gz";

/// Persistent client settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Mirror base URLs, tried in order.
    pub mirrors: Vec<String>,
    /// CA certificates to trust instead of the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The client home has no configuration.
    #[error(
        "{0} is not initialised: run `cpantuf init MIRROR_URL --root root.json` first (or \
         have the system-wide trust set up: see `cpantuf init --help`)"
    )]
    NotInitialised(PathBuf),
    /// Every mirror failed; each failure is listed, the first reason first.
    #[error("{}", mirror_failures(.0))]
    AllMirrorsFailed(Vec<(String, ClientError)>),
    /// A module is not in the verified package index.
    #[error("module {0} is not in the verified 02packages index")]
    UnknownModule(String),
    /// The verified index itself could not be parsed.
    #[error("verified 02packages could not be parsed: {0}")]
    BadIndex(String),
    /// A path is not a valid CPAN path.
    #[error("{0}")]
    BadPath(String),
    /// The verified index names a file that no role allowed to sign it
    /// lists: the index key and the author's role disagree.
    #[error(
        "the verified index maps {module} to {path}, which is not found in any role allowed to \
         sign it: refused (a compromised index key, or a mirror serving mixed states)"
    )]
    IndexNamesUnsigned {
        /// The module looked up.
        module: String,
        /// The distribution the index names.
        path: String,
    },
    /// This machine failed (disk, home, configuration) while working with
    /// a mirror: no other mirror is tried, since none could help.
    #[error("{}", crate::report::one_line(.0))]
    Local(ClientError),
    /// Local file trouble.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// OS error.
        source: std::io::Error,
    },
}

impl SessionError {
    /// Whose failure this is (see [`crate::report::Fault`]): with several
    /// mirrors, a refusal by any of them outranks the others' network
    /// failures.
    pub fn fault(&self) -> Fault {
        match self {
            SessionError::NotInitialised(_) | SessionError::BadPath(_) => Fault::Usage,
            SessionError::AllMirrorsFailed(list) => {
                let faults: Vec<Fault> = list.iter().map(|(_, e)| e.fault()).collect();
                if faults.contains(&Fault::Refused) {
                    Fault::Refused
                } else {
                    faults.first().copied().unwrap_or(Fault::Usage)
                }
            }
            SessionError::UnknownModule(_) => Fault::NotFound,
            SessionError::BadIndex(_) | SessionError::IndexNamesUnsigned { .. } => Fault::Refused,
            SessionError::Local(_) | SessionError::Io { .. } => Fault::Local,
        }
    }
}

/// A mirror's failure in the user's words: a mirror that cannot be reached
/// is said so without the metadata file it was asked for, and a timestamp
/// that none of the trusted keys signed is a repository mix-up before it is
/// anything else.
fn describe(e: &ClientError) -> String {
    use cpantuf_core::trusted::UpdateError;
    use cpantuf_core::workflow::FetchError;
    match e {
        ClientError::Update(UpdateError::Fetch {
            source: FetchError::Transport(t),
            ..
        }) if t.is::<crate::fetcher::Unreachable>() => t.to_string(),
        ClientError::Update(UpdateError::Signature(t)) if t.role == "timestamp" && t.valid == 0 => {
            format!(
                "this mirror's timestamp is signed by none of the keys your trusted root names: \
                 the mirror serves another repository than the root you trusted, or a forged \
                 timestamp ({t})"
            )
        }
        other => crate::report::one_line(other),
    }
}

/// The reason leads: one mirror, one line; several, the first reason, then
/// one line per other mirror.
fn mirror_failures(list: &[(String, ClientError)]) -> String {
    match list {
        [] => "no mirror is configured".into(),
        [(m, e)] => format!("{} (mirror {m})", describe(e)),
        [(m, e), rest @ ..] => {
            let e = describe(e);
            let others: Vec<String> = rest
                .iter()
                .map(|(m, e)| format!("  mirror {m}: {}", describe(e)))
                .collect();
            format!(
                "{e} (mirror {m}); every other mirror failed too:\n{}",
                others.join("\n")
            )
        }
    }
}

/// The mirrors that failed before one answered, with why.
type MirrorFailures = Vec<(String, ClientError)>;

/// A module resolved through the verified index.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The package name.
    pub package: String,
    /// Its version, `undef` when none.
    pub version: String,
    /// The distribution that provides it.
    pub dist: DistPath,
    /// The TUF role that signs the distribution file.
    pub signed_by: String,
}

/// An open client home.
pub struct Session {
    home: PathBuf,
    config: Config,
    limits: Limits,
    fetch: FetchConfig,
    current: Option<(usize, Updater)>,
    /// Whether operations answer from the stored metadata alone
    /// ([`Session::resolve_cached`]).
    stored_only: bool,
    /// Called with a warning when a mirror is skipped.
    pub on_warning: Box<dyn FnMut(&str) + Send>,
    /// Called with a line when an operation has to wait for another
    /// process's lock on the client home.
    pub on_notice: Box<dyn FnMut(&str) + Send>,
}

pub use crate::home::default_home;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SessionError {
    let what = what.into();
    move |source| SessionError::Io { what, source }
}

/// Normalises a mirror URL to end in `/`.
pub fn mirror_base(url: &str) -> String {
    crate::urls::with_slash(url.trim())
}

impl Session {
    /// Opens an initialised client home.
    pub fn open(home: &Path, fetch: FetchConfig) -> Result<Self, SessionError> {
        let cfg_path = home.join("config.json");
        let bytes =
            std::fs::read(&cfg_path).map_err(|_| SessionError::NotInitialised(home.to_owned()))?;
        let config: Config = serde_json::from_slice(&bytes).map_err(|e| SessionError::Io {
            what: format!("reading {}", cfg_path.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        let mut fetch = fetch;
        if fetch.ca_cert.is_none() {
            if let Some(ca) = &config.ca_cert {
                // The CA is named by the configuration, not by this command:
                // say where to fix it.
                std::fs::metadata(ca).map_err(io(format!(
                    "CA certificate {} named in {}",
                    ca.display(),
                    cfg_path.display()
                )))?;
            }
            fetch.ca_cert = config.ca_cert.clone();
        }
        Ok(Session {
            home: home.to_owned(),
            config,
            limits: Limits::default(),
            fetch,
            current: None,
            stored_only: false,
            on_warning: Box::new(|w| tracing::warn!("{w}")),
            on_notice: Box::new(|n| tracing::info!("{n}")),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The trusted metadata directory.
    pub fn metadata_dir(&self) -> PathBuf {
        self.home.join("metadata")
    }

    /// Where a verified file is cached.
    pub fn cache_path(&self, target: &CpanPath) -> PathBuf {
        let mut p = self.home.join("cache");
        for seg in target.segments() {
            p.push(seg);
        }
        p
    }

    /// An updater that takes no lock of its own: a session may live long
    /// (`cpantuf serve`), so it holds the store's lock only while an
    /// operation runs ([`Session::with_mirrors`]).
    fn updater_for(&self, mirror: &str) -> Result<Updater, ClientError> {
        Updater::unlocked(UpdaterConfig {
            limits: self.limits.clone(),
            fetch: self.fetch.clone(),
            ..UpdaterConfig::for_mirror(self.metadata_dir(), &mirror_base(mirror))
        })
    }

    /// Takes the store's lock for one operation, saying so when another
    /// process holds it.
    fn lock_store(&mut self) -> Result<std::fs::File, SessionError> {
        let store = crate::store::MetadataStore::new(self.metadata_dir());
        let notice = &mut self.on_notice;
        store
            .lock_announcing(|holder| notice(holder))
            .map_err(io(format!("locking {}", store.dir().display())))
    }

    /// Runs `op` against the current mirror, refreshing first; on failure,
    /// moves to the next mirror (with a fresh refresh). The mirrors skipped
    /// are reported (once) when a later one succeeds; when none does, the
    /// error lists them all. The store's lock is held throughout.
    fn with_mirrors<T>(
        &mut self,
        op: impl FnMut(&mut Updater) -> Result<T, ClientError>,
    ) -> Result<T, SessionError> {
        let _lock = self.lock_store()?;
        let result = self.try_mirrors(op);
        self.note_answers(&result);
        if let Ok((_, skipped)) = &result {
            for (mirror, e) in skipped {
                (self.on_warning)(&format!("mirror {mirror} skipped: {e}"));
            }
        }
        result.map(|(v, _)| v)
    }

    /// Records which mirror answered and which failed (for `cpantuf
    /// status`); answers from the stored metadata alone contacted no one.
    fn note_answers<T>(&self, result: &Result<(T, MirrorFailures), SessionError>) {
        if self.stored_only {
            return;
        }
        let failed = |list: &[(String, ClientError)]| -> Vec<(String, String)> {
            list.iter()
                .filter(|(_, e)| matches!(e.fault(), Fault::Mirror | Fault::Refused))
                .map(|(m, e)| (m.clone(), describe(e)))
                .collect()
        };
        let (answered, failures) = match result {
            Ok((_, skipped)) => {
                let i = self.current.as_ref().map(|(i, _)| *i);
                (i.map(|i| self.config.mirrors[i].as_str()), failed(skipped))
            }
            Err(SessionError::AllMirrorsFailed(list)) => (None, failed(list)),
            Err(_) => return,
        };
        crate::mirror_log::MirrorLog::note(&self.home, answered, &failures);
    }

    fn try_mirrors<T>(
        &mut self,
        mut op: impl FnMut(&mut Updater) -> Result<T, ClientError>,
    ) -> Result<(T, MirrorFailures), SessionError> {
        let mut failures = Vec::new();
        let start = self.current.as_ref().map_or(0, |(i, _)| *i);
        for i in start..self.config.mirrors.len() {
            let mirror = self.config.mirrors[i].clone();
            let attempt = (|| {
                if self.current.as_ref().is_none_or(|(j, _)| *j != i) {
                    self.current = None; // releases the store lock first
                    let mut up = self.updater_for(&mirror)?;
                    if self.stored_only {
                        up.load_stored()?;
                    } else {
                        up.refresh()?;
                    }
                    self.current = Some((i, up));
                }
                op(&mut self.current.as_mut().expect("set above").1)
            })();
            match attempt {
                Ok(v) => return Ok((v, failures)),
                Err(ClientError::TargetNotFound(t)) => {
                    // Not found in signed metadata: another mirror serving the
                    // same signed metadata cannot change that.
                    return Err(SessionError::AllMirrorsFailed(vec![(
                        mirror,
                        ClientError::TargetNotFound(t),
                    )]));
                }
                Err(e) if self.stored_only => {
                    // Another mirror would mean the network.
                    self.current = None;
                    return Err(SessionError::AllMirrorsFailed(vec![(mirror, e)]));
                }
                Err(e) if e.fault() == Fault::Local => {
                    // The disk or the home failed: another mirror cannot help.
                    self.current = None;
                    return Err(SessionError::Local(e));
                }
                Err(e) => {
                    self.current = None;
                    failures.push((mirror, e));
                }
            }
        }
        Err(SessionError::AllMirrorsFailed(failures))
    }

    /// Refreshes the top-level metadata from the first mirror that works.
    pub fn refresh(&mut self) -> Result<(), SessionError> {
        self.current = None;
        self.with_mirrors(|_| Ok(()))
    }

    /// Calls `f` with the metadata of the local store, verified again
    /// without any network request (signatures, versions, expiry: expired
    /// metadata is an error). The store's lock is held meanwhile.
    pub fn with_stored<T>(
        &mut self,
        f: impl FnOnce(&cpantuf_core::trusted::TrustedSet) -> T,
    ) -> Result<T, SessionError> {
        let _lock = self.lock_store()?;
        self.current = None;
        let mirror = self.config.mirrors.first().cloned().unwrap_or_default();
        let mut up = self
            .updater_for(&mirror)
            .map_err(|e| SessionError::AllMirrorsFailed(vec![(mirror.clone(), e)]))?;
        match up.load_stored() {
            Ok(()) => Ok(f(up.trusted().expect("loaded above"))),
            Err(e) => Err(SessionError::AllMirrorsFailed(vec![(mirror, e)])),
        }
    }

    /// The client home.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Versions of the trusted top-level roles, for display.
    pub fn trusted_versions(&self) -> Option<[(String, u64); 4]> {
        let (_, up) = self.current.as_ref()?;
        let t = up.trusted()?;
        Some([
            ("root".into(), t.root().version.get()),
            ("timestamp".into(), t.timestamp()?.version.get()),
            ("snapshot".into(), t.snapshot()?.version.get()),
            ("targets".into(), t.targets("targets")?.version.get()),
        ])
    }

    /// Makes sure the cache holds the verified current version of `target`
    /// and returns its path and signed info. Unchanged files are not
    /// downloaded again.
    pub fn verified(&mut self, target: &CpanPath) -> Result<(PathBuf, FoundTarget), SessionError> {
        let dest = self.cache_path(target);
        let found = self.with_mirrors(|up| {
            let found = up.target_info(target.as_str())?;
            if !Updater::is_cached(&found, &dest) {
                if up.is_stored_only() {
                    return Err(ClientError::Io {
                        what: format!("{} is not in the verified cache", target.as_str()),
                        source: std::io::ErrorKind::NotFound.into(),
                    });
                }
                tracing::info!(target = target.as_str(), role = %found.role, "downloading");
                up.download_target(&found, &dest)?;
            }
            Ok(found)
        })?;
        Ok((dest, found))
    }

    /// The verified package index.
    pub fn packages(&mut self) -> Result<Packages, SessionError> {
        let path = CpanPath::new(PACKAGES_PATH).expect("constant path is valid");
        let (file, _) = self.verified(&path)?;
        let f = std::fs::File::open(&file).map_err(io(format!("opening {}", file.display())))?;
        Packages::read_gz(f).map_err(|e| SessionError::BadIndex(e.to_string()))
    }

    /// Resolves a module name through the verified index, and names the
    /// role that signs its distribution.
    pub fn resolve(&mut self, module: &str) -> Result<Resolved, SessionError> {
        let entry = self
            .lookup_package(module)?
            .ok_or_else(|| SessionError::UnknownModule(module.to_owned()))?;
        let target = entry.dist.cpan_path().clone();
        let found = self
            .with_mirrors(|up| up.target_info(target.as_str()))
            .map_err(|e| match e {
                SessionError::AllMirrorsFailed(list)
                    if matches!(list.as_slice(), [(_, ClientError::TargetNotFound(_))]) =>
                {
                    SessionError::IndexNamesUnsigned {
                        module: module.to_owned(),
                        path: target.as_str().to_owned(),
                    }
                }
                other => other,
            })?;
        Ok(Resolved {
            package: entry.package.as_str().to_owned(),
            version: entry
                .version
                .as_ref()
                .map_or("undef".into(), |v| v.as_str().to_owned()),
            dist: entry.dist,
            signed_by: found.role,
        })
    }

    /// [`Session::resolve`] from the verified cache alone, without any
    /// network request, while the stored metadata is unexpired (every
    /// signature, version and expiry check of a refresh applies to the
    /// stored copies). When the cache cannot answer (expired metadata, or a
    /// file or role never downloaded, or a module it does not list), the
    /// answer comes from a normal refresh instead. The flag says whether
    /// the answer came from the cache offline.
    pub fn resolve_cached(&mut self, module: &str) -> Result<(Resolved, bool), SessionError> {
        self.current = None;
        self.stored_only = true;
        let cached = self.resolve(module);
        self.stored_only = false;
        self.current = None;
        match cached {
            Ok(r) => Ok((r, true)),
            Err(e) => {
                tracing::info!("the verified cache cannot answer ({e}): refreshing");
                Ok((self.resolve(module)?, false))
            }
        }
    }

    /// The entry for `module` in the verified index: from the derived index
    /// ([`crate::packages_index`]) when it was built from the file the
    /// trusted metadata signs now, else by parsing that verified file in full
    /// (and building the derived index from it).
    fn lookup_package(&mut self, module: &str) -> Result<Option<PackageEntry>, SessionError> {
        let path = CpanPath::new(PACKAGES_PATH).expect("constant path is valid");
        let found = self.with_mirrors(|up| up.target_info(PACKAGES_PATH))?;
        let Some(sha256) = found.info.hashes.get("sha256").cloned() else {
            return Ok(self.packages()?.lookup(module).cloned());
        };
        let derived = packages_index::derived_path(&self.cache_path(&path));
        if let Some(index) = packages_index::DerivedIndex::open_current(&derived, &sha256) {
            match index.lookup(module) {
                Ok(answer) => return Ok(answer),
                Err(why) => (self.on_warning)(&format!(
                    "{} is damaged ({why}): rebuilding it from the verified index",
                    derived.display()
                )),
            }
        }
        let (file, _) = self.verified(&path)?;
        let index = packages_index::build(&file, &sha256).map_err(|e| match e {
            packages_index::BuildError::BadIndex(e) => SessionError::BadIndex(e),
            packages_index::BuildError::Io { what, source } => SessionError::Io { what, source },
        })?;
        Ok(index.lookup(module).cloned())
    }

    /// The author's own role as the repository publishes it now, verified through the TUF
    /// search (newest timestamp, snapshot and every delegation on the way), with the key ids
    /// its delegator lets sign it. `None` when no role of that name is delegated: an id PAUSE
    /// does not know, or one with no upload yet.
    pub fn author_role(&mut self, author: &PauseId) -> Result<Option<AuthorRole>, SessionError> {
        let role = CpanRole::Author(author.clone()).name();
        let probe_file = format!("{}/.cpantuf-role-probe", author.author_dir().as_str());
        self.with_mirrors(|up| {
            match up.target_info(&probe_file) {
                Ok(_) | Err(ClientError::TargetNotFound(_)) => {}
                Err(e) => return Err(e),
            }
            let split = {
                let trusted = up.trusted().expect("refreshed");
                trusted
                    .targets(&role)
                    .is_some_and(|md| md.delegations.is_some())
            };
            if split {
                up.load_bins(&role, 1 << cpantuf_core::cpan::MAX_AUTHOR_BIN_BITS)?;
            }
            let trusted = up.trusted().expect("refreshed");
            let (Some(md), Some(delegator)) = (trusted.targets(&role), trusted.delegator_of(&role))
            else {
                return Ok(None);
            };
            let keyids = trusted
                .targets(delegator)
                .and_then(|d| d.delegations.as_ref()?.authority_for(&role))
                .map(|a| a.keyids.to_vec())
                .unwrap_or_default();
            let bin_prefix = format!("{}-", CpanRole::author_bin_prefix(author));
            let snapshot = trusted.snapshot().expect("refreshed");
            let versions = snapshot
                .meta
                .iter()
                .filter_map(|(f, m)| Some((f.strip_suffix(".json")?, m.version)))
                .filter(|(r, _)| r.starts_with(&bin_prefix) || *r == role)
                .map(|(r, v)| (r.to_owned(), v))
                .collect();
            let bins = md
                .delegations
                .as_ref()
                .and_then(|d| d.succinct_roles.as_ref())
                .map(|s| {
                    s.bin_names()
                        .filter_map(|b| Some((b.clone(), (**trusted.targets(&b)?).clone())))
                        .collect()
                })
                .unwrap_or_default();
            Ok(Some(AuthorRole {
                name: role.clone(),
                targets: (**md).clone(),
                keyids,
                bins,
                versions,
            }))
        })
    }

    /// A `CHECKSUMS` file for an author directory, generated from the
    /// verified metadata of the author's role (CPAN.pm checks the sha256 of
    /// every tarball against it). Lists every file directly in that
    /// directory that the TUF search finds signed (by the author's role or
    /// one of its bins).
    pub fn checksums(&mut self, author: &PauseId, dir: &CpanPath) -> Result<Vec<u8>, SessionError> {
        // Searching for a (non-existent) name in the directory loads the
        // roles along the delegation path, ending with the author's role.
        let role = CpanRole::Author(author.clone()).name();
        let prefix = format!("{}/", dir.as_str());
        let entries = self.with_mirrors(|up| {
            let probe_file = format!("{prefix}.cpantuf-role-probe");
            match up.target_info(&probe_file) {
                Ok(_) | Err(ClientError::TargetNotFound(_)) => {}
                Err(e) => return Err(e),
            }
            // A very large author's role delegates to hash bins (ADR
            // 0006): the directory's files are spread over all of them.
            let bins = up.load_bins(&role, 1 << cpantuf_core::cpan::MAX_AUTHOR_BIN_BITS)?;
            let trusted = up.trusted().expect("refreshed");
            let mut listed = std::collections::BTreeSet::new();
            let roles = std::iter::once(&role).chain(&bins);
            for md in roles.filter_map(|r| trusted.targets(r)) {
                listed.extend(
                    md.targets
                        .keys()
                        .filter(|p| p.strip_prefix(&prefix).is_some_and(|n| !n.contains('/')))
                        .cloned(),
                );
            }
            // A role may list a path its delegations do not give it (a bin
            // listing another bin's file): only what the TUF search itself
            // finds, through every delegation's patterns, is listed, with
            // the entry the search finds (the one that would be served).
            let mut out = Vec::new();
            for path in listed {
                match up.target_info(&path) {
                    Ok(found) => out.push((path[prefix.len()..].to_owned(), found.info)),
                    Err(ClientError::TargetNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })?;
        let cpan_path = dir
            .as_str()
            .strip_prefix("authors/id/")
            .unwrap_or(dir.as_str());
        Ok(render_checksums(cpan_path, &entries))
    }
}

/// An author's role as published ([`Session::author_role`]).
#[derive(Debug, Clone)]
pub struct AuthorRole {
    /// `author-ID`.
    pub name: String,
    /// What it says, verified.
    pub targets: cpantuf_core::metadata::Targets,
    /// The keys its delegator lets sign it (one: PAUSE's, or the author's own once claimed).
    pub keyids: Vec<cpantuf_core::metadata::KeyId>,
    /// When it is split into hash bins: each bin it delegates to, verified.
    pub bins: std::collections::BTreeMap<String, cpantuf_core::metadata::Targets>,
    /// The snapshot's version of the role and of every bin of it ever published (bins no
    /// longer delegated stay listed, empty): a new version must be above these.
    pub versions: std::collections::BTreeMap<String, std::num::NonZeroU64>,
}

fn perl_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Renders a PAUSE-style CHECKSUMS (a Perl data structure; unsigned, since
/// the trust comes from TUF, and the client generates it locally).
/// `cpan_path` is the directory relative to `authors/id/` (CPAN.pm refuses
/// entries without it).
pub fn render_checksums(
    cpan_path: &str,
    entries: &[(String, cpantuf_core::metadata::TargetFile)],
) -> Vec<u8> {
    let mut s =
        String::from("# CHECKSUMS generated by cpantuf from TUF-verified metadata\n$cksum = {\n");
    for (name, info) in entries {
        s.push_str(&format!("  {} => {{\n", perl_quote(name)));
        s.push_str(&format!("    'cpan_path' => {},\n", perl_quote(cpan_path)));
        if let Some(h) = info.hashes.get("sha256") {
            s.push_str(&format!("    'sha256' => {},\n", perl_quote(h)));
        }
        s.push_str(&format!("    'size' => {}\n  }},\n", info.length));
    }
    s.push_str("};\n");
    s.into_bytes()
}

/// Writes the client configuration and the pinned initial root.
pub fn initialise(home: &Path, config: &Config, root_bytes: &[u8]) -> Result<(), SessionError> {
    // The root must be a self-signed root document before it is trusted.
    cpantuf_core::trusted::TrustedSet::new(root_bytes, chrono::Utc::now()).map_err(|e| {
        SessionError::Io {
            what: "checking the initial root".into(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        }
    })?;
    let md = home.join("metadata");
    std::fs::create_dir_all(&md).map_err(io(format!("creating {}", md.display())))?;
    // A new trust anchor starts from nothing: metadata trusted under an
    // earlier root must not serve as a reference for this one.
    for entry in std::fs::read_dir(&md)
        .map_err(io("listing the metadata directory"))?
        .flatten()
    {
        if entry.path().extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(entry.path()).map_err(io("clearing old metadata"))?;
        }
    }
    std::fs::create_dir_all(home.join("cache")).map_err(io("creating the cache"))?;
    crate::store::write_atomic(&md.join("root.json"), root_bytes)
        .map_err(io("storing root.json"))?;
    let cfg = serde_json::to_vec_pretty(config).expect("config serialises");
    crate::store::write_atomic(&home.join("config.json"), &cfg)
        .map_err(io("writing config.json"))?;
    Ok(())
}
