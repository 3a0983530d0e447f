//! The updater: drives the core's TUF workflow over HTTP and a local store,
//! and downloads targets so that only verified bytes reach their
//! destination.
//!
//! It contains no verification logic of its own: every check is in
//! `cpantuf_core` (trusted, verify, target). What it adds is I/O: URLs,
//! files, locks and limits.

use crate::fetcher::{FetchConfig, Fetcher, FetcherSetupError};
use crate::report::Fault;
use crate::store::{sync_dir, MetadataStore};
use chrono::Utc;
use cpantuf_core::target::StreamVerifier;
use cpantuf_core::trusted::{TrustedSet, UpdateError};
use cpantuf_core::workflow::{self, FetchError, FoundTarget, Limits, MetadataSource};
use std::fs;
use std::path::{Path, PathBuf};

/// Everything an updater needs.
#[derive(Clone, Debug)]
pub struct UpdaterConfig {
    /// Directory of trusted metadata (must contain `root.json`).
    pub metadata_dir: PathBuf,
    /// Base URL of the repository's metadata, ending in `/`.
    pub metadata_url: String,
    /// Base URL of the repository's targets, ending in `/`.
    pub targets_url: String,
    /// Size caps and search bounds.
    pub limits: Limits,
    /// Network limits and TLS trust.
    pub fetch: FetchConfig,
}

impl UpdaterConfig {
    /// A cpantuf mirror's layout (metadata under `<mirror>/tuf/`, targets
    /// under `<mirror>/`), default limits and network settings.
    pub fn for_mirror(metadata_dir: PathBuf, mirror: &str) -> Self {
        UpdaterConfig {
            metadata_dir,
            metadata_url: crate::urls::metadata_base(mirror),
            targets_url: crate::urls::with_slash(mirror),
            limits: Limits::default(),
            fetch: FetchConfig::default(),
        }
    }
}

/// Why an updater operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The metadata directory has no trusted root.
    #[error("no trusted root at {0}: initialise the client first (cpantuf init)")]
    NotInitialised(PathBuf),
    /// The TUF workflow refused something or could not fetch it.
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// No role that may sign this path lists it.
    #[error("{0} is not on this CPAN: no signed metadata lists it")]
    TargetNotFound(String),
    /// The network setup is wrong (CA file).
    #[error(transparent)]
    Setup(#[from] FetcherSetupError),
    /// Local file system trouble.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// OS error.
        source: std::io::Error,
    },
}

impl ClientError {
    /// Whose failure this is (see [`crate::report::Fault`]).
    pub fn fault(&self) -> Fault {
        match self {
            ClientError::NotInitialised(_) => Fault::Usage,
            ClientError::TargetNotFound(_) => Fault::NotFound,
            ClientError::Setup(_) | ClientError::Io { .. } => Fault::Local,
            ClientError::Update(UpdateError::Store { .. }) => Fault::Local,
            // An oversized answer is the endless-data attack: refused.
            ClientError::Update(UpdateError::Fetch {
                source: FetchError::TooLarge { .. },
                ..
            }) => Fault::Refused,
            ClientError::Update(UpdateError::Fetch { .. }) => Fault::Mirror,
            ClientError::Update(_) => Fault::Refused,
        }
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClientError {
    let what = what.into();
    move |source| ClientError::Io { what, source }
}

/// A TUF client for one repository.
pub struct Updater {
    store: MetadataStore,
    metadata_url: String,
    targets_url: String,
    fetcher: Fetcher,
    limits: Limits,
    trusted: Option<TrustedSet>,
    /// Whether metadata comes from the local store alone ([`Updater::load_stored`]).
    stored_only: bool,
    /// The store's lock, when this updater holds it for its life.
    _lock: Option<fs::File>,
}

struct Source<'a> {
    store: &'a MetadataStore,
    fetcher: &'a Fetcher,
    base: &'a str,
    stored_only: bool,
}

/// What a "download" is when answering from the local store alone: the
/// stored copy (verified again by the workflow like any download), no newer
/// root, and nothing for a role never stored.
fn stored_copy(store: &MetadataStore, role: &str) -> Result<Vec<u8>, FetchError> {
    if role == "root" {
        return Err(FetchError::NotFound);
    }
    store.load(role).ok_or_else(|| {
        FetchError::Transport(format!("{role}.json is not in the local store (offline)").into())
    })
}

impl MetadataSource for Source<'_> {
    fn load_local(&mut self, role: &str) -> Option<Vec<u8>> {
        self.store.load(role)
    }
    fn fetch(
        &mut self,
        role: &str,
        version: Option<u64>,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        if self.stored_only {
            return stored_copy(self.store, role);
        }
        let url = crate::urls::metadata_url(self.base, role, version);
        tracing::debug!(%url, max_len, "fetching metadata");
        self.fetcher.fetch_bytes(&url, max_len)
    }
    fn persist(&mut self, role: &str, bytes: &[u8]) -> std::io::Result<()> {
        if self.stored_only {
            return Ok(()); // the bytes came from the store
        }
        self.store.persist(role, bytes)
    }
    fn local_rejected(&mut self, role: &str, why: &UpdateError) {
        tracing::debug!(role, %why, "local copy not usable as final");
    }
}

