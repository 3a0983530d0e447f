//! Gzip helpers for the index files.
//!
//! Compression is deterministic (no timestamp, no file name in the gzip
//! header) so that regenerating an index from the same input gives the same
//! bytes, and hence the same TUF hashes. Decompression is bounded, because a
//! few kilobytes of gzip can expand to gigabytes.

use std::io::{self, Read, Write};

use flate2::read::GzDecoder;
use flate2::{Compression, GzBuilder};

/// Why gzip data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    /// The data is not valid gzip, or reading it failed.
    #[error("gzip: {0}")]
    Io(#[from] io::Error),
    /// The uncompressed data is larger than allowed.
    #[error("uncompressed data exceeds {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: u64,
    },
}

/// Compresses `data` with the default level and an all-zero gzip header
/// timestamp.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzBuilder::new()
        .mtime(0)
        .write(Vec::with_capacity(data.len() / 4), Compression::default());
    // Writing into a Vec cannot fail.
    enc.write_all(data).expect("write to Vec");
    enc.finish().expect("write to Vec")
}

/// Decompresses gzip data (all members) from `reader`, refusing more than
/// `limit` uncompressed bytes.
pub fn gunzip_limited<R: Read>(reader: R, limit: u64) -> Result<Vec<u8>, GzipError> {
    let mut out = Vec::new();
    // MultiGzDecoder is not needed: our writers and PAUSE write one member.
    let mut dec = GzDecoder::new(reader).take(limit.saturating_add(1));
    dec.read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(GzipError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_determinism() {
        let data = b"hello hello hello hello\n".repeat(100);
        let a = gzip(&data);
        assert_eq!(a, gzip(&data));
        // Header bytes 4..8 are the timestamp.
        assert_eq!(&a[4..8], &[0, 0, 0, 0]);
        assert_eq!(gunzip_limited(&a[..], 1 << 20).unwrap(), data);
    }

    #[test]
    fn bomb_is_refused() {
        let data = vec![0u8; 1 << 20];
        let z = gzip(&data);
        assert!(z.len() < 4096);
        assert!(matches!(
            gunzip_limited(&z[..], 1000),
            Err(GzipError::TooLarge { limit: 1000 })
        ));
        assert_eq!(gunzip_limited(&z[..], 1 << 20).unwrap().len(), 1 << 20);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(
            gunzip_limited(&b"not gzip at all"[..], 100),
            Err(GzipError::Io(_))
        ));
        let z = gzip(b"some text");
        assert!(matches!(
            gunzip_limited(&z[..z.len() - 4], 100),
            Err(GzipError::Io(_))
        ));
    }
}
