//! Writing a new state without ever exposing a broken one, and pruning.
//!
//! Write order (guide section 3; spec 5.5–5.7 consistent snapshots):
//!
//! 1. hash-named twins `<dir>/<sha256>.<name>` of new targets: hard links
//!    for uploads, copies for the files PAUSE rewrites in place;
//! 2. delegated roles and top-level targets, `N.ROLE.json`;
//! 3. a new root, `N.root.json`, then the `root.json` copy;
//! 4. `N.snapshot.json`;
//! 5. `timestamp.json`, last.
//!
//! Each file is written to a temporary name in the same directory and
//! renamed over its final name, so a reader sees the old file or the new one,
//! never half of one. Only step 5 changes what clients consider current, and
//! every file it (transitively) names was in place before it: a crash before
//! step 5 leaves the previous timestamp pointing at the previous, complete
//! state. With `fsync` this also holds across a power loss: one `syncfs(2)`
//! after steps 1–3 makes the twins' directory entries and every role file
//! durable, the snapshot is synced before the timestamp is written, and the
//! timestamp last.

use super::mirror::{is_twin_name, is_twin_temp_name, twin_path, FileEntry, Mirror};
use super::signed::SignedFile;
use super::state::PublishedState;
use super::RepoError;
use cpantuf_core::cpan::{owner, CpanPath, Owner};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Everything one run publishes.
#[derive(Debug, Default)]
pub struct Publication {
    /// Targets whose hash-named twin must exist.
    pub twins: Vec<FileEntry>,
    /// The twins a scan just found on disk, if the caller scanned: any
    /// other twin is linked without first looking for it (a full build
    /// links 300,000 at CPAN scale). `None`: look first.
    pub existing_twins: Option<HashSet<CpanPath>>,
    /// Delegated roles and top-level targets.
    pub roles: Vec<SignedFile>,
    /// A new root, if any.
    pub root: Option<SignedFile>,
    /// The new snapshot.
    pub snapshot: Option<SignedFile>,
    /// The new timestamp (always: it is what makes the rest current).
    pub timestamp: Option<SignedFile>,
}

/// What a write did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Twins newly linked.
    pub linked: usize,
    /// Twins that had to be copied (no hard links on this file system).
    pub copied: usize,
    /// Metadata files written.
    pub metadata_files: usize,
    /// Bytes of metadata written.
    pub metadata_bytes: u64,
}

/// Writes `data` to `dir/name` through a temporary file and a rename.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8], fsync: bool) -> Result<(), RepoError> {
    let tmp = dir.join(format!(".tmp.{}.{name}", std::process::id()));
    let dest = dir.join(name);
    let mut f = fs::File::create(&tmp).map_err(RepoError::io(&tmp))?;
    f.write_all(data).map_err(RepoError::io(&tmp))?;
    if fsync {
        f.sync_all().map_err(RepoError::io(&tmp))?;
    }
    drop(f);
    fs::rename(&tmp, &dest).map_err(RepoError::io(&dest))
}

/// Above this many files (roles plus twins) a publication is made durable
/// with one `syncfs(2)` rather than an fsync per file and directory.
const SYNCFS_ABOVE: usize = 256;

/// Flushes the whole file system holding `dir` (`syncfs(2)`).
fn sync_fs(dir: &Path) -> Result<(), RepoError> {
    let d = fs::File::open(dir).map_err(RepoError::io(dir))?;
    rustix::fs::syncfs(&d).map_err(|e| RepoError::io(dir)(e.into()))
}

fn sync_dir(dir: &Path) -> Result<(), RepoError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(RepoError::io(dir))
}

/// Whether the target `e` is a file PAUSE rewrites in place: every file
/// the index role owns (`modules/*`, `authors/01mailrc.txt.gz`, and
/// `CHECKSUMS`, `*.meta`, `*.readme` in author directories). Uploads are
/// write-once: PAUSE never accepts a second file of the same name.
fn is_mutable(e: &FileEntry) -> bool {
    matches!(owner(&e.path), Ok(Owner::Index))
}