impl Updater {
    /// Opens the store (taking its lock for the updater's life) and
    /// prepares the fetcher. No network request is made.
    pub fn new(config: UpdaterConfig) -> Result<Self, ClientError> {
        Self::open(config, true)
    }

    /// Like [`Updater::new`], but takes no lock: the caller holds
    /// [`MetadataStore::lock`] around every call (a long-lived user such as
    /// `cpantuf serve` must not keep other processes out while idle).
    pub fn unlocked(config: UpdaterConfig) -> Result<Self, ClientError> {
        Self::open(config, false)
    }

    fn open(config: UpdaterConfig, hold_lock: bool) -> Result<Self, ClientError> {
        let store = MetadataStore::new(&config.metadata_dir);
        if !store.path_of("root").is_file() {
            return Err(ClientError::NotInitialised(config.metadata_dir));
        }
        let lock = if hold_lock {
            Some(
                store
                    .lock()
                    .map_err(io_err(format!("locking {}", config.metadata_dir.display())))?,
            )
        } else {
            None
        };
        Ok(Updater {
            store,
            metadata_url: crate::urls::with_slash(&config.metadata_url),
            targets_url: crate::urls::with_slash(&config.targets_url),
            fetcher: Fetcher::new(config.fetch)?,
            limits: config.limits,
            trusted: None,
            stored_only: false,
            _lock: lock,
        })
    }

    /// Runs the top-level TUF workflow (root, timestamp, snapshot,
    /// targets) with one reference time.
    pub fn refresh(&mut self) -> Result<(), ClientError> {
        self.stored_only = false;
        self.run_refresh()
    }

    fn run_refresh(&mut self) -> Result<(), ClientError> {
        let root = self
            .store
            .load("root")
            .ok_or_else(|| ClientError::NotInitialised(self.store.dir().to_owned()))?;
        let mut trusted = TrustedSet::new(&root, Utc::now())?;
        let mut src = Source {
            store: &self.store,
            fetcher: &self.fetcher,
            base: &self.metadata_url,
            stored_only: self.stored_only,
        };
        // On error `trusted` is dropped: nothing half-updated survives, and
        // the store only ever received verified bytes.
        workflow::refresh(&mut trusted, &mut src, &self.limits)?;
        self.trusted = Some(trusted);
        Ok(())
    }

    /// Trusts the metadata in the local store without any network request:
    /// the same workflow as [`Updater::refresh`] over the stored copies, so
    /// every signature, version and expiry check applies (expired metadata
    /// is refused). Delegated roles this updater loads later come from the
    /// store too; one never stored is an error, not a download.
    pub fn load_stored(&mut self) -> Result<(), ClientError> {
        self.stored_only = true;
        self.trusted = None;
        let result = self.run_refresh();
        if result.is_err() {
            self.stored_only = false;
        }
        result
    }

    /// Whether the trusted metadata came from the local store alone.
    pub fn is_stored_only(&self) -> bool {
        self.stored_only
    }

    /// The trusted metadata of the last successful refresh.
    pub fn trusted(&self) -> Option<&TrustedSet> {
        self.trusted.as_ref()
    }

    /// Finds `target` through the delegation graph, refreshing first if
    /// this updater has not yet.
    pub fn target_info(&mut self, target: &str) -> Result<FoundTarget, ClientError> {
        self.with_workflow(|trusted, src, limits| {
            workflow::find_target(trusted, src, limits, target)
        })?
        .ok_or_else(|| ClientError::TargetNotFound(target.to_owned()))
    }

    /// Loads every hash bin `role` (already loaded, e.g. by
    /// [`Updater::target_info`]) delegates to, at most `max_bins`
    /// ([`workflow::load_bins`]); returns their names.
    pub fn load_bins(&mut self, role: &str, max_bins: usize) -> Result<Vec<String>, ClientError> {
        self.with_workflow(|trusted, src, limits| {
            workflow::load_bins(trusted, src, limits, role, max_bins)
        })
    }

