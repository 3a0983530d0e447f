//! The mirror root and the only way into it.
//!
//! Security invariant: a request can only open a regular file at or below the directory that
//! `--root` names. Two independent layers keep it so:
//!
//! 1. [`RequestPath::parse`] refuses anything that is not a plain relative path once decoded:
//!    dot segments (`..`, `%2e%2e`), encoded separators (`%2f`, `%5c`), NUL and other control
//!    characters, and hidden names (which also hides the temporary files a sync writes).
//! 2. [`RootDir::open`] opens with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` relative
//!    to a directory handle, so the kernel refuses any lookup that would leave the tree, by a
//!    symlink or otherwise, even if layer 1 had a bug.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

use super::entity::{FileEntity, FileKey, SmallFileCache};

/// Longest request path accepted, after decoding.
const MAX_PATH_BYTES: usize = 4096;
/// Longest single path segment (Linux `NAME_MAX`).
const MAX_SEGMENT_BYTES: usize = 255;

/// A request path made safe to look up under the root: `/`-separated, non-empty segments, none
/// of them `.`, `..` or hidden, no control characters, valid UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath(String);

/// Why a request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not an origin-form path (does not start with `/`).
    NotAbsolute,
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8 once decoded.
    BadEncoding,
    /// `%2f` or `%5c`: a separator hidden inside a segment.
    EncodedSeparator,
    /// A `.` or `..` segment.
    DotSegment,
    /// NUL, another control character, or a backslash.
    ForbiddenCharacter,
    /// Longer than the limits above.
    TooLong,
    /// A segment starting with `.`: never served.
    Hidden,
}

impl RequestPath {
    /// Parses the path part of a request target (no query string).
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        if raw.len() > MAX_PATH_BYTES * 3 {
            return Err(PathError::TooLong);
        }
        let mut out = String::with_capacity(rest.len());
        let mut hidden = false;
        // Empty segments (`//`) are merged, as most servers do; they cannot climb.
        for segment in rest.split('/').filter(|s| !s.is_empty()) {
            let decoded = decode_segment(segment)?;
            if decoded == "." || decoded == ".." {
                return Err(PathError::DotSegment);
            }
            if decoded.len() > MAX_SEGMENT_BYTES {
                return Err(PathError::TooLong);
            }
            if decoded.chars().any(|c| c.is_control() || c == '\\') {
                return Err(PathError::ForbiddenCharacter);
            }
            // Keep checking the later segments: a `..` after a hidden name is still an attack.
            hidden |= decoded.starts_with('.');
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(&decoded);
        }
        if out.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        if hidden {
            return Err(PathError::Hidden);
        }
        Ok(RequestPath(out))
    }

    /// The path relative to the root; empty for the root itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment (the file name), or `""` for the root.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }
}

fn decode_segment(segment: &str) -> Result<String, PathError> {
    if !segment.contains('%') {
        return Ok(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathError::BadEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| PathError::BadEncoding)?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| PathError::BadEncoding)?;
            if b == b'/' || b == b'\\' {
                return Err(PathError::EncodedSeparator);
            }
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathError::BadEncoding)
}

/// Why a file could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// No such regular file (missing, a directory, a special file, or a link leaving the root).
    NotFound,
    /// The file exists but this process may not read it.
    Forbidden,
    /// Any other I/O failure.
    Io(io::Error),
}

/// One opened root directory: every lookup of a request is made relative to it, so a request
/// sees one mirror state even if the root symlink is switched while it runs.
pub struct RootDir {
    fd: OwnedFd,
    id: (u64, u64),
    cache: SmallFileCache,
}

