//! PAUSE author ids and their `X/XY` directory prefixes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A PAUSE author id, such as `ETHER` or `CHANG-LIU`.
///
/// Rules, checked against every id in the 2026 02packages index and the
/// 01mailrc author list: an ASCII upper-case letter, then upper-case letters,
/// digits or `-`, 2 to 9 characters in all. Two-letter ids (`IX`, `JV`, `RA`)
/// and digits (`P5P`, `WIN32`) are real; no id is longer than 9.
///
/// ```
/// use cpantuf_core::cpan::PauseId;
/// let id = PauseId::new("ETHER").unwrap();
/// assert_eq!(id.author_dir().as_str(), "authors/id/E/ET/ETHER");
/// assert!(PauseId::new("ether").is_err());
/// assert!(PauseId::new("../X").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PauseId(String);

/// Why a string is not a [`PauseId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PauseIdError {
    /// The id is shorter than [`PauseId::MIN_LEN`] or longer than
    /// [`PauseId::MAX_LEN`] bytes.
    #[error("PAUSE id is {len} bytes long; it must be {min} to {max}", min = PauseId::MIN_LEN, max = PauseId::MAX_LEN)]
    Length {
        /// Length of the rejected input in bytes.
        len: usize,
    },
    /// The first character is not an upper-case ASCII letter.
    #[error("PAUSE id must start with an upper-case letter A-Z, not {found:?}")]
    FirstChar {
        /// The offending character.
        found: char,
    },
    /// A character other than `A-Z`, `0-9` or `-`.
    #[error("PAUSE id has {found:?} at byte {index}; only A-Z, 0-9 and '-' are allowed")]
    BadChar {
        /// The offending character.
        found: char,
        /// Its byte offset.
        index: usize,
    },
}

impl PauseId {
    /// Shortest id found on CPAN.
    pub const MIN_LEN: usize = 2;
    /// Longest id PAUSE hands out.
    pub const MAX_LEN: usize = 9;

    /// Checks `s` and wraps it.
    pub fn new(s: &str) -> Result<Self, PauseIdError> {
        // Length first: it bounds the work and the size of any error we report.
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&s.len()) {
            return Err(PauseIdError::Length { len: s.len() });
        }
        let mut chars = s.char_indices();
        if let Some((_, c)) = chars.next() {
            if !c.is_ascii_uppercase() {
                return Err(PauseIdError::FirstChar { found: c });
            }
        }
        for (index, c) in chars {
            if !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-') {
                return Err(PauseIdError::BadChar { found: c, index });
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `X/XY` prefix of this author's directory.
    pub fn prefix(&self) -> AuthorPrefix {
        let b = self.0.as_bytes();
        // Both bytes were checked to be ASCII A-Z / 0-9 / '-' in `new`.
        AuthorPrefix([b[0], b[1]])
    }

    /// The author directory, `authors/id/X/XY/AUTHOR`.
    pub fn author_dir(&self) -> super::CpanPath {
        let p = self.prefix();
        super::CpanPath::from_checked(format!(
            "authors/id/{}/{}/{}",
            p.letter_dir(),
            p.pair_dir(),
            self.0
        ))
    }
}

impl fmt::Display for PauseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PauseId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for PauseId {
    type Err = PauseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for PauseId {
    type Error = PauseIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<PauseId> for String {
    fn from(id: PauseId) -> Self {
        id.0
    }
}

/// The two directories above an author directory: `E/ET` for `ETHER`.
///
/// The first is the id's first letter, the second its first two characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuthorPrefix([u8; 2]);

/// Why a pair of directory names is not an [`AuthorPrefix`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The first directory is not a single letter `A-Z`.
    #[error("first prefix directory must be one letter A-Z, not {found:?}")]
    Letter {
        /// The rejected directory name (at most 16 characters kept).
        found: String,
    },
    /// The second directory is not the letter followed by one id character.
    #[error("second prefix directory must be {letter} followed by A-Z, 0-9 or '-', not {found:?}")]
    Pair {
        /// The first directory's letter.
        letter: char,
        /// The rejected directory name (at most 16 characters kept).
        found: String,
    },
}

fn clip(s: &str) -> String {
    s.chars().take(16).collect()
}

impl AuthorPrefix {
    /// Checks the two directory names `X` and `XY`.
    pub fn new(letter_dir: &str, pair_dir: &str) -> Result<Self, PrefixError> {
        let l = letter_dir.as_bytes();
        if l.len() != 1 || !l[0].is_ascii_uppercase() {
            return Err(PrefixError::Letter {
                found: clip(letter_dir),
            });
        }
        let p = pair_dir.as_bytes();
        let second_ok = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'-';
        if p.len() != 2 || p[0] != l[0] || !second_ok(p[1]) {
            return Err(PrefixError::Pair {
                letter: char::from(l[0]),
                found: clip(pair_dir),
            });
        }
        Ok(Self([p[0], p[1]]))
    }

