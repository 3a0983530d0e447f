//! `cpantuf-mirror sync`: follow an upstream mirror through the TUF client workflow and publish
//! each verified state with one atomic symlink switch.
//!
//! The mirror holds no keys. Every check is the core's: [`workflow::refresh`] and
//! [`workflow::load_all_targets`] for metadata (spec 5.3 – 5.7),
//! [`workflow::find_target_avoiding`] to decide which role speaks for each path, and
//! [`StreamVerifier`] for every target byte. This module only moves bytes and files; `plan`
//! decides what a state serves, including for the subtree of a refused delegated role;
//! `unchanged` lets a run whose verified timestamp names the served snapshot stop there.
//!
//! Layout under `--dest` (only `current` and what it names are served; dot-prefixed names
//! never are):
//!
//! ```text
//! .sync/metadata/     trusted metadata store (the client's MetadataStore), and its lock
//! .sync/roots/        every root version verified so far, as N.root.json
//! .staging-N/         the state being built; kept across an interruption and reused
//! state-N/            published states: tuf/ + the CPAN tree + .sync-manifest.json (and
//!                     .sync-unchanged.json, see `unchanged`)
//! current -> state-N  the served state, switched by rename(2)
//! .sync/status.json   when the last sync succeeded (read by `serve` for its metrics)
//! ```

mod anchor;
mod delta;
mod in_place;
mod layout;
mod plan;
mod prefetch;
mod status;
mod unchanged;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use cpantuf_client::fetcher::{FetchConfig, Fetcher};
use cpantuf_client::store::{write_atomic, write_replacing, MetadataStore};
use cpantuf_client::urls::{
    consistent_target_path, metadata_base, metadata_url, url_path, with_slash,
};
use cpantuf_core::cpan::CpanPath;
use cpantuf_core::metadata::{Envelope, Root, TargetFile};
use cpantuf_core::target::{reader_matches, StreamVerifier};
use cpantuf_core::trusted::{TrustedSet, UpdateError};
use cpantuf_core::workflow::{self, FetchError, Limits, MetadataSource};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use layout::{Layout, MANIFEST};
pub use status::FILE as STATUS_FILE;

/// Options of `cpantuf-mirror sync`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base URL of the upstream mirror: its TUF metadata is under `<URL>/tuf/`, its CPAN tree
    /// under `<URL>/`. `https://`, or `http://` to a loopback address.
    #[arg(long, value_name = "URL")]
    pub upstream: String,

    /// Trusted root metadata file (the trust anchor), used to initialise the store on the
    /// first run. Later runs trust the newest root the store verified, never the upstream's
    /// word. (Formerly `--root`, still accepted: `serve --root` is a directory.)
    #[arg(
        long = "trusted-root",
        alias = "root",
        value_name = "FILE",
        required_unless_present = "root_sha256"
    )]
    pub trusted_root: Option<PathBuf>,

    /// SHA-256 (64 hex digits) of the trusted root, as published out of band. With
    /// `--trusted-root`, a file with another digest is refused; alone, the first run fetches
    /// the upstream's `tuf/root.json` (or `tuf/1.root.json`) and trusts it only if it has
    /// exactly this digest. Used only when the store is initialised.
    #[arg(long, value_name = "HEX", value_parser = parse_sha256)]
    pub root_sha256: Option<String>,

    /// Directory that holds the published states; serve `<DIR>/current`.
    #[arg(long, value_name = "DIR")]
    pub dest: PathBuf,

    /// Sync again every SECS seconds (logging each outcome) instead of once.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: Option<u64>,

    /// Published states to keep on disk (the served one included), so that downloads in
    /// flight during a switch can finish.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_states: u64,

    /// Most targets roles (top-level and delegated) loaded in one sync.
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    pub max_roles: usize,

    /// PEM file of CA certificates for the upstream's TLS, instead of the platform's roots.
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,

    /// Targets downloaded at once (each over its own kept-alive connection).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: u64,

    /// When a change is applied to the served state in place, how long what the new version
    /// no longer names (deleted files' hash-named twins, superseded role versions) stays
    /// served for clients still on the previous snapshot (`90s`, `1h`, `2days`).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    pub keep_deleted: Duration,

    /// Always build a new state and switch to it, even for a change that could be applied in
    /// place.
    #[arg(long)]
    pub no_in_place: bool,

    /// A CPAN tree already on this machine (the rsync mirror this sync replaces): a target
    /// to fetch whose copy there (under its name or its hash-named twin) has the signed
    /// length and hashes is taken from it, hard-linked on the same filesystem and copied
    /// otherwise, instead of downloaded. Each copy is hashed after it is taken. Stop what
    /// writes to DIR first.
    #[arg(long, value_name = "DIR")]
    pub reuse: Option<PathBuf>,
}