impl RootDir {
    fn open(path: &Path, cache: CacheLimits) -> io::Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        Ok(RootDir {
            fd,
            id: (st.st_dev, st.st_ino),
            cache: SmallFileCache::new(cache.budget, cache.max_file),
        })
    }

    /// True if the directory can still be read (it has not been removed or made unreadable).
    pub fn is_readable(&self) -> bool {
        rustix::fs::openat(
            &self.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .is_ok()
    }

    /// The regular file at `path` below this root: from the small-file cache if it is still
    /// the same file there, else opened through the confined lookup (and cached if small).
    pub fn open_file(&self, path: &RequestPath) -> Result<FileEntity, OpenError> {
        let rel = path.as_str();
        if rel.is_empty() {
            return Err(OpenError::NotFound);
        }
        if let Some(hit) = self.cache.get(rel) {
            let (key, bytes) = &*hit;
            // Unconfined stat, but only compared with an identity found by a confined open.
            let now = rustix::fs::statat(&self.fd, rel, AtFlags::empty())
                .ok()
                .and_then(|st| FileKey::of(&st));
            if now == Some(*key) {
                return Ok(FileEntity::memory(bytes.clone(), *key));
            }
        }
        let fd = rustix::fs::openat2(
            &self.fd,
            rel,
            // NONBLOCK: opening a FIFO planted in the tree must not hang a worker thread.
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|errno| match errno {
            rustix::io::Errno::NOENT
            | rustix::io::Errno::NOTDIR
            | rustix::io::Errno::LOOP
            | rustix::io::Errno::NAMETOOLONG => OpenError::NotFound,
            // EXDEV: the kernel refused a lookup that would have left the root.
            rustix::io::Errno::XDEV => {
                tracing::warn!(path = rel, "refused a lookup escaping the root");
                OpenError::NotFound
            }
            rustix::io::Errno::ACCESS | rustix::io::Errno::PERM => OpenError::Forbidden,
            other => OpenError::Io(other.into()),
        })?;
        let st = rustix::fs::fstat(&fd).map_err(|e| OpenError::Io(e.into()))?;
        let key = FileKey::of(&st).ok_or(OpenError::NotFound)?;
        let entity = FileEntity::file(File::from(fd), key);
        if !self.cache.admits(key.len) {
            return Ok(entity);
        }
        let bytes = entity.read_all().map_err(OpenError::Io)?;
        self.cache.insert(rel, key, bytes.clone());
        Ok(FileEntity::memory(bytes, key))
    }
}

/// The `--root` path and the directory it currently names.
pub struct Root {
    path: PathBuf,
    cache: CacheLimits,
    current: RwLock<Arc<RootDir>>,
}

/// Size limits of each root directory's small-file cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Bytes held at most.
    pub budget: usize,
    /// Largest file kept.
    pub max_file: u64,
}