    /// `X`: the first directory.
    pub fn letter_dir(&self) -> &str {
        // Both bytes are ASCII (checked on construction).
        std::str::from_utf8(&self.0[..1]).unwrap_or("")
    }

    /// `XY`: the second directory.
    pub fn pair_dir(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The prefix directory, `authors/id/X/XY`.
    pub fn dir(&self) -> super::CpanPath {
        super::CpanPath::from_checked(format!(
            "authors/id/{}/{}",
            self.letter_dir(),
            self.pair_dir()
        ))
    }

    /// Whether `id` lives under this prefix.
    pub fn contains(&self, id: &PauseId) -> bool {
        id.prefix() == *self
    }
}

impl fmt::Display for AuthorPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.letter_dir(), self.pair_dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_ids() {
        for s in [
            "ETHER",
            "HAARG",
            "IX",
            "CHANG-LIU",
            "NI-S",
            "P5P",
            "WIN32",
            "PERLANCAR",
        ] {
            let id = PauseId::new(s).unwrap();
            assert_eq!(id.as_str(), s);
            assert_eq!(id.to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(PauseId::new(""), Err(PauseIdError::Length { len: 0 }));
        assert_eq!(PauseId::new("A"), Err(PauseIdError::Length { len: 1 }));
        assert_eq!(
            PauseId::new("ABCDEFGHIJ"),
            Err(PauseIdError::Length { len: 10 })
        );
        assert_eq!(
            PauseId::new("ether"),
            Err(PauseIdError::FirstChar { found: 'e' })
        );
        assert_eq!(
            PauseId::new("1ABC"),
            Err(PauseIdError::FirstChar { found: '1' })
        );
        assert_eq!(
            PauseId::new("-ABC"),
            Err(PauseIdError::FirstChar { found: '-' })
        );
        assert_eq!(
            PauseId::new("ETHEr"),
            Err(PauseIdError::BadChar {
                found: 'r',
                index: 4
            })
        );
        for bad in ["E/ET", "E..", "ET\0", "ET HER", "ET\\X", "ÉTHER", "ET_HER"] {
            assert!(PauseId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn prefix_and_dirs() {
        let id = PauseId::new("ETHER").unwrap();
        let p = id.prefix();
        assert_eq!(p.letter_dir(), "E");
        assert_eq!(p.pair_dir(), "ET");
        assert_eq!(p.to_string(), "E/ET");
        assert_eq!(p.dir().as_str(), "authors/id/E/ET");
        assert_eq!(id.author_dir().as_str(), "authors/id/E/ET/ETHER");
        assert!(p.contains(&id));
        assert!(!p.contains(&PauseId::new("EXODIST").unwrap()));
        let ni = PauseId::new("NI-S").unwrap();
        assert_eq!(ni.author_dir().as_str(), "authors/id/N/NI/NI-S");
    }

    #[test]
    fn prefix_parsing() {
        assert_eq!(
            AuthorPrefix::new("E", "ET").unwrap(),
            PauseId::new("ETHER").unwrap().prefix()
        );
        assert!(AuthorPrefix::new("N", "N-").is_ok());
        assert!(AuthorPrefix::new("e", "et").is_err());
        assert!(AuthorPrefix::new("E", "HA").is_err());
        assert!(AuthorPrefix::new("E", "E").is_err());
        assert!(AuthorPrefix::new("E", "ETH").is_err());
        assert!(AuthorPrefix::new("EE", "EE").is_err());
        assert!(AuthorPrefix::new("", "").is_err());
        assert!(AuthorPrefix::new("..", "..").is_err());
        assert!(AuthorPrefix::new("É", "ÉT").is_err());
    }

    #[test]
    fn serde_validates() {
        let id: PauseId = serde_json::from_str("\"HAARG\"").unwrap();
        assert_eq!(id.as_str(), "HAARG");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"HAARG\"");
        assert!(serde_json::from_str::<PauseId>("\"haarg\"").is_err());
    }
}
