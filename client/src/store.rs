//! Persistent trusted metadata on disk.
//!
//! One file per role, `<encoded role name>.json`, holding the exact bytes
//! that were verified (never a re-serialisation). Writes go to a temporary
//! file in the same directory, are flushed, then renamed over the old file,
//! and the directory is synced: a crash leaves either the old or the new
//! bytes, never a torn file. A failed update writes nothing, because the
//! workflow only persists after verification.
//!
//! The directory holds nothing else ending in `.json` (the TUF conformance
//! suite reads every `*.json` there as metadata); temporary files and the
//! lock use other names.

use cpantuf_core::workflow::encode_role_name;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A directory of trusted metadata.
#[derive(Debug, Clone)]
pub struct MetadataStore {
    dir: PathBuf,
}

/// Name of the lock file that keeps two updates of one store apart.
pub const LOCK_FILE: &str = ".cpantuf.lock";

impl MetadataStore {
    /// Uses `dir`, which must exist.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        MetadataStore { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds `role`.
    pub fn path_of(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", encode_role_name(role)))
    }

    /// Reads `role`'s stored bytes, if any.
    pub fn load(&self, role: &str) -> Option<Vec<u8>> {
        fs::read(self.path_of(role)).ok()
    }

    /// Atomically replaces `role`'s stored bytes.
    pub fn persist(&self, role: &str, bytes: &[u8]) -> io::Result<()> {
        write_atomic(&self.path_of(role), bytes)
    }

    /// Takes an exclusive lock on the store for the life of the returned
    /// file handle, waiting for another process that holds it.
    pub fn lock(&self) -> io::Result<File> {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK_FILE))?;
        f.lock()?;
        Ok(f)
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, syncing
/// the file and its directory. The file gets the mode the umask leaves of
/// 0666, as a plain `File::create` would (0644 under the usual umask 022):
/// what `sync` publishes and `mirror --to` writes is read by other users.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".partial")
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Syncs a directory so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
