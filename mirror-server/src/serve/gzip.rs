//! Gzip copies of metadata files, made once per file version and kept in memory.
//!
//! Metadata is signed JSON that every client fetches; compressing it on each request would
//! spend more CPU than the TLS does. Entries are keyed by (device, inode, length, mtime), so a
//! new file version never hits an old entry. When the budget is exceeded the cache is simply
//! emptied: metadata versions roll over as a whole, so recency tracking would buy little.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Mutex;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;

use super::entity::FileKey;

/// The cache; see the module docs.
pub struct GzipCache {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    bytes: usize,
    entries: HashMap<FileKey, Bytes>,
}

impl GzipCache {
    /// A cache holding at most `budget` compressed bytes.
    pub fn new(budget: usize) -> Self {
        GzipCache {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lookup(&self, key: &FileKey) -> Option<Bytes> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .get(key)
            .cloned()
    }

    fn store(&self, key: FileKey, value: &Bytes) {
        if value.len() > self.budget {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.bytes + value.len() > self.budget {
            inner.entries.clear();
            inner.bytes = 0;
        }
        if inner.entries.insert(key, value.clone()).is_none() {
            inner.bytes += value.len();
        }
    }

    /// Compresses on the calling thread: for small files, where a thread hop costs more.
    pub fn get_or_compress_now(&self, key: FileKey, plain: Bytes) -> std::io::Result<Bytes> {
        if let Some(hit) = self.lookup(&key) {
            return Ok(hit);
        }
        let compressed = compress(&plain)?;
        self.store(key, &compressed);
        Ok(compressed)
    }

    /// Compresses on the blocking pool what `read` returns, unless already cached.
    pub async fn get_or_compress<F>(&self, key: FileKey, read: F) -> std::io::Result<Bytes>
    where
        F: FnOnce() -> std::io::Result<Bytes> + Send + 'static,
    {
        if let Some(hit) = self.lookup(&key) {
            return Ok(hit);
        }
        let compressed = tokio::task::spawn_blocking(move || compress(&read()?))
            .await
            .map_err(std::io::Error::other)??;
        self.store(key, &compressed);
        Ok(compressed)
    }
}

fn compress(plain: &[u8]) -> std::io::Result<Bytes> {
    let mut enc = GzEncoder::new(Vec::with_capacity(plain.len() / 4), Compression::default());
    enc.write_all(plain)?;
    Ok(Bytes::from(enc.finish()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn key(ino: u64) -> FileKey {
        FileKey {
            dev: 0,
            ino,
            len: 0,
            mtime_ns: 0,
        }
    }

    #[test]
    fn compressed_copies_round_trip_and_are_reused() {
        let cache = GzipCache::new(1 << 20);
        let plain = Bytes::from("{\"signed\": {}}".repeat(100));
        let a = cache.get_or_compress_now(key(4), plain.clone()).unwrap();
        let b = cache.get_or_compress_now(key(4), Bytes::new()).unwrap();
        assert_eq!(a, b, "the second call is a hit and ignores its input");
        let mut out = String::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out.as_bytes(), &plain[..]);
    }

    #[test]
    fn the_budget_is_respected() {
        let cache = GzipCache::new(64);
        for i in 0..100u64 {
            let plain = Bytes::from(format!("{i:0>40}"));
            cache.get_or_compress_now(key(i), plain).unwrap();
            assert!(cache.inner.lock().unwrap().bytes <= 64);
        }
    }
}