/// A SHA-256 given on the command line, lower-cased.
fn parse_sha256(s: &str) -> Result<String, String> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("must be 64 hex digits (a SHA-256)".into());
    }
    Ok(s)
}

/// Runs one sync, or one every `--interval`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let Some(secs) = args.interval else {
        let outcome = sync_once(&args)?;
        status::record(&args.dest, &outcome);
        tracing::info!("{outcome}");
        return Ok(());
    };
    loop {
        match sync_once(&args) {
            Ok(outcome) => {
                status::record(&args.dest, &outcome);
                tracing::info!("{outcome}");
            }
            Err(e) => tracing::error!("sync failed, served state unchanged: {e:#}"),
        }
        std::thread::sleep(Duration::from_secs(secs));
    }
}

/// What one sync did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The state now served.
    pub state: String,
    /// Whether a new state was published.
    pub published: bool,
    /// Whether the change was applied to the served state in place.
    pub in_place: bool,
    /// Targets whose served info changed in place (added or replaced).
    pub changed: usize,
    /// Targets no longer served after an in-place change.
    pub removed: usize,
    /// Roles whose new version was verified and served in place.
    pub roles_changed: usize,
    /// The version of a newer timestamp, naming the same snapshot, that replaced the served
    /// state's timestamp in place (the state is otherwise unchanged).
    pub new_timestamp: Option<u64>,
    /// Metadata files fetched from upstream.
    pub metadata_fetched: usize,
    /// Targets downloaded from upstream.
    pub downloaded: usize,
    /// Bytes of targets downloaded.
    pub downloaded_bytes: u64,
    /// Targets hard-linked from the previous state.
    pub linked: usize,
    /// Targets found already verified in an interrupted staging area.
    pub resumed: usize,
    /// Targets taken, verified, from the `--reuse` tree.
    pub reused: usize,
    /// Targets in the state.
    pub targets: usize,
    /// Targets served as the previous state verified them, because the role that signs them
    /// (or one above it) was refused.
    pub kept: usize,
    /// Delegated roles refused (each logged with its reason).
    pub refused_roles: usize,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let (false, Some(v)) = (self.published, self.new_timestamp) {
            write!(
                f,
                "up to date: {} unchanged but for its timestamp, now version {v} \
                 ({} metadata files fetched)",
                self.state, self.metadata_fetched
            )?;
        } else if self.in_place {
            write!(
                f,
                "updated {} in place: {} targets ({} added or changed, {} removed; {} \
                 downloaded, {} bytes; {} resumed), {} roles changed, {} metadata files fetched",
                self.state,
                self.targets,
                self.changed,
                self.removed,
                self.downloaded,
                self.downloaded_bytes,
                self.resumed,
                self.roles_changed,
                self.metadata_fetched
            )?;
        } else if !self.published {
            write!(
                f,
                "up to date: {} unchanged ({} metadata files fetched)",
                self.state, self.metadata_fetched
            )?;
        } else {
            write!(
                f,
                "published {}: {} targets ({} downloaded, {} bytes; {} linked from the \
                 previous state; {} resumed{}), {} metadata files fetched",
                self.state,
                self.targets,
                self.downloaded,
                self.downloaded_bytes,
                self.linked,
                self.resumed,
                match self.reused {
                    0 => String::new(),
                    n => format!("; {n} verified in --reuse"),
                },
                self.metadata_fetched
            )?;
        }
        if self.refused_roles > 0 {
            write!(
                f,
                "; {} delegated role(s) refused (see the warnings), {} of their targets kept \
                 as last verified",
                self.refused_roles, self.kept
            )?;
        }
        Ok(())
    }
}

