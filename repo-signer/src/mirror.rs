//! The mirror directory: validated paths, the scan and hash of the CPAN
//! tree, the run lock and hash-named twins.
//!
//! Only `authors/` and `modules/` are signed (see [`cpantuf_core::cpan::owner`]);
//! `tuf/` and anything else at the top of the mirror is not a target.
//! A symbolic link anywhere in the signed tree is an error, not something to
//! follow or skip: a link could make a signed path serve bytes from outside
//! the mirror, and skipping it silently would leave a file unsigned.

use super::RepoError;
use cpantuf_core::cpan::{owner, CpanPath, Owner, PauseId};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Name of the metadata directory inside the mirror.
pub const TUF_DIR: &str = "tuf";
/// The lock file, at the top of the mirror (outside every signed area).
pub const LOCK_FILE: &str = ".cpantuf-sign.lock";

/// One file of the mirror, hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Its mirror-relative path, also its TUF target path.
    pub path: CpanPath,
    /// Length in bytes.
    pub length: u64,
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// Device and inode of the file that was hashed: a twin with the same
    /// pair is a hard link to those very bytes, with no need to hash it.
    pub file_id: (u64, u64),
}

impl FileEntry {
    /// The lowercase hex SHA-256.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// The hashed files of a mirror, grouped by the role that owns them.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Files owned by the index role.
    pub index: Vec<FileEntry>,
    /// Files owned by each author.
    pub authors: BTreeMap<PauseId, Vec<FileEntry>>,
}

impl Inventory {
    /// Number of files.
    pub fn len(&self) -> usize {
        self.index.len() + self.authors.values().map(Vec::len).sum::<usize>()
    }

    /// Whether there are no files.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sorts files into their owners' groups.
    pub fn from_entries(entries: Vec<FileEntry>) -> Result<Self, RepoError> {
        let mut inv = Inventory::default();
        for e in entries {
            match owner(&e.path)? {
                Owner::Index => inv.index.push(e),
                Owner::Author(id) => inv.authors.entry(id).or_default().push(e),
            }
        }
        inv.index.sort_by(|a, b| a.path.cmp(&b.path));
        for files in inv.authors.values_mut() {
            files.sort_by(|a, b| a.path.cmp(&b.path));
        }
        Ok(inv)
    }
}

/// Whether a file name is a hash-named twin (`<64 hex>.<name>`), which the
/// signer writes and never signs as a target of its own.
pub fn is_twin_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() > 65
        && b[64] == b'.'
        && b[..64]
            .iter()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether a file name is the temporary file of a twin copy
/// (`.tmp.<pid>.<twin name>`, see [`super::publish::write_atomic`]): left
/// only by a run that was killed mid-copy, never signed, removed by the
/// next full publish.
pub fn is_twin_temp_name(name: &str) -> bool {
    name.strip_prefix(".tmp.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(pid, twin)| {
            !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit()) && is_twin_name(twin)
        })
}

/// Whether the signer wrote this file itself: a twin or a twin's
/// temporary file. Neither is ever signed as a target.
pub fn is_signer_file(name: &str) -> bool {
    is_twin_name(name) || is_twin_temp_name(name)
}

/// The twin name of a target: `<dir>/<sha256hex>.<basename>`, the path a
/// client fetches under consistent snapshots (spec 5.7.3).
pub fn twin_path(path: &CpanPath, sha256_hex: &str) -> CpanPath {
    let name = path.file_name();
    let twin = format!("{sha256_hex}.{name}");
    let parent = &path.as_str()[..path.as_str().len() - name.len()];
    CpanPath::new(&format!("{parent}{twin}")).expect("a hex prefix keeps a CPAN path valid")
}

/// A mirror directory.
#[derive(Clone, Debug)]
pub struct Mirror {
    root: PathBuf,
}

/// Holds the signer lock until dropped.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

impl Mirror {
    /// Opens a mirror directory (it must exist).
    pub fn open(root: &Path) -> Result<Self, RepoError> {
        let root = fs::canonicalize(root).map_err(RepoError::io(root))?;
        Ok(Mirror { root })
    }

    /// The mirror root (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `MIRROR/tuf`.
    pub fn tuf_dir(&self) -> PathBuf {
        self.root.join(TUF_DIR)
    }

