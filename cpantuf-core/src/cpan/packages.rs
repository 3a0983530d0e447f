//! `modules/02packages.details.txt`: the package → distribution index.
//!
//! # Format
//!
//! PAUSE writes a header of `Key: value` lines, the key and colon padded to
//! 13 columns and one space:
//!
//! ```text
//! File:         02packages.details.txt
//! URL:          <the URL PAUSE publishes it under>
//! Description:  Package names found in directory $CPAN/authors/id/
//! Columns:      package name, version, path
//! Intended-For: Automated fetch routines, namespace documentation.
//! Written-By:   PAUSE version 1.005
//! Line-Count:   263736
//! Last-Updated: Thu, 02 Apr 2026 01:17:03 GMT
//! ```
//!
//! then a blank line and one line per package: name, version (`undef` when
//! the package has none) and the file's path relative to `authors/id/`.
//! The line format is `sprintf "%-30s %8s  %s"`, except that when the package
//! name is longer than 30 characters PAUSE shifts the version column so the
//! two first columns keep their combined width of 39 when they can:
//! `%-{30 + 8 - len(version)}s %{len(version)}s  %s`. This rule reproduces
//! every line of the real 2024 and 2026 indexes.
//!
//! Lines are sorted with Perl's `sort { lc $a cmp lc $b }` over whole lines:
//! byte-wise on the ASCII-lower-cased line. cpm binary-searches the file and
//! relies on that order; CPAN.pm checks `Line-Count`; CPAN::Mini checks
//! `File:`. [`Packages`] keeps entries in that order, and [`Packages::lookup`]
//! uses it for binary search too.
//!
//! # Hostile input
//!
//! [`Packages::parse`] refuses anything PAUSE would not write: unknown or
//! repeated header fields, a `Line-Count` that does not match, unsorted or
//! duplicate packages, malformed names, versions or paths (every path must be
//! an author's upload, see [`DistPath`]). It never panics, works in one pass
//! and is bounded by [`ParseLimits`].

use std::collections::HashSet;
use std::fmt;
use std::io::Read;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::gz::{self, GzipError};
use super::{DistPath, DistPathError};

/// The `Last-Updated` date format (an HTTP date, always GMT).
const HTTP_DATE: &str = "%a, %d %b %Y %H:%M:%S GMT";

/// A Perl package name as 02packages lists it, such as `Moo::Role`.
///
/// Letters, digits, `_`, `:` and the old package separator `'` (the real
/// index lists `WWW::Scripter'Location`); 1 to [`PackageName::MAX_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageName(String);

/// Why a string is not a [`PackageName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageNameError {
    /// Empty, or longer than [`PackageName::MAX_LEN`].
    #[error("package name is {len} bytes long; must be 1 to {max}", max = PackageName::MAX_LEN)]
    Length {
        /// Length of the rejected name in bytes.
        len: usize,
    },
    /// A character outside `A-Za-z0-9_:'`.
    #[error("package name has {found:?} at byte {index}")]
    BadChar {
        /// The offending character.
        found: char,
        /// Its byte offset.
        index: usize,
    },
}

impl PackageName {
    /// Longest accepted name; the longest real one is under 130 bytes.
    pub const MAX_LEN: usize = 512;

    /// Checks `s` and wraps it.
    pub fn new(s: &str) -> Result<Self, PackageNameError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(PackageNameError::Length { len: s.len() });
        }
        if let Some((index, found)) = s
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '\'')))
        {
            return Err(PackageNameError::BadChar { found, index });
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A package version as 02packages lists it (`0.31`, `v1.2.3`,
/// `2147483647.000`). Absent versions are `None`, written as `undef`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageVersion(String);

/// Why a string is not a [`PackageVersion`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageVersionError {
    /// Empty, or longer than [`PackageVersion::MAX_LEN`].
    #[error("version is {len} bytes long; must be 1 to {max}", max = PackageVersion::MAX_LEN)]
    Length {
        /// Length of the rejected version in bytes.
        len: usize,
    },
    /// A space, control or non-ASCII character.
    #[error("version has {found:?} at byte {index}")]
    BadChar {
        /// The offending character.
        found: char,
        /// Its byte offset.
        index: usize,
    },
    /// `undef` means "no version": use `None` instead.
    #[error("'undef' is not a version; use no version instead")]
    Undef,
}

impl PackageVersion {
    /// Longest accepted version.
    pub const MAX_LEN: usize = 128;

    /// Checks `s` and wraps it.
    pub fn new(s: &str) -> Result<Self, PackageVersionError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(PackageVersionError::Length { len: s.len() });
        }
        if s == UNDEF {
            return Err(PackageVersionError::Undef);
        }
        if let Some((index, found)) = s.char_indices().find(|&(_, c)| !c.is_ascii_graphic()) {
            return Err(PackageVersionError::BadChar { found, index });
        }
        Ok(Self(s.to_owned()))
    }

    /// The version as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PackageVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const UNDEF: &str = "undef";

