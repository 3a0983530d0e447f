//! Validated paths inside a CPAN mirror.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{owner, Owner, OwnerError, PauseId};

/// A relative path of a file inside a CPAN mirror, such as
/// `authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz`.
///
/// Joining a `CpanPath` to a mirror root can never name anything outside that
/// root: the path is relative, made of `/`-separated non-empty segments, none
/// of which is `.` or `..`. It also contains no backslash (a separator on
/// Windows), no `:` (drive letters and NTFS streams), and no control
/// characters (which would let a name smuggle line breaks or terminal escapes
/// into logs and index files). Length is bounded so that hostile metadata
/// cannot make us build huge paths.
///
/// ```
/// use cpantuf_core::cpan::CpanPath;
/// assert!(CpanPath::new("modules/02packages.details.txt.gz").is_ok());
/// assert!(CpanPath::new("authors/id/../../etc/passwd").is_err());
/// assert!(CpanPath::new("/etc/passwd").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CpanPath(String);

/// Why a string is not a [`CpanPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpanPathError {
    /// The path is empty.
    #[error("empty path")]
    Empty,
    /// The path is longer than [`CpanPath::MAX_LEN`] bytes.
    #[error("path is {len} bytes long; at most {max} allowed", max = CpanPath::MAX_LEN)]
    TooLong {
        /// Length of the rejected path in bytes.
        len: usize,
    },
    /// The path has more than [`CpanPath::MAX_SEGMENTS`] segments.
    #[error("path has more than {max} segments", max = CpanPath::MAX_SEGMENTS)]
    TooManySegments,
    /// One segment is longer than [`CpanPath::MAX_SEGMENT_LEN`] bytes.
    #[error("path segment {index} is {len} bytes long; at most {max} allowed", max = CpanPath::MAX_SEGMENT_LEN)]
    SegmentTooLong {
        /// Zero-based segment number.
        index: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// The path starts with `/`.
    #[error("path must be relative, not start with '/'")]
    Absolute,
    /// Two `/` in a row, or a `/` at the end.
    #[error("path segment {index} is empty")]
    EmptySegment {
        /// Zero-based segment number.
        index: usize,
    },
    /// A `.` or `..` segment.
    #[error("path segment {index} is '.' or '..'")]
    DotSegment {
        /// Zero-based segment number.
        index: usize,
    },
    /// A backslash, `:`, NUL or other control character.
    #[error("path has forbidden character {found:?} at byte {index}")]
    ForbiddenChar {
        /// The offending character.
        found: char,
        /// Its byte offset.
        index: usize,
    },
}

impl CpanPath {
    /// Longest accepted path, in bytes. The longest path in the 2026 index
    /// is under 140 bytes.
    pub const MAX_LEN: usize = 1024;
    /// Most segments accepted. Real paths have at most 14.
    pub const MAX_SEGMENTS: usize = 32;
    /// Longest accepted segment, in bytes (a common file-system limit).
    pub const MAX_SEGMENT_LEN: usize = 255;