/// What a published state records about itself (a hidden file, never served): the verified
/// target infos that the next sync compares against.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    root_version: u64,
    timestamp_version: u64,
    targets: BTreeMap<String, TargetFile>,
}

/// The metadata side of the workflow: the store in `.sync/metadata`, the upstream over HTTP.
struct Source<'a> {
    store: &'a MetadataStore,
    roots: &'a Path,
    fetcher: &'a Fetcher,
    base: String,
    fetched: usize,
    /// Role files fetched ahead of the walk ([`Source::fetch_ahead`]).
    ahead: prefetch::Prefetched,
}

impl Source<'_> {
    /// Fetches, several at once, the role files the walk after the verified snapshot in
    /// `trusted` will ask for (see `prefetch`). Only with consistent snapshots, whose file
    /// names carry the version.
    fn fetch_ahead(&mut self, trusted: &TrustedSet, record: Option<&unchanged::Record>, jobs: u64) {
        let Some(snapshot) = trusted.snapshot() else {
            return;
        };
        if !trusted.root().consistent_snapshot {
            return;
        }
        let wanted = prefetch::wanted(snapshot, record, self.store, &Limits::default());
        if wanted.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        self.ahead = prefetch::fetch_all(self.fetcher, &self.base, &wanted, jobs as usize);
        self.fetched += self.ahead.requests;
        tracing::debug!(
            roles = wanted.len(),
            requests = self.ahead.requests,
            ms = started.elapsed().as_millis() as u64,
            "fetched role files ahead"
        );
    }
}

impl MetadataSource for Source<'_> {
    fn load_local(&mut self, role: &str) -> Option<Vec<u8>> {
        if self.ahead.is_stale(role) {
            return None;
        }
        self.store.load(role)
    }

    fn fetch(
        &mut self,
        role: &str,
        version: Option<u64>,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        if let Some(bytes) = version.and_then(|v| self.ahead.take(role, v)) {
            // Checked by the core like any fetched file; the limit as a request would.
            if bytes.len() as u64 > max_len {
                return Err(FetchError::TooLarge { limit: max_len });
            }
            return Ok(bytes);
        }
        let url = metadata_url(&self.base, role, version);
        tracing::debug!(%url, "fetching metadata");
        let bytes = self.fetcher.fetch_bytes(&url, max_len)?;
        self.fetched += 1;
        Ok(bytes)
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> std::io::Result<()> {
        if role == "root" {
            // Only verified roots reach here; keep every version for clients that start from
            // an older one.
            let version = root_version(bytes).map_err(std::io::Error::other)?;
            write_atomic(&self.roots.join(format!("{version}.root.json")), bytes)?;
        }
        match role {
            "root" | "timestamp" | "snapshot" | "targets" => self.store.persist(role, bytes),
            // Thousands on a first sync: not synced one by one. The run syncs the filesystem
            // before it publishes anything, and a stored copy torn by a crash before that
            // fails its check against the snapshot when loaded, and is fetched again.
            _ => self.store.persist_unsynced(role, bytes),
        }
    }

    fn local_rejected(&mut self, role: &str, why: &UpdateError) {
        tracing::debug!(role, %why, "stored copy not usable as final");
    }
}

fn root_version(bytes: &[u8]) -> anyhow::Result<u64> {
    Ok(Envelope::<Root>::from_bytes(bytes)?
        .unverified()
        .version
        .get())
}

/// A target path the mirror may write: a valid CPAN path (relative, no `..`, no control
/// characters), no hidden segment (the server would not serve it, and `.sync-manifest.json`
/// must not be overwritten), and outside `tuf/`.
fn writable_path(path: &str) -> Result<(), String> {
    CpanPath::new(path).map_err(|e| e.to_string())?;
    if path.split('/').any(|s| s.starts_with('.')) {
        return Err("a path segment starts with '.'".into());
    }
    if path == "tuf" || path.starts_with("tuf/") {
        return Err("collides with the metadata directory tuf/".into());
    }
    Ok(())
}

/// Whether the file at `path` holds exactly the bytes `info` describes (hashed again).
fn verifies(target: &str, info: &TargetFile, path: &Path) -> bool {
    fs::File::open(path).is_ok_and(|f| reader_matches(target, info, f))
}