    /// The on-disk path of a mirror file.
    pub fn file(&self, path: &CpanPath) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(path.segments());
        p
    }

    /// Takes the exclusive signer lock, or fails at once if another run
    /// holds it (waiting could pile up cron runs).
    pub fn lock(&self) -> Result<LockGuard, RepoError> {
        let path = self.root.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(RepoError::io(&path))?;
        // File::try_lock is std since 1.89, newer than the workspace's
        // declared MSRV; the project's toolchain has it, and a std lock
        // beats a new dependency for this one call.
        #[allow(clippy::incompatible_msrv)]
        let locked = file.try_lock();
        match locked {
            Ok(()) => Ok(LockGuard { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(RepoError::Locked { path }),
            Err(std::fs::TryLockError::Error(e)) => Err(RepoError::io(&path)(e)),
        }
    }

    /// Turns a path given by an operator (absolute, or relative to the
    /// current directory) into a mirror path, refusing anything that leaves
    /// the mirror, through `..` or through a symbolic link at any level.
    pub fn resolve(&self, given: &Path) -> Result<CpanPath, RepoError> {
        let meta = fs::symlink_metadata(given).map_err(RepoError::io(given))?;
        if meta.file_type().is_symlink() {
            return Err(RepoError::Symlink {
                path: given.to_owned(),
            });
        }
        if !meta.is_file() {
            return Err(RepoError::NotAFile {
                path: given.to_owned(),
            });
        }
        // canonicalize resolves every symlinked directory on the way: a path
        // that only looks inside the mirror is caught here.
        let canon = fs::canonicalize(given).map_err(RepoError::io(given))?;
        let rel = canon
            .strip_prefix(&self.root)
            .map_err(|_| RepoError::OutsideMirror {
                path: given.to_owned(),
                mirror: self.root.clone(),
            })?;
        let rel_str = rel.to_str().ok_or_else(|| RepoError::BadPath {
            path: rel.to_string_lossy().into_owned(),
            source: cpantuf_core::cpan::CpanPathError::Empty,
        })?;
        CpanPath::new(rel_str).map_err(|source| RepoError::BadPath {
            path: rel_str.to_owned(),
            source,
        })
    }

    /// Every signable file of the mirror (`authors/`, `modules/`), twins
    /// excluded, in no particular order. Author prefix directories are
    /// walked in parallel.
    pub fn scan(&self) -> Result<Vec<CpanPath>, RepoError> {
        Ok(self.scan_with_twins()?.0)
    }

    /// Like [`Mirror::scan`], also returning the hash-named twins found
    /// (and temporary files of interrupted twin copies).
    pub fn scan_with_twins(&self) -> Result<(Vec<CpanPath>, Vec<CpanPath>), RepoError> {
        let mut out = Vec::new();
        let mut prefix_dirs = Vec::new();
        for top in ["modules", "authors"] {
            let dir = self.root.join(top);
            if !dir.exists() {
                continue;
            }
            for entry in read_dir_sorted(&dir)? {
                let (name, path, kind) = entry;
                let rel = format!("{top}/{name}");
                match kind {
                    Kind::File => push_path(&mut out, rel)?,
                    Kind::Dir if top == "authors" && name == "id" => {
                        for (l, lpath, lkind) in read_dir_sorted(&path)? {
                            match lkind {
                                Kind::Dir => {
                                    for (p, ppath, pkind) in read_dir_sorted(&lpath)? {
                                        let rel = format!("authors/id/{l}/{p}");
                                        match pkind {
                                            Kind::Dir => prefix_dirs.push((rel, ppath)),
                                            Kind::File => push_path(&mut out, rel)?,
                                        }
                                    }
                                }
                                Kind::File => push_path(&mut out, format!("authors/id/{l}"))?,
                            }
                        }
                    }
                    Kind::Dir => walk(&path, &rel, &mut out)?,
                }
            }
        }
        let nested: Vec<Vec<CpanPath>> = prefix_dirs
            .par_iter()
            .map(|(rel, path)| {
                let mut v = Vec::new();
                walk(path, rel, &mut v).map(|()| v)
            })
            .collect::<Result<_, _>>()?;
        out.extend(nested.into_iter().flatten());
        let (twins, files) = out.into_iter().partition(|p| is_signer_file(p.file_name()));
        Ok((files, twins))
    }

    /// Every signable file below one directory of the mirror (twins
    /// excluded); empty when the directory does not exist. Used where only
    /// one author's files matter, so a single upload never walks the
    /// whole mirror.
    pub fn scan_dir(&self, dir: &CpanPath) -> Result<Vec<CpanPath>, RepoError> {
        let disk = self.file(dir);
        if !disk.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        walk(&disk, dir.as_str(), &mut out)?;
        out.retain(|p| !is_signer_file(p.file_name()));
        Ok(out)
    }

    /// Hashes `paths` in parallel; `progress` is called once per file.
    pub fn hash_files(
        &self,
        paths: Vec<CpanPath>,
        progress: &(dyn Fn() + Sync),
    ) -> Result<Vec<FileEntry>, RepoError> {
        paths
            .into_par_iter()
            .map(|path| {
                let e = self.hash_file(path);
                progress();
                e
            })
            .collect()
    }

    /// Hashes one mirror file, refusing symlinks and non-files.
    ///
    /// The file is opened without following a final symlink and without
    /// blocking (a FIFO must not hang the run), then checked through the
    /// open descriptor: one path walk, and nothing can be swapped between
    /// the check and the read.
    pub fn hash_file(&self, path: CpanPath) -> Result<FileEntry, RepoError> {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        let disk = self.file(&path);
        let opened = fs::OpenOptions::new()
            .read(true)
            .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
            .open(&disk);
        let mut f = match opened {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                return Err(RepoError::Symlink { path: disk });
            }
            Err(e) => return Err(RepoError::io(&disk)(e)),
        };
        let meta = f.metadata().map_err(RepoError::io(&disk))?;
        if !meta.is_file() {
            return Err(RepoError::NotAFile { path: disk });
        }
        let file_id = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        // One read buffer per thread: zeroing 64 KiB for each of 300,000
        // small files cost more than hashing them.
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 64 * 1024]);
        }
        BUF.with(|buf| {
            let buf = &mut *buf.borrow_mut();
            let mut hasher = Sha256::new();
            let mut length = 0u64;
            loop {
                let n = f.read(buf).map_err(RepoError::io(&disk))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                length += n as u64;
            }
            Ok(FileEntry {
                path,
                length,
                sha256: hasher.finalize().into(),
                file_id,
            })
        })
    }
}

