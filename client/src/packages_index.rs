//! A derived lookup copy of the verified 02packages, so that resolving one
//! module does not gunzip and parse 263,745 lines on every run.
//!
//! After the client has verified `modules/02packages.details.txt.gz` (its
//! length and hashes are those the trusted targets metadata signs) and
//! [`Packages::parse`] has accepted all of it (layout, order, uniqueness),
//! the uncompressed bytes are written next to it, atomically, behind one tag
//! line naming the sha256 of the verified `.gz`, the derived file's size and
//! the modification time cpantuf gave it (whole seconds):
//!
//! ```text
//! cpantuf-02packages-index v1 sha256=<64 hex> size=<bytes> body=<offset> mtime=<secs>
//! <the uncompressed 02packages, exactly as verified>
//! ```
//!
//! A lookup binary-searches the sorted body with a few positioned reads (as
//! cpm does over the plain file) and parses only the lines it lands on.
//!
//! # Why this is as strong as re-parsing the verified file
//!
//! The derived file is used only when its tag names the sha256 that the
//! *currently trusted* metadata signs for 02packages and its size and
//! modification time are the ones the tag records; anything else (an older
//! index, a torn file, a file another program edited, a missing tag) is
//! rebuilt from the verified `.gz`. Its body was produced by
//! cpantuf itself from bytes that had just passed the TUF hash check and the
//! full parser, and reaches its final name only by an atomic rename, so a
//! crash cannot leave a half-written file with a valid tag. The one way to
//! get a matching tag in front of other bytes is to write into the client
//! home, and whoever can do that can equally replace the cached `.gz` or the
//! trusted metadata itself: the derived file adds no new party to trust.
//! Every line an answer comes from is still parsed with PAUSE's exact
//! layout rules ([`PackageEntry::parse_line`]); a line that fails them makes
//! the whole derived file count as damaged, and it is rebuilt.

use cpantuf_core::cpan::gz;
use cpantuf_core::cpan::packages::{PackageEntry, Packages, ParseLimits};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MAGIC: &str = "cpantuf-02packages-index v1";
/// Longest tag line accepted.
const MAX_TAG: usize = 256;

/// Why the derived index could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The verified file does not parse (the signed index itself is bad).
    #[error("verified 02packages could not be parsed: {0}")]
    BadIndex(String),
    /// Local disk trouble.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// OS error.
        source: std::io::Error,
    },
}

/// The derived file for the verified index at `gz_path`.
pub fn derived_path(gz_path: &Path) -> PathBuf {
    let mut name = gz_path.file_name().unwrap_or_default().to_os_string();
    name.push(".cpantuf-index");
    gz_path.with_file_name(name)
}

/// A derived index whose tag matches the trusted sha256.
pub struct DerivedIndex {
    file: File,
    body: u64,
    size: u64,
}

/// The tag line for a derived file.
fn tag_line(sha256: &str, size: u64, body: u64, mtime: u64) -> String {
    format!("{MAGIC} sha256={sha256} size={size} body={body} mtime={mtime}\n")
}

/// The tag line's length for a body of `raw_len` bytes (the size field
/// counts the tag itself, so the length is found by iterating once more).
fn tagged_sizes(sha256: &str, raw_len: u64, mtime: u64) -> (u64, u64) {
    let mut tag_len = tag_line(sha256, raw_len, 0, mtime).len() as u64;
    loop {
        let body_guess = tag_len;
        let size = tag_len + raw_len;
        let len = tag_line(sha256, size, body_guess, mtime).len() as u64;
        if len == tag_len {
            return (size, tag_len);
        }
        tag_len = len;
    }
}

impl DerivedIndex {
    /// Opens the derived file at `path` if its tag names `sha256` and its
    /// size is the recorded one; `None` otherwise (missing, stale, damaged).
    pub fn open_current(path: &Path, sha256: &str) -> Option<Self> {
        let file = File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        let actual = (meta.len(), meta.modified().ok()?);
        let mut head = [0u8; MAX_TAG];
        let n = read_at_most(&file, &mut head, 0)?;
        let end = head[..n].iter().position(|&b| b == b'\n')?;
        let tag = std::str::from_utf8(&head[..end]).ok()?;
        let (size, body, mtime) = parse_tag(tag, sha256)?;
        if (size, UNIX_EPOCH + Duration::from_secs(mtime)) != actual || body as usize != end + 1 {
            return None;
        }
        let body = body + header_len(&file, body)?;
        Some(DerivedIndex { file, body, size })
    }

    /// The entry for `package` (exact, case-sensitive), `Ok(None)` when the
    /// index does not list it, `Err` when a line read is not as PAUSE
    /// writes it (the derived file is then damaged: rebuild it). Every line
    /// the search reads is checked, not only the one answered from.
    pub fn lookup(&self, package: &str) -> Result<Option<PackageEntry>, String> {
        let want = package.to_ascii_lowercase();
        let mut at = self.lower_bound(&want)?;
        while let Some((entry, next)) = self.entry_at(at)? {
            let name = entry.package.as_str();
            if !name.eq_ignore_ascii_case(package) {
                return Ok(None);
            }
            if name == package {
                return Ok(Some(entry));
            }
            at = next;
        }
        Ok(None)
    }