    /// Checks `s` and wraps it.
    pub fn new(s: &str) -> Result<Self, CpanPathError> {
        if s.is_empty() {
            return Err(CpanPathError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(CpanPathError::TooLong { len: s.len() });
        }
        if s.starts_with('/') {
            return Err(CpanPathError::Absolute);
        }
        if let Some((index, found)) = s
            .char_indices()
            .find(|&(_, c)| c == '\\' || c == ':' || c.is_control())
        {
            return Err(CpanPathError::ForbiddenChar { found, index });
        }
        for (index, seg) in s.split('/').enumerate() {
            if index >= Self::MAX_SEGMENTS {
                return Err(CpanPathError::TooManySegments);
            }
            if seg.is_empty() {
                return Err(CpanPathError::EmptySegment { index });
            }
            if seg == "." || seg == ".." {
                return Err(CpanPathError::DotSegment { index });
            }
            if seg.len() > Self::MAX_SEGMENT_LEN {
                return Err(CpanPathError::SegmentTooLong {
                    index,
                    len: seg.len(),
                });
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// For strings built in this module from already validated parts.
    pub(super) fn from_checked(s: String) -> Self {
        debug_assert!(Self::new(&s).is_ok(), "{s:?}");
        Self(s)
    }

    /// The path of a file named in 02packages, which is relative to
    /// `authors/id/`: `E/ET/ETHER/Try-Tiny-0.31.tar.gz` becomes
    /// `authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz`.
    ///
    /// Only the path rules are checked here; [`DistPath::new`] also checks
    /// that the file belongs to an author.
    pub fn from_dist_path(dist: &str) -> Result<Self, CpanPathError> {
        if dist.is_empty() {
            return Err(CpanPathError::Empty);
        }
        // Check `dist` on its own first, so that "/x" is reported as absolute
        // rather than as an empty segment of the joined path.
        Self::new(dist)?;
        Self::new(&format!("authors/id/{dist}"))
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated segments; never empty.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The path relative to `authors/id/`, as 02packages writes it, if the
    /// path is below `authors/id/`.
    pub fn dist_path(&self) -> Option<&str> {
        self.0.strip_prefix("authors/id/")
    }

    /// `self/child`, if the result is still a valid path.
    pub fn join(&self, child: &str) -> Result<Self, CpanPathError> {
        // Validate the child alone so "a" + "/x" is not silently accepted as
        // "a//x" being rejected for a confusing reason.
        Self::new(child)?;
        Self::new(&format!("{}/{child}", self.0))
    }
}

impl fmt::Display for CpanPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CpanPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for CpanPath {
    type Err = CpanPathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for CpanPath {
    type Error = CpanPathError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<CpanPath> for String {
    fn from(p: CpanPath) -> Self {
        p.0
    }
}

/// A file an author uploaded, named as 02packages names it: relative to
/// `authors/id/`, e.g. `E/ET/ETHER/Try-Tiny-0.31.tar.gz`.
///
/// It is a valid [`CpanPath`] once `authors/id/` is put in front, and
/// [`owner`] gives it to an author (not to the index role: `CHECKSUMS`,
/// `.meta` and `.readme` files are not distributions).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DistPath {
    path: CpanPath,
    author: PauseId,
}

/// Why a string is not a [`DistPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistPathError {
    /// Not a valid mirror path.
    #[error("invalid path: {0}")]
    Path(#[from] CpanPathError),
    /// Not inside a well-formed author directory.
    #[error("not an author's file: {0}")]
    Owner(#[from] OwnerError),
    /// A file PAUSE writes into author directories (`CHECKSUMS`, `*.meta`,
    /// `*.readme`), not an upload.
    #[error("{0} is written by PAUSE, not uploaded by an author")]
    PauseGenerated(CpanPath),
}

impl DistPath {
    /// Checks a path relative to `authors/id/`.
    pub fn new(dist: &str) -> Result<Self, DistPathError> {
        Self::from_cpan_path(CpanPath::from_dist_path(dist)?)
    }

    /// Checks that a mirror path is an author's upload.
    pub fn from_cpan_path(path: CpanPath) -> Result<Self, DistPathError> {
        match owner(&path)? {
            Owner::Author(author) => Ok(Self { path, author }),
            Owner::Index => Err(DistPathError::PauseGenerated(path)),
        }
    }

    /// The path relative to `authors/id/`, as 02packages writes it.
    pub fn as_str(&self) -> &str {
        // Always present: the path was built below `authors/id/`.
        self.path.dist_path().unwrap_or(self.path.as_str())
    }

    /// The full mirror path.
    pub fn cpan_path(&self) -> &CpanPath {
        &self.path
    }

    /// The author whose directory holds the file.
    pub fn author(&self) -> &PauseId {
        &self.author
    }
}

impl fmt::Display for DistPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_mirror_paths() {
        for p in [
            "modules/02packages.details.txt.gz",
            "authors/01mailrc.txt.gz",
            "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
            "authors/id/A/AA/AAMEND/RADIUS/RADIUS-XMLParser-2.30.tar.gz",
            "a",
            "x/.hidden",
            "x/..foo",
            "x/foo..",
        ] {
            let path = CpanPath::new(p).unwrap();
            assert_eq!(path.as_str(), p);
        }
    }

    #[test]
    fn rejects_escapes_and_junk() {
        use CpanPathError::*;
        let cases: &[(&str, CpanPathError)] = &[
            ("", Empty),
            ("/etc/passwd", Absolute),
            ("//x", Absolute),
            ("..", DotSegment { index: 0 }),
            ("../x", DotSegment { index: 0 }),
            ("authors/../../x", DotSegment { index: 1 }),
            ("authors/id/..", DotSegment { index: 2 }),
            ("./x", DotSegment { index: 0 }),
            ("a/./b", DotSegment { index: 1 }),
            ("a//b", EmptySegment { index: 1 }),
            ("a/", EmptySegment { index: 1 }),
            (
                "a\\..\\b",
                ForbiddenChar {
                    found: '\\',
                    index: 1,
                },
            ),
            (
                "C:/x",
                ForbiddenChar {
                    found: ':',
                    index: 1,
                },
            ),
            (
                "a\0b",
                ForbiddenChar {
                    found: '\0',
                    index: 1,
                },
            ),
            (
                "a\nb",
                ForbiddenChar {
                    found: '\n',
                    index: 1,
                },
            ),
            (
                "a\u{1b}[2J",
                ForbiddenChar {
                    found: '\u{1b}',
                    index: 1,
                },
            ),
            (
                "a\u{85}",
                ForbiddenChar {
                    found: '\u{85}',
                    index: 1,
                },
            ),
            (
                "a\u{7f}",
                ForbiddenChar {
                    found: '\u{7f}',
                    index: 1,
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(CpanPath::new(input).as_ref(), Err(want), "{input:?}");
        }
    }

    #[test]
    fn rejects_oversized() {
        let long = "a".repeat(CpanPath::MAX_LEN + 1);
        assert_eq!(
            CpanPath::new(&long),
            Err(CpanPathError::TooLong {
                len: CpanPath::MAX_LEN + 1
            })
        );
        let seg = "b".repeat(CpanPath::MAX_SEGMENT_LEN + 1);
        assert_eq!(
            CpanPath::new(&format!("a/{seg}")),
            Err(CpanPathError::SegmentTooLong {
                index: 1,
                len: CpanPath::MAX_SEGMENT_LEN + 1
            })
        );
        let deep = vec!["d"; CpanPath::MAX_SEGMENTS + 1].join("/");
        assert_eq!(CpanPath::new(&deep), Err(CpanPathError::TooManySegments));
        let ok = vec!["d"; CpanPath::MAX_SEGMENTS].join("/");
        assert!(CpanPath::new(&ok).is_ok());
    }

    #[test]
    fn dist_path_conversion() {
        let p = CpanPath::from_dist_path("E/ET/ETHER/Try-Tiny-0.31.tar.gz").unwrap();
        assert_eq!(p.as_str(), "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz");
        assert_eq!(p.dist_path(), Some("E/ET/ETHER/Try-Tiny-0.31.tar.gz"));
        assert_eq!(p.file_name(), "Try-Tiny-0.31.tar.gz");
        assert_eq!(
            CpanPath::from_dist_path("/etc/passwd"),
            Err(CpanPathError::Absolute)
        );
        assert_eq!(
            CpanPath::from_dist_path("../../modules/x"),
            Err(CpanPathError::DotSegment { index: 0 })
        );
        assert_eq!(CpanPath::from_dist_path(""), Err(CpanPathError::Empty));
        assert_eq!(
            CpanPath::new("modules/x").unwrap().dist_path(),
            None,
            "only paths below authors/id have a dist path"
        );
    }

    #[test]
    fn join_validates_child() {
        let dir = PauseId::new("ETHER").unwrap().author_dir();
        assert_eq!(
            dir.join("x.tar.gz").unwrap().as_str(),
            "authors/id/E/ET/ETHER/x.tar.gz"
        );
        assert!(dir.join("../../x").is_err());
        assert!(dir.join("/x").is_err());
        assert!(dir.join("").is_err());
    }

    #[test]
    fn dist_paths() {
        let d = DistPath::new("E/ET/ETHER/Try-Tiny-0.31.tar.gz").unwrap();
        assert_eq!(d.as_str(), "E/ET/ETHER/Try-Tiny-0.31.tar.gz");
        assert_eq!(d.author().as_str(), "ETHER");
        assert_eq!(
            d.cpan_path().as_str(),
            "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
        );
        let deep = DistPath::new("A/AA/AAMEND/RADIUS/RADIUS-XMLParser-2.30.tar.gz").unwrap();
        assert_eq!(deep.author().as_str(), "AAMEND");
        assert!(matches!(
            DistPath::new("E/ET/ETHER/CHECKSUMS"),
            Err(DistPathError::PauseGenerated(_))
        ));
        assert!(matches!(
            DistPath::new("H/HA/ETHER/x.tar.gz"),
            Err(DistPathError::Owner(OwnerError::WrongPrefix { .. }))
        ));
        assert!(matches!(
            DistPath::new("E/ET/x.tar.gz"),
            Err(DistPathError::Owner(_))
        ));
        assert!(matches!(
            DistPath::new("E/ET/../x"),
            Err(DistPathError::Path(_))
        ));
    }

    #[test]
    fn serde_validates() {
        let p: CpanPath = serde_json::from_str("\"modules/x\"").unwrap();
        assert_eq!(p.as_str(), "modules/x");
        assert!(serde_json::from_str::<CpanPath>("\"../x\"").is_err());
    }
}