/// One line of the index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PackageEntry {
    /// The package.
    pub package: PackageName,
    /// Its version; `None` is written `undef`.
    pub version: Option<PackageVersion>,
    /// The distribution file that provides it.
    pub dist: DistPath,
}

impl PackageEntry {
    /// The line as PAUSE writes it, without the newline.
    pub fn line(&self) -> String {
        let p = self.package.as_str();
        let v = self.version.as_ref().map_or(UNDEF, |v| v.as_str());
        // PAUSE keeps the first two columns 39 wide when the package name
        // overflows its 30 columns, by narrowing the version column.
        let (one, two) = if p.len() > 30 {
            ((30 + 8usize).saturating_sub(v.len()), v.len())
        } else {
            (30, 8)
        };
        format!("{p:<one$} {v:>two$}  {}", self.dist)
    }
}

impl PackageEntry {
    /// Parses one package line (`line` is its number, for errors), refusing
    /// anything not exactly as PAUSE writes it. Checks the line alone: order
    /// and uniqueness are properties of the whole index ([`Packages::parse`]).
    pub fn parse_line(line: usize, text: &str) -> Result<Self, PackagesError> {
        let parts: Vec<&str> = text.split(' ').filter(|s| !s.is_empty()).collect();
        let [p, v, d] = parts[..] else {
            return Err(PackagesError::FieldCount {
                line,
                found: parts.len(),
            });
        };
        let package =
            PackageName::new(p).map_err(|source| PackagesError::Package { line, source })?;
        let version = match v {
            UNDEF => None,
            v => Some(
                PackageVersion::new(v).map_err(|source| PackagesError::Version { line, source })?,
            ),
        };
        let dist = DistPath::new(d).map_err(|source| PackagesError::Dist { line, source })?;
        let entry = PackageEntry {
            package,
            version,
            dist,
        };
        // Requiring the exact layout makes parse and write inverse: the
        // bytes a signer hashed are the bytes a client can reproduce.
        if entry.line() != text {
            return Err(PackagesError::Layout { line });
        }
        Ok(entry)
    }
}

/// The header fields. `Line-Count` is not stored: it is always the number of
/// entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `File:`, normally `02packages.details.txt`.
    pub file: String,
    /// `URL:`, where the file is published. Informational: no client reads
    /// it.
    pub url: String,
    /// `Description:`.
    pub description: String,
    /// `Columns:`.
    pub columns: String,
    /// `Intended-For:`.
    pub intended_for: String,
    /// `Written-By:`.
    pub written_by: String,
    /// `Last-Updated:`, written as an HTTP date.
    pub last_updated: DateTime<Utc>,
}

impl Header {
    /// The header PAUSE writes, with the given `URL:` and date.
    pub fn pause(url: impl Into<String>, last_updated: DateTime<Utc>) -> Self {
        Self {
            file: "02packages.details.txt".into(),
            url: url.into(),
            description: "Package names found in directory $CPAN/authors/id/".into(),
            columns: "package name, version, path".into(),
            intended_for: "Automated fetch routines, namespace documentation.".into(),
            written_by: "PAUSE version 1.005".into(),
            last_updated,
        }
    }

    fn text_fields(&self) -> [(&'static str, &str); 6] {
        [
            (F_FILE, &self.file),
            (F_URL, &self.url),
            (F_DESCRIPTION, &self.description),
            (F_COLUMNS, &self.columns),
            (F_INTENDED_FOR, &self.intended_for),
            (F_WRITTEN_BY, &self.written_by),
        ]
    }
}

const F_FILE: &str = "File";
const F_URL: &str = "URL";
const F_DESCRIPTION: &str = "Description";
const F_COLUMNS: &str = "Columns";
const F_INTENDED_FOR: &str = "Intended-For";
const F_WRITTEN_BY: &str = "Written-By";
const F_LINE_COUNT: &str = "Line-Count";
const F_LAST_UPDATED: &str = "Last-Updated";
const FIELDS: [&str; 8] = [
    F_FILE,
    F_URL,
    F_DESCRIPTION,
    F_COLUMNS,
    F_INTENDED_FOR,
    F_WRITTEN_BY,
    F_LINE_COUNT,
    F_LAST_UPDATED,
];

/// Bounds on the work [`Packages::parse`] accepts to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest uncompressed file, in bytes. The 2026 index is about 21 MB.
    pub max_bytes: u64,
    /// Most package lines. The 2026 index has 263,736.
    pub max_entries: usize,
    /// Longest line, in bytes. The longest real line is under 300 bytes.
    pub max_line_len: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            max_entries: 4_000_000,
            max_line_len: 4096,
        }
    }
}