    /// The start of the first line whose lower-cased package name is not
    /// below `want`. Lines are sorted by lower-cased line, hence by
    /// lower-cased name (a space sorts before every name character).
    fn lower_bound(&self, want: &str) -> Result<u64, String> {
        let (mut lo, mut hi) = (self.body, self.size);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let start = self.next_line_start(mid)?;
            match self.entry_at(start)? {
                Some((e, next)) if e.package.as_str().to_ascii_lowercase().as_str() < want => {
                    lo = next
                }
                _ => hi = mid,
            }
        }
        Ok(lo)
    }

    /// The entry on the line starting at `start` and where the next line
    /// starts; `None` at the end.
    fn entry_at(&self, start: u64) -> Result<Option<(PackageEntry, u64)>, String> {
        let Some(text) = self.line_at(start)? else {
            return Ok(None);
        };
        let entry = PackageEntry::parse_line(0, &text).map_err(|e| e.to_string())?;
        Ok(Some((entry, start + text.len() as u64 + 1)))
    }

    /// The first line start at or after `off` (the body's start, or just
    /// after a newline).
    fn next_line_start(&self, off: u64) -> Result<u64, String> {
        if off <= self.body {
            return Ok(self.body);
        }
        let mut buf = vec![0u8; ParseLimits::default().max_line_len + 1];
        let n = read_at_most(&self.file, &mut buf, off - 1).ok_or("read failed")?;
        match buf[..n].iter().position(|&b| b == b'\n') {
            Some(p) => Ok(off + p as u64),
            None if off - 1 + n as u64 >= self.size => Ok(self.size),
            None => Err("line too long".into()),
        }
    }

    /// The line starting at `start`, without its newline; `None` at the end.
    fn line_at(&self, start: u64) -> Result<Option<String>, String> {
        if start >= self.size {
            return Ok(None);
        }
        let mut buf = vec![0u8; ParseLimits::default().max_line_len + 1];
        let n = read_at_most(&self.file, &mut buf, start).ok_or("read failed")?;
        let end = buf[..n]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("line without newline")?;
        String::from_utf8(buf[..end].to_vec())
            .map(Some)
            .map_err(|_| "line is not UTF-8".into())
    }
}

/// `size`, `body` and `mtime` from a tag naming `sha256`.
fn parse_tag(tag: &str, sha256: &str) -> Option<(u64, u64, u64)> {
    let rest = tag.strip_prefix(MAGIC)?.strip_prefix(" sha256=")?;
    let (sha, rest) = rest.split_once(" size=")?;
    let (size, rest) = rest.split_once(" body=")?;
    let (body, mtime) = rest.split_once(" mtime=")?;
    if sha != sha256 {
        return None;
    }
    Some((size.parse().ok()?, body.parse().ok()?, mtime.parse().ok()?))
}

/// Length of the 02packages header (through its blank line) at `at`.
fn header_len(file: &File, at: u64) -> Option<u64> {
    let mut buf = vec![0u8; 8 * 1024];
    let n = read_at_most(file, &mut buf, at)?;
    let p = buf[..n].windows(2).position(|w| w == b"\n\n")?;
    Some(p as u64 + 2)
}

fn read_at_most(file: &File, buf: &mut [u8], at: u64) -> Option<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(n)
}

/// Parses the verified `.gz` at `gz_path` (whose sha256 the trusted
/// metadata signs as `sha256`) in full, writes the derived file for it
/// atomically, and returns the parsed index.
pub fn build(gz_path: &Path, sha256: &str) -> Result<Packages, BuildError> {
    let io = |what: String| move |source| BuildError::Io { what, source };
    let f = File::open(gz_path).map_err(io(format!("opening {}", gz_path.display())))?;
    let limits = ParseLimits::default();
    let raw =
        gz::gunzip_limited(f, limits.max_bytes).map_err(|e| BuildError::BadIndex(e.to_string()))?;
    let packages = Packages::parse_with_limits(&raw, &limits)
        .map_err(|e| BuildError::BadIndex(e.to_string()))?;
    let dest = derived_path(gz_path);
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mtime = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (size, body) = tagged_sizes(sha256, raw.len() as u64, mtime);
    // The mode the umask leaves of 0666, like every other file of the cache.
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(io(format!("creating a file in {}", dir.display())))?;
    tmp.write_all(tag_line(sha256, size, body, mtime).as_bytes())
        .and_then(|()| tmp.write_all(&raw))
        .and_then(|()| tmp.flush())
        .and_then(|()| {
            tmp.as_file()
                .set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
        })
        .map_err(io(format!("writing {}", dest.display())))?;
    tmp.persist(&dest)
        .map_err(|e| io(format!("replacing {}", dest.display()))(e.error))?;
    Ok(packages)
}