/// Makes sure the twin of `e` exists and holds `e`'s bytes; `(linked,
/// copied)`. An upload's twin is a hard link (300,000 of them at CPAN
/// scale). A mutable file's twin is a copy: a hard link would share its
/// inode with the live file, so PAUSE rewriting the file in place would
/// change every retained twin of it under its old hash-name too.
/// `existing`: the twins a scan found; one not among them is created
/// before looking.
fn ensure_twin(
    mirror: &Mirror,
    e: &FileEntry,
    existing: Option<&HashSet<CpanPath>>,
) -> Result<(bool, bool), RepoError> {
    let rel = twin_path(&e.path, &e.sha256_hex());
    let twin = mirror.file(&rel);
    let look_first = existing.is_none_or(|known| known.contains(&rel));
    let mutable = is_mutable(e);
    if look_first && keep_twin(mirror, e, &rel, mutable)? {
        return Ok((false, false));
    }
    if mutable {
        copy_twin(mirror, e, &twin)?;
        return Ok((false, true));
    }
    let src = mirror.file(&e.path);
    let mut link = fs::hard_link(&src, &twin);
    if matches!(&link, Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists) {
        if !look_first && keep_twin(mirror, e, &rel, false)? {
            return Ok((false, false));
        }
        link = fs::hard_link(&src, &twin);
    }
    match link {
        Ok(()) => Ok((true, false)),
        Err(_) => {
            // No hard links (another file system, or not permitted): copy.
            copy_twin(mirror, e, &twin)?;
            Ok((false, true))
        }
    }
}

/// Whether the twin on disk at `rel` already holds `e`'s bytes, so it is
/// kept. Anything else there is removed: its name promises other bytes (a
/// foreign or planted file, a copy cut short by a crash, a hard link an
/// older signer made to a mutable file). A hard link to the file just
/// hashed needs no hashing; any other file is hashed, since a matching
/// length proves nothing.
fn keep_twin(
    mirror: &Mirror,
    e: &FileEntry,
    rel: &CpanPath,
    mutable: bool,
) -> Result<bool, RepoError> {
    use std::os::unix::fs::MetadataExt;
    let twin = mirror.file(rel);
    let m = match fs::symlink_metadata(&twin) {
        Ok(m) => m,
        Err(_) => return Ok(false),
    };
    let same_inode = (m.dev(), m.ino()) == e.file_id;
    let keep = m.is_file()
        && m.len() == e.length
        && match (same_inode, mutable) {
            (true, false) => true,
            (true, true) => false,
            (false, _) => mirror.hash_file(rel.clone())?.sha256 == e.sha256,
        };
    if !keep {
        fs::remove_file(&twin).map_err(RepoError::io(&twin))?;
    }
    Ok(keep)
}

/// Writes the twin of `e` as a copy (temporary file and rename). The bytes
/// read must still be the ones `e` hashed: PAUSE may have rewritten the
/// file since.
fn copy_twin(mirror: &Mirror, e: &FileEntry, twin: &Path) -> Result<(), RepoError> {
    use sha2::{Digest, Sha256};
    let src = mirror.file(&e.path);
    let bytes = fs::read(&src).map_err(RepoError::io(&src))?;
    if <[u8; 32]>::from(Sha256::digest(&bytes)) != e.sha256 {
        return Err(RepoError::Missing {
            path: format!("{} (changed while being signed; run again)", e.path),
        });
    }
    let parent = twin.parent().expect("a mirror file has a directory");
    let name = twin
        .file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8 twin");
    write_atomic(parent, name, &bytes, false)
}

/// The signer's invariant, enforced where metadata reaches the disk: a
/// published `N.ROLE.json` never changes. Mirrors and clients that fetched
/// it keep their copy (the mirror server marks the file immutable), so a
/// second, different file under the same name would split them from
/// everyone else for good. Refuses the whole publication, before anything
/// is written, if any of its role, root or snapshot files exists on disk
/// with other bytes and is published: every `N.root.json` (clients probe
/// for them, spec 5.3), and a role or snapshot version at or below the one
/// the current timestamp and snapshot name. A version above that was left
/// by a run that crashed before its timestamp, which no client ever saw.
/// Returns the names already on disk with exactly the new bytes.
fn check_published_unchanged(
    mirror: &Mirror,
    p: &Publication,
) -> Result<HashSet<String>, RepoError> {
    let tuf = mirror.tuf_dir();
    let mut same = HashSet::new();
    let mut state = None;
    for f in p.roles.iter().chain(&p.root).chain(&p.snapshot) {
        let name = f.file_name();
        let path = tuf.join(&name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(RepoError::io(&path)(e)),
        };
        if bytes == f.bytes {
            same.insert(name);
            continue;
        }
        if state.is_none() {
            state = Some(published_state(mirror)?);
        }
        if is_published(state.as_ref().and_then(Option::as_ref), f) {
            return Err(RepoError::RewritesPublished { file: name });
        }
    }
    Ok(same)
}

