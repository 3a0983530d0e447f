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

    /// Replaces `role`'s stored bytes without syncing ([`write_replacing`]), for a caller that
    /// syncs the filesystem before relying on them. Safe only for a role whose stored copy is
    /// verified again whenever it is loaded (a delegated targets role, checked against the
    /// snapshot): a copy torn by a crash is then refused and fetched again.
    pub fn persist_unsynced(&self, role: &str, bytes: &[u8]) -> io::Result<()> {
        write_replacing(&self.path_of(role), bytes)
    }

    /// Takes an exclusive lock on the store for the life of the returned
    /// file handle, waiting for another process that holds it.
    pub fn lock(&self) -> io::Result<File> {
        self.lock_announcing(|_| {})
    }

    /// Like [`MetadataStore::lock`], but when another process holds the
    /// lock, first calls `waiting` with a line naming it (as the holder
    /// recorded itself in the lock file), so that a wait is never silent.
    pub fn lock_announcing(&self, waiting: impl FnOnce(&str)) -> io::Result<File> {
        let path = self.dir.join(LOCK_FILE);
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        match f.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = io::Read::read_to_string(&mut f, &mut holder);
                let holder: String = holder
                    .trim()
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .take(200)
                    .collect();
                let holder = if holder.is_empty() {
                    "another process".into()
                } else {
                    holder
                };
                waiting(&format!(
                    "waiting for the lock on {}, held by {holder}",
                    self.dir.display()
                ));
                f.lock()?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        // Recorded for the message above, in whoever waits next.
        let me: Vec<String> = std::env::args().collect();
        f.set_len(0)?;
        io::Seek::seek(&mut f, io::SeekFrom::Start(0))?;
        write!(f, "pid {} ({})", std::process::id(), me.join(" "))?;
        Ok(f)
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, syncing
/// the file and its directory. The file gets the mode the umask leaves of
/// 0666, as a plain `File::create` would (0644 under the usual umask 022):
/// what `sync` publishes and `mirror --to` writes is read by other users.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], with the contents written by `write` as they are made, so that a
/// large encoding never sits in memory whole.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    replace(path, write, true)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Like [`write_atomic`] (a new file renamed over the name, so another hard link to the old
/// file is never written through), without the syncs: for a writer that makes the whole
/// filesystem durable (`syncfs`) before anything relies on the file, as the mirror's sync
/// does before it publishes. A crash before that may leave the old bytes, the new or a torn
/// file under the name.
pub fn write_replacing(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, |w| w.write_all(bytes), false)
}

fn replace(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    sync: bool,
) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".partial")
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    {
        let mut out = io::BufWriter::new(tmp.as_file_mut());
        write(&mut out)?;
        out.flush()?;
    }
    if sync {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Syncs a directory so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Waiting for another holder of the lock used to be silent.
    #[test]
    fn waiting_for_the_lock_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::new(dir.path());
        let held = store.lock().unwrap();
        let (tx, rx) = mpsc::channel();
        let other = store.clone();
        let waiter = std::thread::spawn(move || {
            let tx2 = tx.clone();
            let _f = other
                .lock_announcing(move |line| tx2.send(line.to_owned()).unwrap())
                .unwrap();
            tx.send("acquired".into()).unwrap();
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            line.contains("waiting for the lock")
                && line.contains(&format!("pid {}", std::process::id())),
            "{line}"
        );
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "lock taken twice"
        );
        drop(held);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            "acquired"
        );
        waiter.join().unwrap();
    }
}