/// Why an index could not be read. Line numbers count from 1.
#[derive(Debug, thiserror::Error)]
pub enum PackagesError {
    /// The (uncompressed) input is larger than [`ParseLimits::max_bytes`].
    #[error("index is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The gzip layer failed.
    #[error(transparent)]
    Gzip(#[from] GzipError),
    /// More package lines than [`ParseLimits::max_entries`].
    #[error("index has more than {limit} package lines")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// A line longer than [`ParseLimits::max_line_len`].
    #[error("line {line} is longer than {limit} bytes")]
    LineTooLong {
        /// Line number.
        line: usize,
        /// The limit.
        limit: usize,
    },
    /// A line that is not UTF-8.
    #[error("line {line} is not UTF-8")]
    NotUtf8 {
        /// Line number.
        line: usize,
    },
    /// The input ends without a newline.
    #[error("index does not end with a newline")]
    MissingFinalNewline,
    /// The header is not followed by a blank line.
    #[error("header is not terminated by a blank line")]
    UnterminatedHeader,
    /// A header line without `Key: value`.
    #[error("line {line}: header line is not 'Field: value'")]
    HeaderSyntax {
        /// Line number.
        line: usize,
    },
    /// A header field PAUSE does not write.
    #[error("line {line}: unknown header field {field:?}")]
    UnknownField {
        /// Line number.
        line: usize,
        /// The field name (at most 32 characters kept).
        field: String,
    },
    /// A header field given twice.
    #[error("line {line}: header field {field} repeated")]
    DuplicateField {
        /// Line number.
        line: usize,
        /// The field name.
        field: &'static str,
    },
    /// A required header field is missing.
    #[error("header field {field} is missing")]
    MissingField {
        /// The field name.
        field: &'static str,
    },
    /// `Line-Count` is not a number.
    #[error("line {line}: Line-Count is not a number")]
    BadLineCount {
        /// Line number.
        line: usize,
    },
    /// `Last-Updated` is not an HTTP date.
    #[error(
        "line {line}: Last-Updated is not an HTTP date (like 'Thu, 02 Apr 2026 01:17:03 GMT')"
    )]
    BadLastUpdated {
        /// Line number.
        line: usize,
    },
    /// `Line-Count` disagrees with the number of package lines.
    #[error("Line-Count says {declared} but the index has {actual} package lines")]
    LineCountMismatch {
        /// What the header says.
        declared: usize,
        /// What the body has.
        actual: usize,
    },
    /// A package line without exactly three space-separated fields.
    #[error("line {line}: expected 'package version path', found {found} fields")]
    FieldCount {
        /// Line number.
        line: usize,
        /// How many fields were found.
        found: usize,
    },
    /// A package line not laid out as PAUSE writes it.
    #[error("line {line}: not in PAUSE's column layout")]
    Layout {
        /// Line number.
        line: usize,
    },
    /// A bad package name.
    #[error("line {line}: {source}")]
    Package {
        /// Line number (0 when not from parsing).
        line: usize,
        /// What is wrong.
        source: PackageNameError,
    },
    /// A bad version.
    #[error("line {line}: {source}")]
    Version {
        /// Line number (0 when not from parsing).
        line: usize,
        /// What is wrong.
        source: PackageVersionError,
    },
    /// A bad distribution path.
    #[error("line {line}: {source}")]
    Dist {
        /// Line number (0 when not from parsing).
        line: usize,
        /// What is wrong.
        source: DistPathError,
    },
    /// A line out of PAUSE's sort order.
    #[error("line {line}: out of order (lines must be sorted case-insensitively)")]
    Unsorted {
        /// Line number.
        line: usize,
    },
    /// A package listed twice.
    #[error("line {line}: package {package} listed twice")]
    DuplicatePackage {
        /// Line number (0 when not from parsing).
        line: usize,
        /// The package.
        package: PackageName,
    },
    /// A header value with a line break or control character.
    #[error("header field {field} has a control character")]
    BadHeaderValue {
        /// The field name.
        field: &'static str,
    },
}

/// A complete, consistent 02packages index: entries sorted in PAUSE's order,
/// each package once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packages {
    header: Header,
    entries: Vec<PackageEntry>,
}

/// The sort key PAUSE uses (`lc` of the whole line); ties, which PAUSE never
/// produces because package names are unique, fall back to the raw line so
/// the order is total.
fn sort_key(line: &str) -> (Vec<u8>, &[u8]) {
    (line.as_bytes().to_ascii_lowercase(), line.as_bytes())
}

