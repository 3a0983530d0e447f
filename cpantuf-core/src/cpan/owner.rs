//! Which TUF role owns which mirror file, role names and delegation patterns.
//!
//! See the [module documentation](super) for the table of rules and for why
//! the index role must be delegated before the prefix roles.

use std::fmt;

use super::{AuthorPrefix, CpanPath, PauseId, PauseIdError, PrefixError};

/// The role responsible for a mirror file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The index role (PAUSE's online key): index files and the files PAUSE
    /// writes into author directories.
    Index,
    /// An author role: a file that author uploaded.
    Author(PauseId),
}

/// Why no role may sign a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    /// The path is outside every signed area of the mirror.
    #[error("{path} is outside the signed areas of a CPAN mirror")]
    NotSignable {
        /// The rejected path.
        path: CpanPath,
    },
    /// The `X` or `XY` directory is malformed.
    #[error("{path}: {source}")]
    BadPrefix {
        /// The rejected path.
        path: CpanPath,
        /// What is wrong with the prefix directories.
        source: PrefixError,
    },
    /// The author directory is not a PAUSE id.
    #[error("{path}: {source}")]
    BadAuthor {
        /// The rejected path.
        path: CpanPath,
        /// What is wrong with the id.
        source: PauseIdError,
    },
    /// The `X/XY` directories are not the author's first letters, as in
    /// `authors/id/H/HA/ETHER/…`.
    #[error("{path}: author {author} does not belong under {prefix}")]
    WrongPrefix {
        /// The rejected path.
        path: CpanPath,
        /// The author directory's id.
        author: PauseId,
        /// The prefix the path used.
        prefix: AuthorPrefix,
    },
}

/// Decides which role signs `path`. See the [module documentation](super).
///
/// ```
/// use cpantuf_core::cpan::{owner, CpanPath, Owner};
/// let p = |s| CpanPath::new(s).unwrap();
/// assert_eq!(owner(&p("modules/02packages.details.txt.gz")).unwrap(), Owner::Index);
/// assert_eq!(owner(&p("authors/id/E/ET/ETHER/CHECKSUMS")).unwrap(), Owner::Index);
/// assert!(matches!(
///     owner(&p("authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")).unwrap(),
///     Owner::Author(id) if id.as_str() == "ETHER"
/// ));
/// assert!(owner(&p("authors/id/H/HA/ETHER/x.tar.gz")).is_err());
/// ```
pub fn owner(path: &CpanPath) -> Result<Owner, OwnerError> {
    let segs: Vec<&str> = path.segments().collect();
    let not_signable = || OwnerError::NotSignable { path: path.clone() };
    match segs.as_slice() {
        ["modules", _] | ["authors", _] => Ok(Owner::Index),
        ["authors", "id", letter, pair, author, rest @ ..] if !rest.is_empty() => {
            let prefix =
                AuthorPrefix::new(letter, pair).map_err(|source| OwnerError::BadPrefix {
                    path: path.clone(),
                    source,
                })?;
            let author = PauseId::new(author).map_err(|source| OwnerError::BadAuthor {
                path: path.clone(),
                source,
            })?;
            if !prefix.contains(&author) {
                return Err(OwnerError::WrongPrefix {
                    path: path.clone(),
                    author,
                    prefix,
                });
            }
            match rest {
                [file] if is_pause_generated(file) => Ok(Owner::Index),
                _ => Ok(Owner::Author(author)),
            }
        }
        _ => Err(not_signable()),
    }
}

/// Files PAUSE itself writes directly into an author directory.
fn is_pause_generated(file: &str) -> bool {
    file == "CHECKSUMS" || file.ends_with(".meta") || file.ends_with(".readme")
}

/// How many segments `path` has below its author directory: 1 for
/// `authors/id/E/ET/ETHER/x.tar.gz`, 2 for `…/ETHER/sub/x.tar.gz`. `None`
/// when the path is not inside an author directory.
///
/// The signer uses the deepest value per author as the `max_depth` of
/// [`CpanRole::path_patterns`].
pub fn author_depth(path: &CpanPath) -> Option<usize> {
    let mut segs = path.segments();
    if segs.next() != Some("authors") || segs.next() != Some("id") {
        return None;
    }
    // Skip X, XY and AUTHOR; what remains is below the author directory.
    let below = segs.skip(3).count();
    (below > 0).then_some(below)
}