/// Takes `path` from the local tree `dir` into `dest` when its copy there (under its name, or
/// its hash-named `twin`) has the signed length and, hashed once taken, the signed hashes.
/// Hard-linked on the same filesystem, copied otherwise; anything else means a download.
fn take_verified(
    dir: &Path,
    path: &str,
    twin: Option<&str>,
    info: &TargetFile,
    dest: &Path,
) -> bool {
    let candidates = std::iter::once(path).chain(twin).map(|p| dir.join(p));
    for from in candidates {
        if !fs::metadata(&from).is_ok_and(|m| m.is_file() && m.len() == info.length) {
            continue;
        }
        let taken = link_over(&from, dest).or_else(|_| fs::copy(&from, dest).map(drop));
        // Hashed after it is taken: what is checked is what is served.
        if taken.is_ok() && verifies(path, info, dest) {
            return true;
        }
        let _ = fs::remove_file(dest);
    }
    false
}

/// Creates `dest` as a hard link to `src`, replacing whatever `dest` was. Tries the link
/// first: directories are created, and an old `dest` removed, only when the link says so.
fn link_over(src: &Path, dest: &Path) -> std::io::Result<()> {
    use std::io::ErrorKind;
    match fs::hard_link(src, dest) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(dir) = dest.parent() {
                fs::create_dir_all(dir)?;
            }
            fs::hard_link(src, dest)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            if same_file(src, dest) {
                return Ok(());
            }
            fs::remove_file(dest)?;
            fs::hard_link(src, dest)
        }
        other => other,
    }
}

/// Whether two paths name the same file.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (fs::metadata(a), fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// One sync: refresh, load every role, stage the changed files, switch `current`.
pub fn sync_once(args: &Args) -> anyhow::Result<Outcome> {
    let layout = Layout::new(&args.dest)?;
    layout.check_current()?;
    let store = MetadataStore::new(layout.metadata());
    let fetcher = Fetcher::new(FetchConfig {
        ca_cert: args.ca_cert.clone(),
        ..FetchConfig::default()
    })?;
    if !layout.store_initialised(&store) {
        let anchor = anchor::Anchor::of(args.trusted_root.as_ref(), args.root_sha256.as_deref())?;
        let (bytes, origin) = anchor.load(&fetcher, &with_slash(&args.upstream))?;
        layout.init_store(&store, &bytes, &origin)?;
    }
    // One sync at a time per destination (a second one waits).
    let _lock = store
        .lock()
        .with_context(|| format!("locking {}", layout.metadata().display()))?;

    let upstream = with_slash(&args.upstream);
    let previous = layout.current_state();
    let mut src = Source {
        store: &store,
        roots: &layout.roots(),
        fetcher: &fetcher,
        base: metadata_base(&upstream),
        fetched: 0,
        ahead: prefetch::Prefetched::default(),
    };
    let trusted = verify_timestamp(&mut src)?;
    // The served state and its record, read once for the three ways below of reusing it.
    let mut served = previous
        .as_ref()
        .and_then(|p| Some((p.clone(), unchanged::Record::load(&layout, p)?)));
    if let Some((prev, record)) = &mut served {
        if let Some(done) = shortcut(&layout, &store, prev, record, &trusted, src.fetched)? {
            return Ok(done);
        }
    }
    let mut trusted = trusted;
    workflow::refresh_snapshot(&mut trusted, &mut src, &Limits::default())
        .context("refreshing metadata")?;
    src.fetch_ahead(&trusted, served.as_ref().map(|(_, r)| r), args.jobs);
    if let Some(done) = try_in_place(
        args,
        &layout,
        served,
        &store,
        &fetcher,
        &mut trusted,
        &mut src,
    )? {
        return Ok(done);
    }
    let prev_manifest = previous.as_ref().and_then(|p| layout.manifest(p));
    let v = verify_rest(args, trusted, &mut src, prev_manifest.as_ref())?;
    let (trusted, all, wanted) = (v.trusted, v.all, v.planned.targets);
    let mut outcome = Outcome {
        metadata_fetched: v.fetched,
        targets: wanted.len(),
        kept: v.planned.kept,
        refused_roles: all.refused.len(),
        ..Outcome::default()
    };

    let root_version = trusted.root().version.get();
    let timestamp_version = trusted
        .timestamp()
        .map(|t| t.version.get())
        .context("no timestamp after refresh")?;
    if let (Some(prev), Some(m)) = (&previous, &prev_manifest) {
        if m.root_version == root_version
            && m.timestamp_version == timestamp_version
            && m.targets == wanted
        {
            outcome.state = prev.clone();
            return Ok(outcome);
        }
    }

    let tuf = plan::metadata_files(&layout.roots(), &store, &trusted, &all)?;
    let (number, staging) = layout.staging()?;
    tracing::info!(staging = %staging.display(), "building a new state");
    let mut expected = stage_metadata(&layout, previous.as_deref(), &staging, &tuf)?;
    outcome.published = true;
    // What older versions left for downloads in flight.
    let _ = fs::remove_dir_all(staging.join(".partial"));
    let from_previous = previous.as_deref().zip(prev_manifest.as_ref());
    let to_fetch = stage_targets(
        &layout,
        from_previous,
        args.reuse.as_deref(),
        &staging,
        &wanted,
        &mut expected,
        &mut outcome,
    )?;

    let into_staging = |path: &str, info: &TargetFile, part: &Path| {
        let dest = staging.join(path);
        move_into(part, &dest)?;
        if let Some(t) = consistent_target_path(path, info) {
            link_over(&dest, &staging.join(t))?;
        }
        Ok(())
    };
    (outcome.downloaded, outcome.downloaded_bytes) = download_all(
        &fetcher,
        &upstream,
        trusted.root().consistent_snapshot,
        &to_fetch,
        &|path: &str, _: &TargetFile| part_beside(&staging.join(path)),
        args.jobs as usize,
        &into_staging,
    )?;

    let manifest = Manifest {
        root_version,
        timestamp_version,
        targets: wanted,
    };
    layout::write_manifest(&staging.join(MANIFEST), &manifest)?;
    expected.insert(MANIFEST.into());
    // Written last: a state without it always takes the full sync.
    if let Some(r) = unchanged::Record::of(&trusted, &all, outcome.targets) {
        r.write(&staging)?;
        expected.insert(unchanged::RECORD.into());
    }
    layout::remove_unexpected(&staging, &expected)?;

    outcome.state = layout.publish(number, &staging)?;
    layout.prune(args.keep_states as usize)?;
    Ok(outcome)
}