enum Kind {
    File,
    Dir,
}

fn push_path(out: &mut Vec<CpanPath>, rel: String) -> Result<(), RepoError> {
    let p = CpanPath::new(&rel).map_err(|source| RepoError::BadPath { path: rel, source })?;
    out.push(p);
    Ok(())
}

/// Entries of a directory with their kind; symlinks and special files are
/// errors.
fn read_dir_sorted(dir: &Path) -> Result<Vec<(String, PathBuf, Kind)>, RepoError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(RepoError::io(dir))? {
        let entry = entry.map_err(RepoError::io(dir))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(RepoError::io(&path))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(RepoError::BadPath {
                path: path.to_string_lossy().into_owned(),
                source: cpantuf_core::cpan::CpanPathError::Empty,
            });
        };
        if ft.is_symlink() {
            return Err(RepoError::Symlink { path });
        }
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File
        } else {
            return Err(RepoError::NotAFile { path });
        };
        out.push((name.to_owned(), path, kind));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<CpanPath>) -> Result<(), RepoError> {
    for (name, path, kind) in read_dir_sorted(dir)? {
        let child = format!("{rel}/{name}");
        match kind {
            Kind::File => push_path(out, child)?,
            Kind::Dir => walk(&path, &child, out)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twin_names() {
        let p = CpanPath::new("authors/id/E/ET/ETHER/x.tar.gz").unwrap();
        let h = "ab".repeat(32);
        let t = twin_path(&p, &h);
        assert_eq!(t.as_str(), format!("authors/id/E/ET/ETHER/{h}.x.tar.gz"));
        assert!(is_twin_name(t.file_name()));
        assert!(!is_twin_name("x.tar.gz"));
        assert!(!is_twin_name(&format!("{}.x", "AB".repeat(32))));
        assert!(is_twin_temp_name(&format!(".tmp.123.{}", t.file_name())));
        assert!(!is_twin_temp_name(&format!(".tmp..{}", t.file_name())));
        assert!(!is_twin_temp_name(".tmp.123.x.tar.gz"));
    }

    /// `hash_file` hashes regular files (big ones over several reads, with
    /// the per-thread buffer reused) and refuses a symlink, a directory and
    /// a FIFO, which it must not block on.
    #[test]
    fn hash_file_hashes_files_and_refuses_everything_else() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("authors/id/E/ET/ETHER");
        fs::create_dir_all(dir.join("sub")).unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(dir.join("big.tar.gz"), &big).unwrap();
        fs::write(dir.join("small.tar.gz"), b"abc").unwrap();
        std::os::unix::fs::symlink(dir.join("small.tar.gz"), dir.join("link.tar.gz")).unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            dir.join("fifo.tar.gz"),
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let m = Mirror::open(tmp.path()).unwrap();
        let cp = |n: &str| CpanPath::new(&format!("authors/id/E/ET/ETHER/{n}")).unwrap();
        for (name, bytes) in [
            ("big.tar.gz", &big[..]),
            ("small.tar.gz", b"abc"),
            ("big.tar.gz", &big[..]),
        ] {
            let e = m.hash_file(cp(name)).unwrap();
            assert_eq!(e.length, bytes.len() as u64);
            assert_eq!(e.sha256, <[u8; 32]>::from(Sha256::digest(bytes)));
        }
        assert!(matches!(
            m.hash_file(cp("link.tar.gz")),
            Err(RepoError::Symlink { .. })
        ));
        assert!(matches!(
            m.hash_file(cp("fifo.tar.gz")),
            Err(RepoError::NotAFile { .. })
        ));
        assert!(matches!(
            m.hash_file(cp("sub")),
            Err(RepoError::NotAFile { .. })
        ));
        assert!(m.hash_file(cp("missing.tar.gz")).is_err());
    }
}