/// Name of the index role.
pub const INDEX_ROLE_NAME: &str = "index";
const PREFIX_ROLE_PREFIX: &str = "prefix-";
const AUTHOR_ROLE_PREFIX: &str = "author-";
const BIN_INFIX: &str = "-bin-";

/// At most this many bits of hash bins (4,096 bins) for one author: the
/// signer never makes more, and a client never loads more (ADR 0006).
pub const MAX_AUTHOR_BIN_BITS: u32 = 12;

/// A delegated targets role of a CPAN repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CpanRole {
    /// The index role (`index`).
    Index,
    /// The role for one `X/XY` prefix (`prefix-X-XY`), which delegates to
    /// the authors under it.
    Prefix(AuthorPrefix),
    /// The role for one author (`author-ID`).
    Author(PauseId),
    /// One hash bin of a very large author's role (`author-ID-bin-N`, the
    /// suffix lowercase hex): the author role delegates to its bins with
    /// TUF succinct delegations (ADR 0006), name prefix
    /// [`CpanRole::author_bin_prefix`].
    AuthorBin(PauseId, String),
}

/// Why a string is not the name of a [`CpanRole`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleNameError {
    /// Neither `index` nor `prefix-…` nor `author-…`.
    #[error("not a CPAN role name (index, prefix-X-XY or author-ID)")]
    Unknown,
    /// `prefix-` followed by something other than `X-XY`.
    #[error("bad prefix role name: {0}")]
    Prefix(PrefixError),
    /// `author-` followed by something other than a PAUSE id.
    #[error("bad author role name: {0}")]
    Author(PauseIdError),
    /// `author-ID-bin-` followed by something other than lowercase hex.
    #[error("bad author bin role name: the bin suffix must be 1 to 8 lowercase hex digits")]
    Bin,
}

impl CpanRole {
    /// The role's name, safe as a file name and URL segment.
    ///
    /// ```
    /// use cpantuf_core::cpan::{CpanRole, PauseId};
    /// let id = PauseId::new("ETHER").unwrap();
    /// assert_eq!(CpanRole::Prefix(id.prefix()).name(), "prefix-E-ET");
    /// assert_eq!(CpanRole::Author(id).name(), "author-ETHER");
    /// assert_eq!(CpanRole::Index.name(), "index");
    /// ```
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// The `name_prefix` of an author's hash bins (TUF succinct
    /// delegations name bin N `{prefix}-{N in hex}`).
    ///
    /// ```
    /// use cpantuf_core::cpan::{CpanRole, PauseId};
    /// let id = PauseId::new("KBM").unwrap();
    /// assert_eq!(CpanRole::author_bin_prefix(&id), "author-KBM-bin");
    /// assert_eq!(
    ///     CpanRole::from_name("author-KBM-bin-3f").unwrap(),
    ///     CpanRole::AuthorBin(id, "3f".into())
    /// );
    /// ```
    pub fn author_bin_prefix(id: &PauseId) -> String {
        format!(
            "{AUTHOR_ROLE_PREFIX}{id}{}",
            &BIN_INFIX[..BIN_INFIX.len() - 1]
        )
    }

    /// The author whose files this role signs, for author roles and bins.
    pub fn author(&self) -> Option<&PauseId> {
        match self {
            Self::Author(id) | Self::AuthorBin(id, _) => Some(id),
            _ => None,
        }
    }