/// The upstream's metadata, verified, and the targets the new state serves.
struct Verified {
    trusted: TrustedSet,
    all: workflow::AllTargets,
    planned: plan::Planned,
    /// Metadata files downloaded.
    fetched: usize,
}

/// Spec 5.2 – 5.4 in the core, from the store's trusted root: the newest root, and a final
/// timestamp (signed, not rolled back, not expired). A refusal ends the sync before the state
/// is touched.
fn verify_timestamp(src: &mut Source<'_>) -> anyhow::Result<TrustedSet> {
    let anchor = src
        .store
        .load("root")
        .context("the metadata store has no root.json")?;
    let mut trusted = TrustedSet::new(&anchor, Utc::now()).context("trusted root")?;
    workflow::refresh_timestamp(&mut trusted, src, &Limits::default())
        .context("refreshing metadata")?;
    Ok(trusted)
}

/// The outcome of a sync that the verified timestamp shows has nothing to build (see
/// `unchanged`), after serving a newer timestamp if there is one; `None` when a full sync is
/// needed.
fn shortcut(
    layout: &Layout,
    store: &MetadataStore,
    state: &str,
    record: &mut unchanged::Record,
    trusted: &TrustedSet,
    fetched: usize,
) -> anyhow::Result<Option<Outcome>> {
    let verdict = unchanged::verdict(record, trusted, Utc::now());
    let targets = record.targets;
    let new_timestamp = match verdict {
        unchanged::Verdict::Changed => return Ok(None),
        unchanged::Verdict::UpToDate => None,
        unchanged::Verdict::NewTimestamp => {
            unchanged::serve_new_timestamp(layout, state, store, record, trusted)?;
            trusted.timestamp().map(|t| t.version.get())
        }
    };
    Ok(Some(Outcome {
        state: state.to_owned(),
        metadata_fetched: fetched,
        targets,
        new_timestamp,
        ..Outcome::default()
    }))
}