/// The state the current timestamp names; `None` before `init` wrote a root.
fn published_state(mirror: &Mirror) -> Result<Option<PublishedState>, RepoError> {
    match PublishedState::load(&mirror.tuf_dir(), mirror.root()) {
        Ok(s) => Ok(Some(s)),
        Err(RepoError::NotInitialised { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a client or mirror may hold `f`'s file (see
/// [`check_published_unchanged`]).
fn is_published(state: Option<&PublishedState>, f: &SignedFile) -> bool {
    let current = state.and_then(|s| s.current.as_ref());
    match f.role.as_str() {
        "root" => true,
        "snapshot" => current.is_some_and(|c| f.version <= c.snapshot_version()),
        role => state
            .and_then(|s| s.role_version(role))
            .is_some_and(|v| f.version <= v),
    }
}

/// Writes a publication in the crash-safe order. The caller holds the lock.
pub fn write(
    mirror: &Mirror,
    p: &Publication,
    fsync: bool,
    progress: &(dyn Fn() + Sync),
) -> Result<WriteStats, RepoError> {
    let tuf = mirror.tuf_dir();
    fs::create_dir_all(&tuf).map_err(RepoError::io(&tuf))?;
    let on_disk = check_published_unchanged(mirror, p)?;
    // A file already on disk with exactly these bytes is left as it is.
    let put = |f: &SignedFile, fsync: bool| match on_disk.contains(&f.file_name()) {
        true => Ok(()),
        false => write_atomic(&tuf, &f.file_name(), &f.bytes, fsync),
    };
    let mut stats = WriteStats::default();

    // A big publication is made durable by one syncfs below; a small one
    // (an upload) file by file, which does not wait for unrelated dirty data.
    let big = p.roles.len() + p.twins.len() > SYNCFS_ABOVE;
    // Twins (spread over the author directories, in parallel) and role
    // files at once; both are in place before the snapshot below names
    // anything. Many role files are written one after the other: they all
    // go to tuf/, and two threads creating and renaming in one directory
    // spent their time contending for its lock.
    let (twins, roles) = rayon::join(
        || {
            p.twins
                .par_iter()
                .map(|e| {
                    let r = ensure_twin(mirror, e, p.existing_twins.as_ref());
                    progress();
                    r
                })
                .collect::<Result<Vec<(bool, bool)>, _>>()
        },
        || {
            let one = |f: &SignedFile| {
                put(f, fsync && !big)?;
                progress();
                Ok::<(), RepoError>(())
            };
            if big {
                p.roles.iter().try_for_each(one)
            } else {
                // A few files, each fsynced: overlap the waits.
                p.roles.par_iter().try_for_each(one)
            }
        },
    );
    let twins = twins?;
    roles?;
    stats.linked = twins.iter().filter(|t| t.0).count();
    stats.copied = twins.iter().filter(|t| t.1).count();
    let mut count = |f: &SignedFile| {
        stats.metadata_files += 1;
        stats.metadata_bytes += f.bytes.len() as u64;
    };
    p.roles.iter().for_each(&mut count);
    if let Some(root) = &p.root {
        put(root, fsync)?;
        write_atomic(&tuf, "root.json", &root.bytes, fsync)?;
        count(root);
    }
    if fsync && big {
        // Twins (their directory entries), roles and root are durable
        // before the snapshot names them; the mirror tree and tuf/ may sit
        // on different file systems.
        sync_fs(mirror.root())?;
        sync_fs(&tuf)?;
    } else if fsync {
        let dirs: std::collections::BTreeSet<std::path::PathBuf> = p
            .twins
            .iter()
            .filter_map(|e| mirror.file(&e.path).parent().map(Path::to_path_buf))
            .collect();
        for d in &dirs {
            sync_dir(d)?;
        }
    }
    if let Some(s) = &p.snapshot {
        put(s, fsync)?;
        count(s);
    }
    if fsync {
        // The renames above must be durable before the timestamp names them.
        sync_dir(&tuf)?;
    }
    if let Some(t) = &p.timestamp {
        write_atomic(&tuf, &t.file_name(), &t.bytes, fsync)?;
        count(t);
        if fsync {
            sync_dir(&tuf)?;
        }
    }
    Ok(stats)
}

/// What pruning removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Superseded metadata files removed.
    pub metadata: usize,
    /// Stale hash-named twins removed.
    pub twins: usize,
}

fn older_than(t: SystemTime, retention: Duration) -> bool {
    SystemTime::now()
        .duration_since(t)
        .is_ok_and(|age| age > retention)
}

/// Removes superseded `N.ROLE.json` files (never roots: a client needs
/// every root version to walk the chain, spec 5.3). `current` is what the
/// published state names: the snapshot's version (as `snapshot`) and every
/// role's version in it.
///
/// - The current version of a role is never removed.
/// - An older version is removed once the version that superseded it has
///   been on disk longer than `retention`, so a client that fetched the
///   previous snapshot just before an update still finds what it names.
/// - A version above the current one was written by a run that crashed
///   before its timestamp; no snapshot ever named it (a later snapshot
///   naming a lower version would be a rollback, which `finish` refuses),
///   so it is removed at once. Left in place, it would look like the
///   newer version and get the current one pruned.
/// - Files of roles that `current` does not name are left alone.
pub fn prune_metadata(
    tuf: &Path,
    retention: Duration,
    current: &BTreeMap<String, u64>,
) -> Result<usize, RepoError> {
    let mut by_role: BTreeMap<String, Vec<(u64, std::path::PathBuf)>> = BTreeMap::new();
    for entry in fs::read_dir(tuf).map_err(RepoError::io(tuf))? {
        let entry = entry.map_err(RepoError::io(tuf))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let Some((v, role)) = stem.split_once('.') else {
            continue;
        };
        let Ok(v) = v.parse::<u64>() else { continue };
        if role == "root" {
            continue;
        }
        by_role
            .entry(role.to_owned())
            .or_default()
            .push((v, entry.path()));
    }
    let mut removed = 0;
    for (role, versions) in by_role.iter_mut() {
        let Some(&cur) = current.get(role) else {
            continue;
        };
        versions.sort();
        let (kept, strays): (Vec<_>, Vec<_>) = versions.drain(..).partition(|(v, _)| *v <= cur);
        for (_, path) in strays {
            fs::remove_file(&path).map_err(RepoError::io(&path))?;
            removed += 1;
        }
        for pair in kept.windows(2) {
            let newer = fs::metadata(&pair[1].1).and_then(|m| m.modified());
            if newer.is_ok_and(|t| older_than(t, retention)) {
                fs::remove_file(&pair[0].1).map_err(RepoError::io(&pair[0].1))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Removes hash-named twins that no longer match their plain file, once the
/// change is older than `retention`. The change time of the twin's inode is
/// when it last lost a link (for the twin of a removed upload, when the
/// upload was deleted) or when it was written (a mutable file's copy).
///
/// Only a file whose bytes match the hash in its name is a twin: anything
/// else with such a name (an upload that happens to be called
/// `<64 hex>.<name>`, a twin corrupted in place) is left for the operator,
/// and `verify` reports it. Temporary files of a copy that a killed run
/// left (`.tmp.<pid>.<twin>`) are removed at once: the caller holds the
/// lock, so no other run is writing them.
pub fn prune_twins<'a>(
    mirror: &Mirror,
    current: &HashMap<CpanPath, String>,
    twins: impl IntoIterator<Item = &'a CpanPath>,
    retention: Duration,
) -> Result<usize, RepoError> {
    use std::os::unix::fs::MetadataExt;
    let mut removed = 0;
    for twin in twins {
        let name = twin.file_name();
        let disk = mirror.file(twin);
        if is_twin_temp_name(name) {
            fs::remove_file(&disk).map_err(RepoError::io(&disk))?;
            removed += 1;
            continue;
        }
        let Some((plain, hash)) = plain_of_twin(twin) else {
            continue;
        };
        if current.get(&plain).is_some_and(|h| h == hash) {
            continue;
        }
        let Ok(m) = fs::symlink_metadata(&disk) else {
            continue;
        };
        let changed = SystemTime::UNIX_EPOCH + Duration::from_secs(m.ctime().max(0) as u64);
        if older_than(changed, retention) && mirror.hash_file(twin.clone())?.sha256_hex() == hash {
            fs::remove_file(&disk).map_err(RepoError::io(&disk))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The plain path a twin path stands for, and the hex hash in its name.
pub fn plain_of_twin(twin: &CpanPath) -> Option<(CpanPath, &str)> {
    let name = twin.file_name();
    if !is_twin_name(name) {
        return None;
    }
    let (hash, base) = name.split_at(64);
    let dir = &twin.as_str()[..twin.as_str().len() - name.len()];
    let plain = CpanPath::new(&format!("{dir}{}", &base[1..])).ok()?;
    Some((plain, hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A twin left with other bytes (a foreign or planted file, a crash
    /// mid-copy), even of the right length, is replaced by a hard link to
    /// the target, whether the writer looks first (incremental runs, and a
    /// full build for twins its scan found) or links first (a full build,
    /// for twins its scan did not find).
    #[test]
    fn a_twin_with_other_bytes_of_the_same_length_is_replaced_on_both_paths() {
        for existing in [None, Some(std::collections::HashSet::new())] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("authors/id/E/ET/ETHER");
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("X-1.tar.gz"), b"the real bytes").unwrap();
            let mirror = Mirror::open(tmp.path()).unwrap();
            let e = mirror
                .hash_file(CpanPath::new("authors/id/E/ET/ETHER/X-1.tar.gz").unwrap())
                .unwrap();
            let twin = mirror.file(&twin_path(&e.path, &e.sha256_hex()));
            fs::write(&twin, b"the fake bytes").unwrap();
            let rel = twin_path(&e.path, &e.sha256_hex());
            for existing in [existing.clone(), Some([rel].into())] {
                let p = Publication {
                    twins: vec![e.clone()],
                    existing_twins: existing.clone(),
                    ..Default::default()
                };
                let stats = write(&mirror, &p, false, &|| {}).unwrap();
                assert_eq!(stats.linked, 1, "{existing:?}");
                assert_eq!(fs::read(&twin).unwrap(), b"the real bytes");
                fs::remove_file(&twin).unwrap();
                fs::write(&twin, b"the fake bytes").unwrap();
            }
            let p = Publication {
                twins: vec![e.clone()],
                existing_twins: existing.clone(),
                ..Default::default()
            };
            let stats = write(&mirror, &p, false, &|| {}).unwrap();
            assert_eq!(stats.linked, 1, "{existing:?}");
            assert_eq!(fs::read(&twin).unwrap(), b"the real bytes");
            assert_eq!(
                fs::metadata(&twin).unwrap().ino(),
                fs::metadata(dir.join("X-1.tar.gz")).unwrap().ino()
            );
            // Run again: the twin is kept, nothing linked.
            assert_eq!(write(&mirror, &p, false, &|| {}).unwrap().linked, 0);
        }
    }

    /// The twin of a file PAUSE rewrites in place is a copy, never a hard
    /// link; one an older signer linked is replaced by a copy, and a copy
    /// already there is kept.
    #[test]
    fn a_mutable_files_twin_is_a_copy_and_a_legacy_hard_link_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("modules");
        fs::create_dir_all(&dir).unwrap();
        let live = dir.join("02packages.details.txt.gz");
        fs::write(&live, b"the index").unwrap();
        let mirror = Mirror::open(tmp.path()).unwrap();
        let e = mirror
            .hash_file(CpanPath::new("modules/02packages.details.txt.gz").unwrap())
            .unwrap();
        let twin = mirror.file(&twin_path(&e.path, &e.sha256_hex()));
        fs::hard_link(&live, &twin).unwrap();
        let p = Publication {
            twins: vec![e.clone()],
            ..Default::default()
        };
        let stats = write(&mirror, &p, false, &|| {}).unwrap();
        assert_eq!((stats.linked, stats.copied), (0, 1));
        let ino = |p: &Path| fs::metadata(p).unwrap().ino();
        assert_ne!(ino(&twin), ino(&live));
        assert_eq!(fs::read(&twin).unwrap(), b"the index");
        let stats = write(&mirror, &p, false, &|| {}).unwrap();
        assert_eq!((stats.linked, stats.copied), (0, 0));
    }

    /// A repository on disk as a first publish leaves it: root, targets,
    /// the index role listing nothing, snapshot 1 and the timestamp (the
    /// signer reads its own state without checking signatures).
    fn published_repo(dir: &Path) -> Mirror {
        use crate::{build, signed};
        use cpantuf_core::crypto::Ed25519Signer;
        use cpantuf_core::metadata::MetaFile;
        use std::num::NonZeroU64;
        let tuf = dir.join("tuf");
        fs::create_dir_all(&tuf).unwrap();
        let k = Ed25519Signer::from_seed(&[7; 32]);
        let key = k.public_key().clone();
        let one = NonZeroU64::MIN;
        let exp = chrono::Utc::now() + chrono::Duration::days(1);
        let keys = build::TopLevelKeys {
            root: (vec![key.clone()], one),
            targets: (vec![key.clone()], one),
            snapshot: (vec![key.clone()], one),
            timestamp: (vec![key.clone()], one),
        };
        let root = signed::sign("root", &build::root(one, exp, &keys), &[&k]);
        let targets = build::top_targets(one, exp, &key, &key, &[], [], 1);
        let targets = signed::sign("targets", &targets, &[&k]);
        let index = signed::sign("index", &build::leaf_of(one, exp, BTreeMap::new()), &[&k]);
        let entry = MetaFile {
            version: one,
            length: None,
            hashes: None,
        };
        let meta = [("targets.json", &entry), ("index.json", &entry)]
            .map(|(n, e)| (n.to_owned(), e.clone()))
            .into();
        let snap = signed::sign("snapshot", &build::snapshot(one, exp, meta), &[&k]);
        let ts = build::timestamp(one, exp, one, &snap.bytes);
        let ts = signed::sign("timestamp", &ts, &[&k]);
        for f in [&root, &targets, &index, &snap, &ts] {
            fs::write(tuf.join(f.file_name()), &f.bytes).unwrap();
        }
        fs::write(tuf.join("root.json"), &root.bytes).unwrap();
        Mirror::open(dir).unwrap()
    }

    /// `N.ROLE.json` with other bytes than `tuf/` holds for it.
    fn other_bytes(mirror: &Mirror, role: &str, version: u64) -> SignedFile {
        let name = format!("{version}.{role}.json");
        let mut bytes = fs::read(mirror.tuf_dir().join(&name)).unwrap_or_default();
        bytes.extend_from_slice(b" ");
        SignedFile {
            role: role.to_owned(),
            version: std::num::NonZeroU64::new(version).unwrap(),
            bytes,
        }
    }

    /// The signer invariant at the place files are written: a role file at
    /// or below the version the published snapshot names (here the index
    /// role's version 1) is never replaced with other bytes, whatever the
    /// caller computed; the whole publication is refused before anything
    /// (twins, other roles) reaches the disk.
    #[test]
    fn a_published_role_file_is_never_replaced_with_other_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = published_repo(tmp.path());
        let dir = tmp.path().join("modules");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("02packages.details.txt.gz"), b"index").unwrap();
        let e = mirror
            .hash_file(CpanPath::new("modules/02packages.details.txt.gz").unwrap())
            .unwrap();
        let published = fs::read(mirror.tuf_dir().join("1.index.json")).unwrap();
        let p = Publication {
            twins: vec![e.clone()],
            roles: vec![
                other_bytes(&mirror, "prefix-E-ET", 1),
                other_bytes(&mirror, "index", 1),
            ],
            ..Default::default()
        };
        let err = write(&mirror, &p, false, &|| {}).unwrap_err();
        assert!(
            matches!(&err, RepoError::RewritesPublished { file } if file == "1.index.json"),
            "{err}"
        );
        assert_eq!(
            fs::read(mirror.tuf_dir().join("1.index.json")).unwrap(),
            published
        );
        assert!(!mirror.tuf_dir().join("1.prefix-E-ET.json").exists());
        assert!(!mirror.file(&twin_path(&e.path, &e.sha256_hex())).exists());
        // The snapshot and root the state names are guarded alike.
        for f in [
            other_bytes(&mirror, "snapshot", 1),
            other_bytes(&mirror, "root", 1),
        ] {
            let p = Publication {
                snapshot: (f.role == "snapshot").then(|| f.clone()),
                root: (f.role == "root").then(|| f.clone()),
                ..Default::default()
            };
            let err = write(&mirror, &p, false, &|| {}).unwrap_err();
            assert!(matches!(err, RepoError::RewritesPublished { .. }), "{err}");
        }
    }

    /// A file above the published version was left by a run that crashed
    /// before its timestamp: no snapshot ever named it, so a new run may
    /// replace it.
    #[test]
    fn a_crashed_runs_unpublished_role_file_may_be_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = published_repo(tmp.path());
        let stray = mirror.tuf_dir().join("2.index.json");
        fs::write(&stray, b"left by a crashed run").unwrap();
        let f = other_bytes(&mirror, "index", 2);
        let p = Publication {
            roles: vec![f.clone()],
            ..Default::default()
        };
        write(&mirror, &p, false, &|| {}).unwrap();
        assert_eq!(fs::read(&stray).unwrap(), f.bytes);
    }
}