    /// Parses a role name made by [`CpanRole::name`].
    pub fn from_name(name: &str) -> Result<Self, RoleNameError> {
        if name == INDEX_ROLE_NAME {
            return Ok(Self::Index);
        }
        if let Some(rest) = name.strip_prefix(AUTHOR_ROLE_PREFIX) {
            // A PAUSE id has no lowercase letters, so "-bin-" is unambiguous.
            if let Some((id, bin)) = rest.rsplit_once(BIN_INFIX) {
                let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
                if bin.is_empty() || bin.len() > 8 || !bin.bytes().all(hex) {
                    return Err(RoleNameError::Bin);
                }
                return PauseId::new(id)
                    .map(|id| Self::AuthorBin(id, bin.to_owned()))
                    .map_err(RoleNameError::Author);
            }
            return PauseId::new(rest)
                .map(Self::Author)
                .map_err(RoleNameError::Author);
        }
        if let Some(rest) = name.strip_prefix(PREFIX_ROLE_PREFIX) {
            // "X-XY": split at the first '-' only, because XY may itself end
            // in '-' (an id such as N-AB lives under N/N-).
            let (letter, pair) = rest.split_once('-').unwrap_or((rest, ""));
            return AuthorPrefix::new(letter, pair)
                .map(Self::Prefix)
                .map_err(RoleNameError::Prefix);
        }
        Err(RoleNameError::Unknown)
    }

    /// The delegation path patterns for this role.
    ///
    /// `max_depth` is the number of segments below an author directory to
    /// cover (1: files directly in the author directory); it is clamped to
    /// `1..=`[`CpanPath::MAX_SEGMENTS`]. Author and prefix roles get one
    /// pattern per depth because `*` does not match `/` in TUF patterns.
    /// The index role's patterns do not depend on `max_depth`.
    ///
    /// ```
    /// use cpantuf_core::cpan::{CpanRole, PauseId};
    /// let id = PauseId::new("ETHER").unwrap();
    /// assert_eq!(
    ///     CpanRole::Author(id.clone()).path_patterns(2),
    ///     ["authors/id/E/ET/ETHER/*", "authors/id/E/ET/ETHER/*/*"]
    /// );
    /// assert_eq!(
    ///     CpanRole::Prefix(id.prefix()).path_patterns(1),
    ///     ["authors/id/E/ET/*/*"]
    /// );
    /// ```
    pub fn path_patterns(&self, max_depth: usize) -> Vec<String> {
        let depth = max_depth.clamp(1, CpanPath::MAX_SEGMENTS);
        let per_depth = |base: String| -> Vec<String> {
            (1..=depth)
                .map(|d| {
                    let mut p = base.clone();
                    for _ in 0..d {
                        p.push_str("/*");
                    }
                    p
                })
                .collect()
        };
        match self {
            // Order matters only for readability; every pattern is disjoint
            // from the others.
            Self::Index => [
                "modules/*",
                "authors/*",
                "authors/id/*/*/*/CHECKSUMS",
                "authors/id/*/*/*/*.meta",
                "authors/id/*/*/*/*.readme",
            ]
            .map(String::from)
            .to_vec(),
            Self::Prefix(prefix) => per_depth(format!("{}/*", prefix.dir())),
            Self::Author(id) | Self::AuthorBin(id, _) => per_depth(id.author_dir().to_string()),
        }
    }
}