/// The outcome of a change applied to the served state in place (see `in_place`), or `None`
/// when it cannot be (the reason logged) and a new state is built.
fn try_in_place(
    args: &Args,
    layout: &Layout,
    served: Option<(String, unchanged::Record)>,
    store: &MetadataStore,
    fetcher: &Fetcher,
    trusted: &mut TrustedSet,
    src: &mut Source<'_>,
) -> anyhow::Result<Option<Outcome>> {
    let Some((state, record)) = served.filter(|_| !args.no_in_place) else {
        return Ok(None);
    };
    let Some(manifest) = layout.manifest(&state) else {
        return Ok(None);
    };
    let served = in_place::Served {
        layout,
        state: &state,
        record,
        manifest,
    };
    let delta = match delta::plan(&served, trusted, src, &Limits::default())? {
        Ok(delta) => delta,
        Err(why) => {
            tracing::info!("building a new state: {why}");
            return Ok(None);
        }
    };
    let upstream = with_slash(&args.upstream);
    let fetch = |files: &[(&String, &TargetFile)],
                 part_of: &in_place::PartOf<'_>,
                 place: &in_place::Placer<'_>| {
        download_all(
            fetcher,
            &upstream,
            true,
            files,
            part_of,
            args.jobs as usize,
            place,
        )
    };
    let how = in_place::Apply {
        store,
        fetch: &fetch,
        keep_deleted: args.keep_deleted,
    };
    let done = in_place::apply(served, delta, trusted, &how)?;
    Ok(Some(Outcome {
        state,
        in_place: true,
        metadata_fetched: src.fetched,
        downloaded: done.downloaded,
        downloaded_bytes: done.downloaded_bytes,
        resumed: done.resumed,
        targets: done.targets,
        changed: done.changed,
        removed: done.removed,
        roles_changed: done.roles,
        ..Outcome::default()
    }))
}

/// Spec 5.5 – 5.7 in the core, after [`verify_timestamp`]: a refusal of the top-level roles
/// ends the sync before the state is touched, a refused delegated role costs its own subtree
/// (see `plan`).
fn verify_rest(
    args: &Args,
    mut trusted: TrustedSet,
    src: &mut Source<'_>,
    prev_manifest: Option<&Manifest>,
) -> anyhow::Result<Verified> {
    let limits = Limits::default();
    let all = workflow::load_all_targets(&mut trusted, src, &limits, args.max_roles)
        .context("loading delegated targets roles")?;
    plan::warn_refused(&all.refused);
    let planned = plan::targets(&mut trusted, src, &limits, &all, prev_manifest)?;
    Ok(Verified {
        fetched: src.fetched,
        trusted,
        all,
        planned,
    })
}

/// Puts into `staging` every target of `wanted` that needs no download, with its hash-named
/// twin: hard-linked from the previous state (`state` and its manifest) when signed with the
/// same info, found verified where an interrupted sync left it, or taken verified from the
/// `reuse` tree. Returns the others.
fn stage_targets<'a>(
    layout: &Layout,
    previous: Option<(&str, &Manifest)>,
    reuse: Option<&Path>,
    staging: &Path,
    wanted: &'a BTreeMap<String, TargetFile>,
    expected: &mut BTreeSet<String>,
    outcome: &mut Outcome,
) -> anyhow::Result<Vec<(&'a String, &'a TargetFile)>> {
    let mut to_fetch = Vec::new();
    for (path, info) in wanted {
        let dest = staging.join(path);
        expected.insert(path.clone());
        let twin = consistent_target_path(path, info);
        if let Some(t) = &twin {
            expected.insert(t.clone());
        }
        let unchanged = previous.filter(|(_, m)| m.targets.get(path) == Some(info));
        if let Some((prev, _)) = unchanged {
            // Verified when the previous state was built, and signed with the same info now.
            let from = layout.dir().join(prev).join(path);
            link_over(&from, &dest).with_context(|| format!("linking {}", from.display()))?;
            outcome.linked += 1;
        } else if verifies(path, info, &dest) {
            // Left by an interrupted sync, and hashed again just now.
            outcome.resumed += 1;
        } else if reuse.is_some_and(|dir| take_verified(dir, path, twin.as_deref(), info, &dest)) {
            outcome.reused += 1;
        } else {
            to_fetch.push((path, info));
            continue;
        }
        if let Some(t) = &twin {
            link_over(&dest, &staging.join(t))?;
        }
    }
    Ok(to_fetch)
}