impl Packages {
    /// Builds an index from entries in any order.
    pub fn new(header: Header, entries: Vec<PackageEntry>) -> Result<Self, PackagesError> {
        for (field, value) in header.text_fields() {
            if value.chars().any(char::is_control) {
                return Err(PackagesError::BadHeaderValue { field });
            }
        }
        let mut keyed: Vec<(String, PackageEntry)> =
            entries.into_iter().map(|e| (e.line(), e)).collect();
        keyed.sort_by(|a, b| sort_key(&a.0).cmp(&sort_key(&b.0)));
        let mut seen = HashSet::with_capacity(keyed.len());
        for (_, e) in &keyed {
            if !seen.insert(e.package.as_str()) {
                return Err(PackagesError::DuplicatePackage {
                    line: 0,
                    package: e.package.clone(),
                });
            }
        }
        drop(seen);
        Ok(Self {
            header,
            entries: keyed.into_iter().map(|(_, e)| e).collect(),
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The entries, in PAUSE's order.
    pub fn entries(&self) -> &[PackageEntry] {
        &self.entries
    }

    /// Number of package lines (the `Line-Count`).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index lists no package.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for `package`, matched exactly (case-sensitively).
    pub fn lookup(&self, package: &str) -> Option<&PackageEntry> {
        // Lines are sorted by lower-cased line, which orders them by
        // lower-cased package name too: the name is followed by a space,
        // which sorts before every character a name may contain. So all
        // spellings of one name differing in case are adjacent.
        let want = package.to_ascii_lowercase();
        let start = self
            .entries
            .partition_point(|e| e.package.as_str().to_ascii_lowercase() < want);
        self.entries[start..]
            .iter()
            .take_while(|e| e.package.as_str().eq_ignore_ascii_case(package))
            .find(|e| e.package.as_str() == package)
    }

    /// The distinct distribution files, sorted by path.
    pub fn dists(&self) -> Vec<&DistPath> {
        let mut d: Vec<&DistPath> = self.entries.iter().map(|e| &e.dist).collect();
        d.sort_unstable();
        d.dedup();
        d
    }

    /// Parses an uncompressed index with default limits.
    pub fn parse(bytes: &[u8]) -> Result<Self, PackagesError> {
        Self::parse_with_limits(bytes, &ParseLimits::default())
    }

    /// Reads a gzipped index with default limits.
    pub fn read_gz<R: Read>(reader: R) -> Result<Self, PackagesError> {
        let limits = ParseLimits::default();
        let bytes = gz::gunzip_limited(reader, limits.max_bytes).map_err(|e| match e {
            GzipError::TooLarge { limit } => PackagesError::TooLarge { limit },
            other => PackagesError::Gzip(other),
        })?;
        Self::parse_with_limits(&bytes, &limits)
    }

    /// Parses an uncompressed index.
    pub fn parse_with_limits(bytes: &[u8], limits: &ParseLimits) -> Result<Self, PackagesError> {
        if bytes.len() as u64 > limits.max_bytes {
            return Err(PackagesError::TooLarge {
                limit: limits.max_bytes,
            });
        }
        let body = bytes
            .strip_suffix(b"\n")
            .ok_or(PackagesError::MissingFinalNewline)?;
        let mut lines = body.split(|&b| b == b'\n').enumerate().map(|(i, l)| {
            let line = i + 1;
            if l.len() > limits.max_line_len {
                return Err(PackagesError::LineTooLong {
                    line,
                    limit: limits.max_line_len,
                });
            }
            std::str::from_utf8(l)
                .map(|s| (line, s))
                .map_err(|_| PackagesError::NotUtf8 { line })
        });

        let mut fields: [Option<(usize, &str)>; 8] = [None; 8];
        loop {
            let (line, text) = lines.next().ok_or(PackagesError::UnterminatedHeader)??;
            if text.is_empty() {
                break;
            }
            let (key, value) = text
                .split_once(':')
                .ok_or(PackagesError::HeaderSyntax { line })?;
            let idx = FIELDS.iter().position(|f| *f == key).ok_or_else(|| {
                PackagesError::UnknownField {
                    line,
                    field: key.chars().take(32).collect(),
                }
            })?;
            if fields[idx].is_some() {
                return Err(PackagesError::DuplicateField {
                    line,
                    field: FIELDS[idx],
                });
            }
            fields[idx] = Some((line, value.trim_matches(' ')));
        }
        if let Some(i) = fields.iter().position(Option::is_none) {
            return Err(PackagesError::MissingField { field: FIELDS[i] });
        }
        let get = |i: usize| fields[i].ok_or(PackagesError::MissingField { field: FIELDS[i] });
        let (count_line, count) = get(6)?;
        // Digits only: Rust's parser would also take "+6", which PAUSE never
        // writes and which would not survive a round trip.
        let declared: usize = count
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| count.parse().ok())
            .flatten()
            .ok_or(PackagesError::BadLineCount { line: count_line })?;
        let (date_line, date) = get(7)?;
        let last_updated = NaiveDateTime::parse_from_str(date, HTTP_DATE)
            .map_err(|_| PackagesError::BadLastUpdated { line: date_line })?
            .and_utc();
        let header = Header {
            file: get(0)?.1.to_owned(),
            url: get(1)?.1.to_owned(),
            description: get(2)?.1.to_owned(),
            columns: get(3)?.1.to_owned(),
            intended_for: get(4)?.1.to_owned(),
            written_by: get(5)?.1.to_owned(),
            last_updated,
        };
        if declared > limits.max_entries {
            return Err(PackagesError::TooManyEntries {
                limit: limits.max_entries,
            });
        }

        let mut entries: Vec<PackageEntry> = Vec::with_capacity(declared);
        let mut seen: HashSet<String> = HashSet::with_capacity(declared);
        let mut prev_lc: Vec<u8> = Vec::new();
        let mut prev: &str = "";
        for item in lines {
            let (line, text) = item?;
            if entries.len() == limits.max_entries {
                return Err(PackagesError::TooManyEntries {
                    limit: limits.max_entries,
                });
            }
            let entry = PackageEntry::parse_line(line, text)?;
            let lc = text.as_bytes().to_ascii_lowercase();
            if !entries.is_empty()
                && (prev_lc.as_slice(), prev.as_bytes()) >= (&lc[..], text.as_bytes())
            {
                return Err(PackagesError::Unsorted { line });
            }
            if !seen.insert(entry.package.as_str().to_owned()) {
                return Err(PackagesError::DuplicatePackage {
                    line,
                    package: entry.package,
                });
            }
            prev_lc = lc;
            prev = text;
            entries.push(entry);
        }
        if entries.len() != declared {
            return Err(PackagesError::LineCountMismatch {
                declared,
                actual: entries.len(),
            });
        }
        Ok(Self { header, entries })
    }

    /// The index as PAUSE writes it, uncompressed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(64 * self.entries.len() + 512);
        let count = self.entries.len().to_string();
        let date = self.header.last_updated.format(HTTP_DATE).to_string();
        let fields = self.header.text_fields().into_iter().chain([
            (F_LINE_COUNT, count.as_str()),
            (F_LAST_UPDATED, date.as_str()),
        ]);
        for (key, value) in fields {
            let key = format!("{key}:");
            out.push_str(&format!("{key:<13} {value}\n"));
        }
        out.push('\n');
        for e in &self.entries {
            out.push_str(&e.line());
            out.push('\n');
        }
        out.into_bytes()
    }

    /// The index gzipped, deterministically (see [`gz::gzip`]).
    pub fn to_gz_bytes(&self) -> Vec<u8> {
        gz::gzip(&self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(p: &str, v: Option<&str>, d: &str) -> PackageEntry {
        PackageEntry {
            package: PackageName::new(p).unwrap(),
            version: v.map(|v| PackageVersion::new(v).unwrap()),
            dist: DistPath::new(d).unwrap(),
        }
    }

    fn date() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 4, 2, 1, 17, 3).unwrap()
    }

    fn sample() -> Packages {
        Packages::new(
            Header::pause(
                "http://mirror.invalid/modules/02packages.details.txt",
                date(),
            ),
            vec![
                entry("Try::Tiny", Some("0.31"), "E/ET/ETHER/Try-Tiny-0.31.tar.gz"),
                entry("oo", None, "H/HA/HAARG/Moo-2.005005.tar.gz"),
                entry("Moo", Some("2.005005"), "H/HA/HAARG/Moo-2.005005.tar.gz"),
                entry("Moo::_Utils", None, "H/HA/HAARG/Moo-2.005005.tar.gz"),
                entry("Moo::HandleMoose", None, "H/HA/HAARG/Moo-2.005005.tar.gz"),
                entry(
                    "Abstract::Meta::Attribute::Method",
                    Some("0.06"),
                    "A/AD/ADRIANWIT/Abstract-Meta-Class-0.11.tar.gz",
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn writes_pause_format() {
        let text = String::from_utf8(sample().to_bytes()).unwrap();
        let want = "\
File:         02packages.details.txt
URL:          http://mirror.invalid/modules/02packages.details.txt
Description:  Package names found in directory $CPAN/authors/id/
Columns:      package name, version, path
Intended-For: Automated fetch routines, namespace documentation.
Written-By:   PAUSE version 1.005
Line-Count:   6
Last-Updated: Thu, 02 Apr 2026 01:17:03 GMT

Abstract::Meta::Attribute::Method  0.06  A/AD/ADRIANWIT/Abstract-Meta-Class-0.11.tar.gz
Moo                            2.005005  H/HA/HAARG/Moo-2.005005.tar.gz
Moo::_Utils                       undef  H/HA/HAARG/Moo-2.005005.tar.gz
Moo::HandleMoose                  undef  H/HA/HAARG/Moo-2.005005.tar.gz
oo                                undef  H/HA/HAARG/Moo-2.005005.tar.gz
Try::Tiny                          0.31  E/ET/ETHER/Try-Tiny-0.31.tar.gz
";
        assert_eq!(text, want);
    }

    #[test]
    fn long_names_and_versions_layout() {
        let e = entry(
            "AC::MrGamoo::Submit::Compile::Block",
            None,
            "S/SO/SOLVE/AC-MrGamoo-1.tar.gz",
        );
        assert_eq!(
            e.line(),
            "AC::MrGamoo::Submit::Compile::Block undef  S/SO/SOLVE/AC-MrGamoo-1.tar.gz"
        );
        let e = entry(
            "AC::MrGamoo::Default::ReadInput",
            None,
            "S/SO/SOLVE/x.tar.gz",
        );
        assert_eq!(
            e.line(),
            "AC::MrGamoo::Default::ReadInput   undef  S/SO/SOLVE/x.tar.gz"
        );
        let e = entry(
            "Acme",
            Some("1.11111111111"),
            "I/IN/INGY/Acme-1.11111111111.tar.gz",
        );
        assert_eq!(
            e.line(),
            "Acme                           1.11111111111  I/IN/INGY/Acme-1.11111111111.tar.gz"
        );
        let long_v = "9".repeat(60);
        let e = entry(&"A".repeat(40), Some(&long_v), "I/IN/INGY/x.tar.gz");
        assert_eq!(
            e.line(),
            format!("{} {long_v}  I/IN/INGY/x.tar.gz", "A".repeat(40))
        );
    }

    #[test]
    fn round_trip_and_lookup() {
        let idx = sample();
        let bytes = idx.to_bytes();
        let back = Packages::parse(&bytes).unwrap();
        assert_eq!(back, idx);
        assert_eq!(back.to_bytes(), bytes);
        let gz = Packages::read_gz(&idx.to_gz_bytes()[..]).unwrap();
        assert_eq!(gz, idx);

        let moo = idx.lookup("Moo").unwrap();
        assert_eq!(moo.version.as_ref().unwrap().as_str(), "2.005005");
        assert_eq!(moo.dist.as_str(), "H/HA/HAARG/Moo-2.005005.tar.gz");
        assert_eq!(idx.lookup("oo").unwrap().version, None);
        assert_eq!(
            idx.lookup("Abstract::Meta::Attribute::Method")
                .unwrap()
                .dist
                .author()
                .as_str(),
            "ADRIANWIT"
        );
        assert!(idx.lookup("moo").is_none(), "lookup is case-sensitive");
        assert!(idx.lookup("Moo::Role").is_none());
        assert!(idx.lookup("").is_none());
        assert!(idx.lookup("zzz").is_none());
        assert_eq!(idx.dists().len(), 3);
    }

    #[test]
    fn lookup_with_case_variants() {
        let idx = Packages::new(
            Header::pause("u", date()),
            vec![
                entry("FOO", Some("1"), "A/AB/ABC/a.tar.gz"),
                entry("Foo", Some("2"), "A/AB/ABC/b.tar.gz"),
                entry("foo", Some("3"), "A/AB/ABC/c.tar.gz"),
                entry("Foo::Bar", Some("4"), "A/AB/ABC/d.tar.gz"),
                entry("Fo", Some("5"), "A/AB/ABC/e.tar.gz"),
            ],
        )
        .unwrap();
        for (p, v) in [
            ("FOO", "1"),
            ("Foo", "2"),
            ("foo", "3"),
            ("Foo::Bar", "4"),
            ("Fo", "5"),
        ] {
            assert_eq!(idx.lookup(p).unwrap().version.as_ref().unwrap().as_str(), v);
        }
        assert!(idx.lookup("fOO").is_none());
        // And the written order is what the parser demands.
        assert_eq!(Packages::parse(&idx.to_bytes()).unwrap(), idx);
    }

    #[test]
    fn duplicates_refused_by_builder() {
        let r = Packages::new(
            Header::pause("u", date()),
            vec![
                entry("Moo", Some("1"), "A/AB/ABC/a.tar.gz"),
                entry("Moo", Some("2"), "A/AB/ABC/b.tar.gz"),
            ],
        );
        assert!(matches!(r, Err(PackagesError::DuplicatePackage { .. })));
        let mut h = Header::pause("u", date());
        h.url = "x\ny".into();
        assert!(matches!(
            Packages::new(h, vec![]),
            Err(PackagesError::BadHeaderValue { field: "URL" })
        ));
    }

    fn text() -> String {
        String::from_utf8(sample().to_bytes()).unwrap()
    }

    fn parse_str(s: &str) -> Result<Packages, PackagesError> {
        Packages::parse(s.as_bytes())
    }

    #[test]
    fn hostile_headers() {
        let t = text();
        let e = |s: &str| parse_str(s).unwrap_err();
        assert!(matches!(e(""), PackagesError::MissingFinalNewline));
        assert!(matches!(
            e("\n"),
            PackagesError::MissingField { field: "File" }
        ));
        assert!(matches!(e("File: x\n"), PackagesError::UnterminatedHeader));
        assert!(matches!(
            e(&t.replace("Line-Count:   6", "Line-Count:   7")),
            PackagesError::LineCountMismatch {
                declared: 7,
                actual: 6
            }
        ));
        assert!(matches!(
            e(&t.replace("Line-Count:   6", "Line-Count:   -1")),
            PackagesError::BadLineCount { line: 7 }
        ));
        assert!(matches!(
            e(&t.replace("Line-Count:   6", "Line-Count:   +6")),
            PackagesError::BadLineCount { line: 7 }
        ));
        assert!(matches!(
            e(&t.replace("Line-Count:   6", "Line-Count:   99999999999999999999999")),
            PackagesError::BadLineCount { .. }
        ));
        assert!(matches!(
            e(&t.replace("Line-Count:   6", "Line-Count:   4000001")),
            PackagesError::TooManyEntries { .. }
        ));
        assert!(matches!(
            e(&t.replace("Thu, 02 Apr", "Xyz, 02 Apr")),
            PackagesError::BadLastUpdated { line: 8 }
        ));
        assert!(matches!(
            e(&t.replace("URL:", "X-Evil:")),
            PackagesError::UnknownField { line: 2, .. }
        ));
        assert!(matches!(
            e(&t.replace("URL: ", "File:")),
            PackagesError::DuplicateField {
                line: 2,
                field: "File"
            }
        ));
        assert!(matches!(
            e(&t.replace("URL:", "URL")),
            PackagesError::UnknownField { line: 2, .. }
        ));
        assert!(matches!(
            e(&t.replace(
                "URL:          http://mirror.invalid/modules/02packages.details.txt",
                "garbage"
            )),
            PackagesError::HeaderSyntax { line: 2 }
        ));
        assert!(matches!(
            e(&t.replace("Columns:      package name, version, path\n", "")),
            PackagesError::MissingField { field: "Columns" }
        ));
        // A body with no header at all.
        let body = t.split_once("\n\n").unwrap().1;
        assert!(matches!(
            e(body),
            PackagesError::UnknownField { line: 1, .. }
        ));
        // Nine valid-looking header lines: more than PAUSE writes.
        let nine = t.replacen("File:", "File:\nURL: x\nFile:", 1);
        assert!(matches!(
            e(&nine),
            PackagesError::DuplicateField { line: 3, .. }
        ));
    }

    #[test]
    fn hostile_lines() {
        let t = text();
        let e = |s: &str| parse_str(s).unwrap_err();
        let moo = "Moo                            2.005005  H/HA/HAARG/Moo-2.005005.tar.gz";
        let sub = |new: &str| t.replace(moo, new);
        assert!(matches!(
            e(&sub("Moo 2.005005")),
            PackagesError::FieldCount { found: 2, .. }
        ));
        assert!(matches!(
            e(&sub("Moo 2.005005 H/HA/HAARG/Moo-2.005005.tar.gz")),
            PackagesError::Layout { line: 11 }
        ));
        assert!(matches!(
            e(&sub(
                "Moo                            2.005005  H/HA/HAARG/../../x.tar.gz"
            )),
            PackagesError::Dist {
                line: 11,
                source: DistPathError::Path(_)
            }
        ));
        assert!(matches!(
            e(&sub("Moo                            2.005005  /etc/passwd")),
            PackagesError::Dist { line: 11, .. }
        ));
        assert!(matches!(
            e(&sub(
                "Moo                            2.005005  E/HA/HAARG/Moo-2.005005.tar.gz"
            )),
            PackagesError::Dist { line: 11, .. }
        ));
        assert!(matches!(
            e(&sub(
                "Moo                            2.005005  H/HA/HAARG/CHECKSUMS"
            )),
            PackagesError::Dist {
                line: 11,
                source: DistPathError::PauseGenerated(_)
            }
        ));
        assert!(matches!(
            e(&sub(
                "Moo;rm                         2.005005  H/HA/HAARG/Moo-2.005005.tar.gz"
            )),
            PackagesError::Package { line: 11, .. }
        ));
        assert!(matches!(
            e(&sub(
                "Moo                            2.0\u{1}5005  H/HA/HAARG/Moo-2.005005.tar.gz"
            )),
            PackagesError::Version { line: 11, .. }
        ));
        // Out of order: swap two lines.
        let lines: Vec<&str> = t.lines().collect();
        let mut swapped = lines.clone();
        swapped.swap(10, 11);
        assert!(matches!(
            e(&(swapped.join("\n") + "\n")),
            PackagesError::Unsorted { line: 12 }
        ));
        // Duplicate package (same line twice; count adjusted).
        let mut dup = lines.clone();
        dup.insert(10, lines[10]);
        let dup = dup.join("\n").replace("Line-Count:   6", "Line-Count:   7") + "\n";
        assert!(matches!(e(&dup), PackagesError::Unsorted { line: 12 }));
        // Same package, different dist, still sorted.
        let other = "Moo                            2.005005  H/HA/HAARG/Moo-2.005006.tar.gz";
        let mut dup = lines.clone();
        dup.insert(11, other);
        let dup = dup.join("\n").replace("Line-Count:   6", "Line-Count:   7") + "\n";
        assert!(matches!(
            e(&dup),
            PackagesError::DuplicatePackage { line: 12, .. }
        ));
        // Trailing junk, CRLF, non-UTF-8, missing newline.
        assert!(matches!(
            e(&format!("{t}\n")),
            PackagesError::FieldCount { .. }
        ));
        assert!(parse_str(&t.replace('\n', "\r\n")).is_err());
        let mut bad = t.clone().into_bytes();
        let pos = bad.len() - 5;
        bad[pos] = 0xff;
        assert!(matches!(
            Packages::parse(&bad),
            Err(PackagesError::NotUtf8 { line: 15 })
        ));
        assert!(matches!(
            e(t.trim_end()),
            PackagesError::MissingFinalNewline
        ));
    }

    #[test]
    fn limits_are_enforced() {
        let t = text();
        let small = ParseLimits {
            max_bytes: 100,
            ..ParseLimits::default()
        };
        assert!(matches!(
            Packages::parse_with_limits(t.as_bytes(), &small),
            Err(PackagesError::TooLarge { limit: 100 })
        ));
        let few = ParseLimits {
            max_entries: 5,
            ..ParseLimits::default()
        };
        assert!(matches!(
            Packages::parse_with_limits(t.as_bytes(), &few),
            Err(PackagesError::TooManyEntries { limit: 5 })
        ));
        let short = ParseLimits {
            max_line_len: 60,
            ..ParseLimits::default()
        };
        assert!(matches!(
            Packages::parse_with_limits(t.as_bytes(), &short),
            Err(PackagesError::LineTooLong { line: 2, limit: 60 })
        ));
        let huge = format!("File: {}\n", "x".repeat(10_000));
        assert!(matches!(
            parse_str(&huge),
            Err(PackagesError::LineTooLong { line: 1, .. })
        ));
    }

    #[test]
    fn never_panics_on_mutations() {
        // Cheap deterministic fuzzing: truncate and corrupt the sample at
        // every position; any outcome but a panic is acceptable.
        let t = sample().to_bytes();
        for i in 0..t.len() {
            let _ = Packages::parse(&t[..i]);
            for b in [b'\n', b' ', b':', b'/', 0, 0xc3, b'A', b'a'] {
                let mut m = t.clone();
                m[i] = b;
                let _ = Packages::parse(&m);
            }
        }
    }

    /// A real index from the repository's data directory, compiled in: the
    /// core does no file I/O, not even in its tests.
    macro_rules! real_index {
        ($name:literal) => {
            (
                $name,
                &include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../data/cpan-index/",
                    $name
                ))[..],
            )
        };
    }

    /// The writer reproduces PAUSE's real output byte for byte.
    fn check_real_round_trip((name, gz_bytes): (&str, &[u8]), lines: usize, dists: usize) {
        let raw = gz::gunzip_limited(gz_bytes, 256 << 20).unwrap();
        let idx = Packages::parse(&raw).unwrap();
        assert_eq!(idx.len(), lines);
        assert_eq!(idx.dists().len(), dists);
        assert_eq!(idx.header().written_by, "PAUSE version 1.005");
        let written = idx.to_bytes();
        assert!(written == raw, "re-written {name} differs from PAUSE's");
    }

    #[test]
    fn real_2026_index_round_trips() {
        let index = real_index!("02packages.details.2026-04-02.txt.gz");
        check_real_round_trip(index, 263_736, 43_762);
        let idx = Packages::read_gz(index.1).unwrap();
        assert_eq!(
            idx.header().last_updated,
            date(),
            "Thu, 02 Apr 2026 01:17:03 GMT"
        );
        let tt = idx.lookup("Try::Tiny").unwrap();
        assert_eq!(tt.dist.author().as_str(), "ETHER");
        assert!(idx.lookup("WWW::Scripter'Location").is_some());
    }

    #[test]
    fn real_2024_index_round_trips() {
        let index = real_index!("02packages.details.2024-01-11.txt.gz");
        check_real_round_trip(index, 262_672, 41_977);
    }
}
