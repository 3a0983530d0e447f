//! One version of one file, as a response is built from it: its identity, and its bytes
//! either in memory or still in the open file. Also the cache of small files' bytes.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rustix::fs::{FileType, Stat};

use super::body::Body;

/// Identity of one version of a file: device, inode, length, modification time (ns). A file
/// replaced by rename, or rewritten, gets a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
    pub mtime_ns: i128,
}

impl FileKey {
    /// The key of a `stat` result; `None` unless it is a regular file.
    pub fn of(st: &Stat) -> Option<Self> {
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return None;
        }
        Some(FileKey {
            dev: st.st_dev,
            ino: st.st_ino,
            len: u64::try_from(st.st_size).unwrap_or(0),
            mtime_ns: i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec),
        })
    }

    fn modified(&self) -> SystemTime {
        let ns = self.mtime_ns.max(0);
        UNIX_EPOCH
            + Duration::new(
                u64::try_from(ns / 1_000_000_000).unwrap_or(0),
                u32::try_from(ns % 1_000_000_000).unwrap_or(0),
            )
    }
}

enum Source {
    Memory(Bytes),
    File(File),
}

/// See the module docs.
pub struct FileEntity {
    source: Source,
    pub key: FileKey,
}

impl FileEntity {
    /// A file opened for this request.
    pub fn file(file: File, key: FileKey) -> Self {
        FileEntity {
            source: Source::File(file),
            key,
        }
    }

    /// Bytes already in memory.
    pub fn memory(bytes: Bytes, key: FileKey) -> Self {
        FileEntity {
            source: Source::Memory(bytes),
            key,
        }
    }

    pub fn len(&self) -> u64 {
        self.key.len
    }

    pub fn modified(&self) -> SystemTime {
        self.key.modified()
    }

    /// Strong validator: changes whenever the length or the modification time does. Equal for
    /// the same file in two mirror states when the sync preserves modification times.
    pub fn etag(&self, gzip: bool) -> String {
        let suffix = if gzip { "-gz" } else { "" };
        format!("\"{:x}-{:x}{suffix}\"", self.key.len, self.key.mtime_ns)
    }

    /// The whole content. One `pread` for a file; a cheap clone for memory.
    pub fn read_all(&self) -> std::io::Result<Bytes> {
        match &self.source {
            Source::Memory(b) => Ok(b.clone()),
            Source::File(f) => {
                let mut buf = vec![0; usize::try_from(self.key.len).unwrap_or(usize::MAX)];
                // A short read means the file shrank after fstat: an error, not a short body.
                f.read_exact_at(&mut buf, 0)?;
                Ok(Bytes::from(buf))
            }
        }
    }

    /// The body for bytes `span` of the content.
    pub fn into_body(self, span: std::ops::Range<u64>) -> Body {
        match self.source {
            Source::Memory(b) => Body::full(b.slice(span.start as usize..span.end as usize)),
            Source::File(f) => Body::file(f, span.start, span.end - span.start),
        }
    }
}

/// Bytes of small files, so that a hit costs one `stat` instead of open, read and close.
///
/// Security invariant: an entry is only ever created from a file opened through the confined
/// `openat2` lookup, and is only served while a fresh `stat` of the same path finds the same
/// (device, inode, length, mtime). A path that now leads elsewhere (a switched symlink, a
/// replaced file) finds another identity and goes back through the confined open.
pub struct SmallFileCache {
    budget: usize,
    max_file: u64,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    bytes: usize,
    entries: HashMap<Box<str>, Arc<(FileKey, Bytes)>>,
}

impl SmallFileCache {
    /// Holds at most `budget` bytes, of files no larger than `max_file` bytes each.
    pub fn new(budget: usize, max_file: u64) -> Self {
        SmallFileCache {
            budget,
            max_file,
            inner: RwLock::new(Inner::default()),
        }
    }

    /// True if a file of this length would be kept.
    pub fn admits(&self, len: u64) -> bool {
        len <= self.max_file && self.budget > 0
    }

    pub fn get(&self, path: &str) -> Option<Arc<(FileKey, Bytes)>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.entries.get(path).cloned()
    }

    pub fn insert(&self, path: &str, key: FileKey, bytes: Bytes) {
        let len = bytes.len();
        if len > self.budget {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.bytes + len > self.budget {
            // Evict about a quarter, in hash order (effectively random): cheap, and no
            // bookkeeping on the hit path, which only takes a read lock.
            let target = self.budget - self.budget / 4;
            let mut bytes = inner.bytes;
            inner.entries.retain(|_, e| {
                if bytes + len <= target {
                    return true;
                }
                bytes -= e.1.len();
                false
            });
            inner.bytes = bytes;
        }
        if let Some(old) = inner.entries.insert(path.into(), Arc::new((key, bytes))) {
            inner.bytes -= old.1.len();
        }
        inner.bytes += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64) -> FileKey {
        FileKey {
            dev: 1,
            ino,
            len: 10,
            mtime_ns: 0,
        }
    }

    #[test]
    fn cache_stays_within_budget_and_replaces_entries() {
        let cache = SmallFileCache::new(100, 10);
        for i in 0..50 {
            cache.insert(&format!("f{i}"), key(i), Bytes::from(vec![0; 10]));
            assert!(cache.inner.read().unwrap().bytes <= 100);
        }
        cache.insert("f49", key(99), Bytes::from(vec![1; 10]));
        assert_eq!(cache.get("f49").unwrap().0.ino, 99);
        let inner = cache.inner.read().unwrap();
        assert_eq!(
            inner.bytes,
            inner.entries.values().map(|e| e.1.len()).sum::<usize>()
        );
    }
}