/// Writes the metadata files into `staging/tuf/` (hard links to the previous state's copy
/// when the bytes are the same); returns their paths relative to `staging`.
fn stage_metadata(
    layout: &Layout,
    previous: Option<&str>,
    staging: &Path,
    tuf: &BTreeMap<String, plan::MetadataFile>,
) -> anyhow::Result<BTreeSet<String>> {
    let mut expected = BTreeSet::new();
    for (name, from) in tuf {
        let rel = format!("tuf/{name}");
        let dest = staging.join(&rel);
        expected.insert(rel.clone());
        // A hard link to the store's verified file, which the store only ever replaces by
        // rename (one file fewer to create per role); the previous state's file when it
        // holds the same bytes; else a copy.
        if let plan::MetadataFile::Stored(stored) = from {
            if link_over(stored, &dest).is_ok() {
                continue;
            }
        }
        let bytes = from.read()?;
        let same_as_before = previous
            .map(|p| layout.dir().join(p).join(&rel))
            .filter(|p| fs::read(p).is_ok_and(|b| b == *bytes));
        match same_as_before {
            Some(prev) => link_over(&prev, &dest)?,
            None => {
                fs::create_dir_all(dest.parent().expect("under staging"))?;
                // By rename: `dest` may be a link to a published state's file. Synced with the
                // whole state before it is published.
                write_replacing(&dest, &bytes)?;
            }
        }
    }
    Ok(expected)
}

fn progress_bar(bytes: u64, files: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if files > 0 {
        tracing::info!(files, bytes, "downloading changed targets");
    }
    bar
}

/// Where the download of a file bound for `dest` is written until it is verified: beside
/// it, under a hidden name (never served), so that moving it into place is a rename inside
/// one directory. (Renames across directories take a lock of the whole filesystem, and
/// parallel downloads queued on it.)
pub(super) fn part_beside(dest: &Path) -> PathBuf {
    let name = dest.file_name().expect("a target path names a file");
    let mut part = std::ffi::OsString::from(".");
    part.push(name);
    part.push(".part");
    dest.with_file_name(part)
}