impl Root {
    /// Opens the root, and checks that this kernel confines lookups with `openat2`.
    pub fn open(path: &Path, cache: CacheLimits) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let dir = RootDir::open(path, cache)
            .with_context(|| format!("opening root {}", path.display()))?;
        match rustix::fs::openat2(
            &dir.fd,
            ".",
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::DIRECTORY,
            Mode::empty(),
            ResolveFlags::BENEATH,
        ) {
            Ok(_) => {}
            Err(rustix::io::Errno::NOSYS) => anyhow::bail!(
                "this kernel lacks openat2 (Linux 5.6+), which keeps file lookups inside the root"
            ),
            Err(e) => return Err(io::Error::from(e)).context("probing openat2 on the root"),
        }
        Ok(Root {
            path: path.to_owned(),
            cache,
            current: RwLock::new(Arc::new(dir)),
        })
    }

    /// The directory to resolve one request against.
    pub fn current(&self) -> Arc<RootDir> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Re-resolves the `--root` path; returns true if it now names another directory.
    pub fn refresh(&self) -> io::Result<bool> {
        let st = rustix::fs::stat(&self.path)?;
        if (st.st_dev, st.st_ino) == self.current().id {
            return Ok(false);
        }
        // The new directory starts with an empty cache; the old one goes when its last
        // request does.
        let dir = RootDir::open(&self.path, self.cache)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(dir);
        Ok(true)
    }

    /// The configured root path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: CacheLimits = CacheLimits {
        budget: 1 << 20,
        max_file: 1024,
    };

    fn ok(raw: &str) -> String {
        RequestPath::parse(raw).unwrap().as_str().to_owned()
    }

    #[test]
    fn plain_paths_pass_unchanged() {
        assert_eq!(
            ok("/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"),
            "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
        );
        assert_eq!(
            ok("/modules/02packages.details.txt.gz"),
            "modules/02packages.details.txt.gz"
        );
        assert_eq!(ok("/"), "");
        assert_eq!(ok("//authors//id/"), "authors/id");
        assert_eq!(ok("/a%20b/c%2Bd"), "a b/c+d");
        assert_eq!(ok("/12.snapshot.json"), "12.snapshot.json");
        assert_eq!(
            RequestPath::parse("/a/b/c.json").unwrap().file_name(),
            "c.json"
        );
    }

    #[test]
    fn traversal_is_refused_in_every_spelling() {
        use PathError::*;
        let cases = [
            ("/../etc/passwd", DotSegment),
            ("/authors/../../etc/passwd", DotSegment),
            ("/%2e%2e/etc/passwd", DotSegment),
            ("/%2E%2E/%2E%2E/etc/passwd", DotSegment),
            ("/.%2e/etc/passwd", DotSegment),
            ("/authors/./id", DotSegment),
            ("/authors%2f..%2f..%2fetc%2fpasswd", EncodedSeparator),
            ("/authors/..%2Fetc", EncodedSeparator),
            ("/authors/..%5cetc", EncodedSeparator),
            ("/authors/%00", ForbiddenCharacter),
            ("/authors\\..\\etc", ForbiddenCharacter),
            ("/a%0d%0aSet-Cookie:x", ForbiddenCharacter),
            ("/a%zz", BadEncoding),
            ("/a%2", BadEncoding),
            ("/%ff%fe", BadEncoding),
            ("/.git/config", Hidden),
            ("/authors/.sync-tmp/x", Hidden),
            ("/.hidden/../x", DotSegment),
            ("etc/passwd", NotAbsolute),
            ("*", NotAbsolute),
        ];
        for (raw, want) in cases {
            assert_eq!(RequestPath::parse(raw), Err(want), "{raw}");
        }
        assert_eq!(
            RequestPath::parse(&format!("/{}", "a".repeat(256))),
            Err(TooLong)
        );
        assert_eq!(RequestPath::parse(&"/aaaa".repeat(1100)), Err(TooLong));
    }

    #[test]
    fn symlinks_out_of_the_root_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("authors")).unwrap();
        std::fs::write(tmp.path().join("secret"), "secret").unwrap();
        std::fs::write(root.join("authors/ok.txt"), "ok").unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("authors/escape")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        std::os::unix::fs::symlink("ok.txt", root.join("authors/inside")).unwrap();
        let dir = Root::open(&root, LIMITS).unwrap().current();
        let open = |p: &str| dir.open_file(&RequestPath::parse(p).unwrap());
        assert!(open("/authors/ok.txt").is_ok());
        assert!(
            open("/authors/inside").is_ok(),
            "a link staying inside the root is fine"
        );
        assert!(matches!(open("/authors/escape"), Err(OpenError::NotFound)));
        assert!(matches!(open("/etc/passwd"), Err(OpenError::NotFound)));
        assert!(
            matches!(open("/authors"), Err(OpenError::NotFound)),
            "directories are not files"
        );
        assert!(matches!(open("/"), Err(OpenError::NotFound)));
        // ok.txt is now cached; replaced by a link out of the root, it must not be served,
        // neither from the cache nor through the link.
        std::fs::remove_file(root.join("authors/ok.txt")).unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("authors/ok.txt")).unwrap();
        assert!(matches!(open("/authors/ok.txt"), Err(OpenError::NotFound)));
    }

    #[test]
    fn a_switched_root_symlink_is_followed_after_refresh() {
        let tmp = tempfile::tempdir().unwrap();
        for (state, body) in [("a", "old"), ("b", "new")] {
            std::fs::create_dir(tmp.path().join(state)).unwrap();
            std::fs::write(tmp.path().join(state).join("timestamp.json"), body).unwrap();
        }
        let link = tmp.path().join("current");
        std::os::unix::fs::symlink("a", &link).unwrap();
        let root = Root::open(&link, LIMITS).unwrap();
        let read = |root: &Root| {
            let e = root
                .current()
                .open_file(&RequestPath::parse("/timestamp.json").unwrap())
                .unwrap();
            String::from_utf8(e.read_all().unwrap().to_vec()).unwrap()
        };
        assert_eq!(read(&root), "old");
        assert!(!root.refresh().unwrap());
        let held = root.current();
        std::os::unix::fs::symlink("b", tmp.path().join("next")).unwrap();
        std::fs::rename(tmp.path().join("next"), &link).unwrap();
        assert!(root.refresh().unwrap());
        assert_eq!(read(&root), "new");
        // A request that took the old directory keeps seeing the old state.
        let e = held
            .open_file(&RequestPath::parse("/timestamp.json").unwrap())
            .unwrap();
        assert_eq!(&e.read_all().unwrap()[..], b"old");
    }
}