impl fmt::Display for CpanRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Index => f.write_str(INDEX_ROLE_NAME),
            Self::Prefix(p) => write!(f, "{PREFIX_ROLE_PREFIX}{}-{}", p.letter_dir(), p.pair_dir()),
            Self::Author(id) => write!(f, "{AUTHOR_ROLE_PREFIX}{id}"),
            Self::AuthorBin(id, bin) => write!(f, "{AUTHOR_ROLE_PREFIX}{id}{BIN_INFIX}{bin}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> CpanPath {
        CpanPath::new(s).unwrap()
    }

    fn author(s: &str) -> Owner {
        Owner::Author(PauseId::new(s).unwrap())
    }

    #[test]
    fn index_files() {
        for s in [
            "modules/02packages.details.txt.gz",
            "modules/03modlist.data.gz",
            "modules/06perms.txt.gz",
            "authors/01mailrc.txt.gz",
            "authors/id/E/ET/ETHER/CHECKSUMS",
            "authors/id/E/ET/ETHER/Try-Tiny-0.31.meta",
            "authors/id/E/ET/ETHER/Try-Tiny-0.31.readme",
        ] {
            assert_eq!(owner(&p(s)), Ok(Owner::Index), "{s}");
        }
    }

    #[test]
    fn author_files() {
        for s in [
            "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
            "authors/id/E/ET/ETHER/sub/CHECKSUMS",
            "authors/id/E/ET/ETHER/sub/x.meta",
            "authors/id/E/ET/ETHER/a/b/c/d/e/f/g/x.tar.gz",
            "authors/id/E/ET/ETHER/CHECKSUMS.bak",
            "authors/id/E/ET/ETHER/meta",
        ] {
            assert_eq!(owner(&p(s)), Ok(author("ETHER")), "{s}");
        }
        assert_eq!(
            owner(&p("authors/id/N/NI/NI-S/x.tar.gz")),
            Ok(author("NI-S"))
        );
        assert_eq!(owner(&p("authors/id/I/IX/IX/x.tar.gz")), Ok(author("IX")));
    }

    #[test]
    fn wrong_letters_are_refused() {
        for s in [
            "authors/id/H/HA/ETHER/x.tar.gz",
            "authors/id/E/EX/ETHER/x.tar.gz",
            "authors/id/H/HA/ETHER/CHECKSUMS",
        ] {
            assert!(
                matches!(owner(&p(s)), Err(OwnerError::WrongPrefix { .. })),
                "{s}"
            );
        }
        assert!(matches!(
            owner(&p("authors/id/E/HA/ETHER/x")),
            Err(OwnerError::BadPrefix { .. })
        ));
        assert!(matches!(
            owner(&p("authors/id/e/et/ether/x")),
            Err(OwnerError::BadPrefix { .. })
        ));
        assert!(matches!(
            owner(&p("authors/id/E/ET/Ether/x")),
            Err(OwnerError::BadAuthor { .. })
        ));
        assert!(matches!(
            owner(&p("authors/id/E/ET/ETHERETHER/x")),
            Err(OwnerError::BadAuthor { .. })
        ));
    }

    #[test]
    fn unsignable_paths() {
        for s in [
            "modules",
            "modules/by-module/Moo/x.tar.gz",
            "authors",
            "authors/id/E",
            "authors/id/E/ET",
            "authors/id/E/ET/x.tar.gz",
            "authors/id/E/ET/ETHER",
            "index.html",
            "src/perl.tar.gz",
            "MODULES/x",
        ] {
            assert!(
                matches!(owner(&p(s)), Err(OwnerError::NotSignable { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn depth_below_author() {
        assert_eq!(author_depth(&p("authors/id/E/ET/ETHER/x")), Some(1));
        assert_eq!(author_depth(&p("authors/id/E/ET/ETHER/a/b/x")), Some(3));
        assert_eq!(author_depth(&p("authors/id/E/ET/ETHER")), None);
        assert_eq!(author_depth(&p("modules/x")), None);
    }

    #[test]
    fn role_names_round_trip() {
        let ids = ["ETHER", "NI-S", "IX", "WIN32", "CHANG-LIU"];
        for s in ids {
            let id = PauseId::new(s).unwrap();
            for role in [
                CpanRole::Author(id.clone()),
                CpanRole::Prefix(id.prefix()),
                CpanRole::AuthorBin(id.clone(), "0".into()),
                CpanRole::AuthorBin(id.clone(), "3f".into()),
            ] {
                let name = role.name();
                assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
                assert_eq!(CpanRole::from_name(&name), Ok(role));
            }
        }
        assert_eq!(
            CpanRole::Prefix(PauseId::new("NI-S").unwrap().prefix()).name(),
            "prefix-N-NI"
        );
        assert_eq!(
            CpanRole::Prefix(AuthorPrefix::new("N", "N-").unwrap()).name(),
            "prefix-N-N-"
        );
        assert_eq!(
            CpanRole::from_name("prefix-N-N-"),
            Ok(CpanRole::Prefix(AuthorPrefix::new("N", "N-").unwrap()))
        );
        assert_eq!(CpanRole::from_name("index"), Ok(CpanRole::Index));
        for bad in [
            "targets",
            "root",
            "",
            "author-",
            "author-ether",
            "author-../x",
            "author-KBM-bin-",
            "author-KBM-bin-3F",
            "author-KBM-bin-xyz",
            "author-KBM-bin-123456789",
            "author-kbm-bin-0",
            "prefix-E",
            "prefix-E-HA",
            "prefix-E/ET",
            "Index",
        ] {
            assert!(CpanRole::from_name(bad).is_err(), "{bad:?}");
        }
    }

    /// TUF 1.0.x pattern matching as the client performs it: shell-style
    /// `*` that does not cross `/` (only `*` appears in our patterns).
    fn tuf_match(pattern: &str, path: &str) -> bool {
        let ps: Vec<&str> = pattern.split('/').collect();
        let ts: Vec<&str> = path.split('/').collect();
        ps.len() == ts.len() && ps.iter().zip(&ts).all(|(p, t)| glob_segment(p, t))
    }

    fn glob_segment(p: &str, t: &str) -> bool {
        match p.split_once('*') {
            None => p == t,
            Some((head, tail)) => {
                t.starts_with(head)
                    && (0..=t.len() - head.len()).any(|i| {
                        t.is_char_boundary(head.len() + i)
                            && glob_segment(tail, &t[head.len() + i..])
                    })
            }
        }
    }

    /// Resolves a path the way a TUF client walks the delegation tree:
    /// `index` first, then the prefix roles; all terminating.
    fn resolve(path: &str, roles: &[(PauseId, usize)]) -> Option<CpanRole> {
        let matches = |role: &CpanRole, depth| {
            role.path_patterns(depth)
                .iter()
                .any(|pat| tuf_match(pat, path))
        };
        if matches(&CpanRole::Index, 1) {
            return Some(CpanRole::Index);
        }
        for (id, depth) in roles {
            let prefix = CpanRole::Prefix(id.prefix());
            if matches(&prefix, *depth) {
                let author = CpanRole::Author(id.clone());
                return matches(&author, *depth).then_some(author);
            }
        }
        None
    }

    #[test]
    fn patterns_agree_with_owner() {
        let ether = PauseId::new("ETHER").unwrap();
        let haarg = PauseId::new("HAARG").unwrap();
        let roles = [(ether.clone(), 3), (haarg.clone(), 3)];
        let cases = [
            "modules/02packages.details.txt.gz",
            "authors/01mailrc.txt.gz",
            "authors/id/E/ET/ETHER/CHECKSUMS",
            "authors/id/E/ET/ETHER/Try-Tiny-0.31.meta",
            "authors/id/E/ET/ETHER/Try-Tiny-0.31.readme",
            "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
            "authors/id/E/ET/ETHER/sub/CHECKSUMS",
            "authors/id/E/ET/ETHER/a/b/x.tar.gz",
            "authors/id/H/HA/HAARG/Moo-2.005005.tar.gz",
        ];
        for path in cases {
            let want = match owner(&p(path)).unwrap() {
                Owner::Index => CpanRole::Index,
                Owner::Author(id) => CpanRole::Author(id),
            };
            assert_eq!(resolve(path, &roles), Some(want), "{path}");
        }
        // Nothing resolves for paths owner() refuses, or beyond the depth the
        // author's patterns cover.
        for path in [
            "modules/by-module/Moo/x.tar.gz",
            "authors/id/H/HA/ETHER/x.tar.gz",
            "authors/id/E/ET/ETHER/a/b/c/x.tar.gz",
        ] {
            assert_ne!(
                resolve(path, &roles),
                Some(CpanRole::Author(ether.clone())),
                "{path}"
            );
        }
        // The overlap the module docs describe: the author pattern matches
        // CHECKSUMS too, only the index-first order keeps it with index.
        assert!(tuf_match(
            &CpanRole::Author(ether.clone()).path_patterns(1)[0],
            "authors/id/E/ET/ETHER/CHECKSUMS"
        ));
        // An author's patterns never reach another author's directory.
        for pat in CpanRole::Author(ether).path_patterns(8) {
            assert!(!tuf_match(
                &pat,
                "authors/id/H/HA/HAARG/Moo-2.005005.tar.gz"
            ));
            assert!(!tuf_match(&pat, "authors/id/E/ET/ETHER2/x"));
        }
    }

    #[test]
    fn pattern_depth_is_clamped() {
        let id = PauseId::new("ETHER").unwrap();
        assert_eq!(CpanRole::Author(id.clone()).path_patterns(0).len(), 1);
        assert_eq!(
            CpanRole::Author(id).path_patterns(usize::MAX).len(),
            CpanPath::MAX_SEGMENTS
        );
        assert_eq!(CpanRole::Index.path_patterns(7).len(), 5);
    }
}