/// Downloads `to_fetch` with `jobs` threads (each with its own connection from the fetcher's
/// pool), each into the file `part_of` names, which `place` moves where it belongs once
/// verified. The first error stops the other threads after their current file and is
/// returned; what was verified and placed stays for the next run to resume from.
fn download_all(
    fetcher: &Fetcher,
    upstream: &str,
    consistent: bool,
    to_fetch: &[(&String, &TargetFile)],
    part_of: &in_place::PartOf<'_>,
    jobs: usize,
    place: &in_place::Placer<'_>,
) -> anyhow::Result<(usize, u64)> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let total: u64 = to_fetch.iter().map(|(_, i)| i.length).sum();
    let bar = &progress_bar(total, to_fetch.len());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let order = spread_over_directories(to_fetch);
    let one = |i: usize| -> anyhow::Result<()> {
        let (path, info) = to_fetch[order[i]];
        bar.set_message(path.clone());
        let url_rel = if consistent {
            consistent_target_path(path, info).unwrap_or_else(|| path.clone())
        } else {
            path.clone()
        };
        let url = format!("{upstream}{}", url_path(&url_rel));
        let part = part_of(path, info);
        download(fetcher, &url, path, info, &part, bar)?;
        place(path, info, &part)
    };
    let results: Vec<anyhow::Result<(usize, u64)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.min(to_fetch.len()).max(1))
            .map(|_| {
                scope.spawn(|| {
                    let (mut files, mut bytes) = (0, 0);
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= to_fetch.len() {
                            break;
                        }
                        if let Err(e) = one(i) {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                        files += 1;
                        bytes += to_fetch[order[i]].1.length;
                    }
                    Ok((files, bytes))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    bar.finish_and_clear();
    let (mut files, mut bytes) = (0, 0);
    for r in results {
        let (f, b) = r?;
        files += f;
        bytes += b;
    }
    Ok((files, bytes))
}

/// The order to download `to_fetch` in: round-robin over their directories, so that parallel
/// downloads create files in different directories (a file's creation holds its directory's
/// lock, and in path order the workers would queue on one author's directory).
fn spread_over_directories(to_fetch: &[(&String, &TargetFile)]) -> Vec<usize> {
    let mut by_dir: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (path, _)) in to_fetch.iter().enumerate() {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        by_dir.entry(dir).or_default().push(i);
    }
    let mut queues: Vec<std::vec::IntoIter<usize>> =
        by_dir.into_values().map(Vec::into_iter).collect();
    let mut order = Vec::with_capacity(to_fetch.len());
    while !queues.is_empty() {
        queues.retain_mut(|q| q.next().map(|i| order.push(i)).is_some());
    }
    order
}

/// Downloads one target into `part` while hashing it; `part` is left only once its length
/// and every hash match (spec 5.7.4).
fn download(
    fetcher: &Fetcher,
    url: &str,
    path: &str,
    info: &TargetFile,
    part: &Path,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let mut verifier = StreamVerifier::for_target(path, info).map_err(UpdateError::from)?;
    let mut hash_err = None;
    // Not synced file by file: `Layout::publish` syncs the whole filesystem once before
    // the state goes live, and a resumed sync hashes what it finds again.
    let mut file = create_part(part).with_context(|| format!("creating {}", part.display()))?;
    let fetched = fetcher.fetch_into(url, info.length, &mut |chunk| {
        bar.inc(chunk.len() as u64);
        verifier.update(chunk).map_err(|e| {
            hash_err = Some(e);
            FetchError::TooLarge { limit: info.length }
        })?;
        std::io::Write::write_all(&mut file, chunk).map_err(|e| FetchError::Transport(Box::new(e)))
    });
    drop(file);
    if let Some(e) = hash_err {
        let _ = fs::remove_file(part);
        return Err(UpdateError::from(e).into());
    }
    if let Err(e) = fetched {
        let _ = fs::remove_file(part);
        return Err(workflow::target_fetch_error(path, info, url, e).into());
    }
    if let Err(e) = verifier.finish() {
        let _ = fs::remove_file(part);
        return Err(UpdateError::from(e).into());
    }
    Ok(())
}

/// Creates a download's file, and its directory when that is missing.
fn create_part(part: &Path) -> std::io::Result<fs::File> {
    match fs::File::create(part) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(part.parent().expect("a part has a parent"))?;
            fs::File::create(part)
        }
        other => other,
    }
}

/// Renames a verified download to `dest`, replacing what was there.
pub(super) fn move_into(part: &Path, dest: &Path) -> anyhow::Result<()> {
    // Files and directories are synced once, all together, before the state is published
    // (`Layout::publish`). The directory is created only when the rename says it is missing.
    let moved = match fs::rename(part, dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dest.parent().expect("a target path has a parent"))?;
            fs::rename(part, dest)
        }
        other => other,
    };
    moved.with_context(|| format!("moving into {}", dest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_sha256_must_be_a_sha256() {
        let upper = "AB".repeat(32);
        assert_eq!(parse_sha256(&upper).unwrap(), "ab".repeat(32));
        assert!(parse_sha256("abc").is_err());
        assert!(parse_sha256(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn target_paths_that_could_escape_or_hide_are_refused() {
        assert!(writable_path("authors/id/E/EX/EXAMPLE/Foo-1.0.tar.gz").is_ok());
        for bad in [
            "../x",
            "/etc/passwd",
            "authors/../../x",
            "authors/.hidden",
            ".sync-manifest.json",
            "tuf/1.root.json",
            "a//b",
        ] {
            assert!(writable_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn twins_are_named_by_sha256() {
        let info = TargetFile {
            length: 1,
            hashes: BTreeMap::from([("sha256".to_string(), "ab12".to_string())]),
            custom: None,
        };
        assert_eq!(
            consistent_target_path("authors/id/A/AB/X/F.tar.gz", &info).unwrap(),
            "authors/id/A/AB/X/ab12.F.tar.gz"
        );
        assert_eq!(consistent_target_path("F", &info).unwrap(), "ab12.F");
    }
}