    /// Runs a step of the workflow on the trusted set (refreshing first if
    /// this updater has not yet) with this updater's fetcher and store.
    fn with_workflow<R>(
        &mut self,
        step: impl FnOnce(&mut TrustedSet, &mut Source<'_>, &Limits) -> Result<R, UpdateError>,
    ) -> Result<R, ClientError> {
        if self.trusted.is_none() {
            self.run_refresh()?;
        }
        let trusted = self.trusted.as_mut().expect("refreshed above");
        let mut src = Source {
            store: &self.store,
            fetcher: &self.fetcher,
            base: &self.metadata_url,
            stored_only: self.stored_only,
        };
        Ok(step(trusted, &mut src, &self.limits)?)
    }

    /// Whether `local` already holds exactly the bytes `found` describes.
    pub fn is_cached(found: &FoundTarget, local: &Path) -> bool {
        fs::File::open(local)
            .is_ok_and(|f| cpantuf_core::target::reader_matches(&found.path, &found.info, f))
    }

    /// The URL a target is fetched from: with consistent snapshots,
    /// `dir/HASH.name` (spec 5.7.3), else the plain path.
    pub fn target_url(&self, found: &FoundTarget) -> String {
        let consistent = self
            .trusted
            .as_ref()
            .is_some_and(|t| t.root().consistent_snapshot);
        let path = if consistent {
            crate::urls::consistent_target_path(&found.path, &found.info)
                .unwrap_or_else(|| found.path.clone())
        } else {
            found.path.clone()
        };
        format!("{}{}", self.targets_url, crate::urls::url_path(&path))
    }

    /// Downloads `found` to `dest`: into a temporary file beside the
    /// metadata store while hashing, then, once length and every hash
    /// match, renamed into place. On any failure `dest` is untouched.
    pub fn download_target(&self, found: &FoundTarget, dest: &Path) -> Result<(), ClientError> {
        let url = self.target_url(found);
        let mut verifier =
            StreamVerifier::for_target(&found.path, &found.info).map_err(UpdateError::from)?;
        let dest_dir = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dest_dir).map_err(io_err(format!("creating {}", dest_dir.display())))?;
        // The partial file lives in the destination directory's file system
        // only if it is the store's; otherwise a hidden sibling directory of
        // the store is used and the verified file is copied across.
        let work = self.store.dir().join(".downloads");
        fs::create_dir_all(&work).map_err(io_err(format!("creating {}", work.display())))?;
        remove_abandoned_parts(&work);
        let tmp = part_file(&work).map_err(io_err("creating a temporary download file"))?;
        let mut hash_err = None;
        let fetched = self
            .fetcher
            .fetch_to_file(&url, found.info.length, tmp.path(), |chunk| {
                verifier.update(chunk).map_err(|e| {
                    hash_err = Some(e);
                    FetchError::TooLarge {
                        limit: found.info.length,
                    }
                })
            });
        if let Some(e) = hash_err {
            return Err(UpdateError::from(e).into());
        }
        fetched.map_err(|e| workflow::target_fetch_error(&found.path, &found.info, &url, e))?;
        verifier.finish().map_err(UpdateError::from)?;
        match tmp.persist(dest) {
            Ok(_) => {}
            Err(e) if e.error.raw_os_error() == Some(18) => {
                // EXDEV: copy the *verified* file next to dest, then rename.
                let staged = part_file(dest_dir).map_err(io_err("staging the verified file"))?;
                fs::copy(e.file.path(), staged.path())
                    .map_err(io_err("copying the verified file"))?;
                staged.persist(dest).map_err(|e| ClientError::Io {
                    what: format!("moving into {}", dest.display()),
                    source: e.error,
                })?;
            }
            Err(e) => {
                return Err(ClientError::Io {
                    what: format!("moving into {}", dest.display()),
                    source: e.error,
                })
            }
        }
        sync_dir(dest_dir).map_err(io_err(format!("syncing {}", dest_dir.display())))?;
        Ok(())
    }
}

/// A temporary `.part-*` file in `dir`, created with the mode the umask
/// leaves of 0666 (tempfile's default, 0600, would keep a cache shared by a
/// `cpantuf serve` user, or a `mirror --to` tree, unreadable to others).
fn part_file(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt as _;
    tempfile::Builder::new()
        .prefix(PART_PREFIX)
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

const PART_PREFIX: &str = ".part-";

/// A partial download untouched for this long belongs to a process that died
/// (a live one writes at least every read timeout, or gives up).
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes the `.part-*` files in `dir` that a killed or crashed download
/// left behind. Another process's download in progress is never that old,
/// so none is removed from under it; failures are ignored (the next download
/// tries again).
fn remove_abandoned_parts(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(PART_PREFIX)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > ABANDONED_AFTER));
        if stale {
            tracing::debug!(file = %entry.path().display(), "removing an abandoned partial download");
            let _ = fs::remove_file(entry.path());
        }
    }
}
