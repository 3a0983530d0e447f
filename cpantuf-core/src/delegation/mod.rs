//! Which delegated roles may speak for a target path (spec 4.5
//! DELEGATIONS, 5.7.2).
//!
//! * `paths`: shell-style glob patterns, matched segment by segment: since
//!   spec 1.0.20 a `*` does not match `/`, and a pattern only matches a path
//!   with the same number of `/`-separated segments. Within a segment `*`
//!   matches any run of characters, `?` one character, and `[...]` /
//!   `[!...]` a class, like Python's `fnmatch` that python-tuf uses.
//! * `path_hash_prefixes`: the hex sha256 of the target path starts with one
//!   of the prefixes.
//! * succinct hash bins (TAP 15): the first `bit_length` bits of the sha256
//!   select exactly one bin role.

use crate::metadata::{DelegatedRole, Delegations, SuccinctRoles};
use sha2::{Digest, Sha256};

mod index;
pub use index::PathIndex;

/// Whether `target` matches the delegation pattern `pattern`.
pub fn path_matches(pattern: &str, target: &str) -> bool {
    // The pattern's text before its first glob character must start the target: a cheap
    // test, in one pass that stops at the first differing byte, that settles most
    // non-matches (a delegation search tries every sibling pattern, hundreds of them for
    // CPAN's top-level targets role).
    let t = target.as_bytes();
    for (i, &b) in pattern.as_bytes().iter().enumerate() {
        if matches!(b, b'*' | b'?' | b'[') {
            break;
        }
        if t.get(i) != Some(&b) {
            return false;
        }
    }
    let mut p = pattern.split('/');
    let mut t = target.split('/');
    loop {
        match (p.next(), t.next()) {
            (None, None) => return true,
            (Some(ps), Some(ts)) => {
                if !segment_matches(ps.as_bytes(), ts.as_bytes()) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Whether some path might match both patterns; `false` only when none can. Conservative: a
/// position where both segments hold glob characters counts as a possible overlap. Used to
/// prove that withdrawing a terminating delegation uncovers no other role's path (a sync
/// applying a change in place).
pub fn patterns_may_overlap(a: &str, b: &str) -> bool {
    let is_glob = |s: &str| s.bytes().any(|c| matches!(c, b'*' | b'?' | b'['));
    let (sa, sb): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
    sa.len() == sb.len()
        && sa
            .iter()
            .zip(&sb)
            .all(|(x, y)| match (is_glob(x), is_glob(y)) {
                (false, false) => x == y,
                (true, false) => segment_matches(x.as_bytes(), y.as_bytes()),
                (false, true) => segment_matches(y.as_bytes(), x.as_bytes()),
                (true, true) => true,
            })
}

/// fnmatch for one segment, iterative with single-star backtracking
/// (linear-ish; no exponential blow-up on hostile patterns).
fn segment_matches(pattern: &[u8], text: &[u8]) -> bool {
    // Fast paths for the segments delegations are made of (`authors`, `E`, `*`), with no
    // allocation: a delegation search over a whole CPAN mirror tests tens of millions of
    // segments. Both sides are whole UTF-8 strings here, so comparing bytes is comparing
    // characters.
    if pattern == b"*" {
        return true;
    }
    if !pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
        return pattern == text;
    }
    let pat: Vec<Tok> = tokenize(pattern);
    let txt: Vec<char> = String::from_utf8_lossy(text).chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < txt.len() {
        match pat.get(pi) {
            Some(Tok::Star) => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some(tok) if tok.matches(txt[ti]) => {
                pi += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pat[pi..].iter().all(|t| matches!(t, Tok::Star))
}

enum Tok {
    Star,
    Any,
    Lit(char),
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

impl Tok {
    fn matches(&self, c: char) -> bool {
        match self {
            Tok::Star => true,
            Tok::Any => true,
            Tok::Lit(l) => *l == c,
            Tok::Class { negated, items } => {
                items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

fn tokenize(pattern: &[u8]) -> Vec<Tok> {
    let chars: Vec<char> = String::from_utf8_lossy(pattern).chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if !matches!(out.last(), Some(Tok::Star)) {
                    out.push(Tok::Star);
                }
                i += 1;
            }
            '?' => {
                out.push(Tok::Any);
                i += 1;
            }
            '[' => {
                // Python fnmatch: "[!" negates, a "]" right after the opening
                // (or after "!") is literal; no closing "]" means a literal "[".
                let mut j = i + 1;
                let negated = chars.get(j) == Some(&'!');
                if negated {
                    j += 1;
                }
                let body_start = j;
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push(Tok::Lit('['));
                    i += 1;
                    continue;
                }
                let body = &chars[body_start..j];
                let mut items = Vec::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        items.push((body[k], body[k + 2]));
                        k += 3;
                    } else {
                        items.push((body[k], body[k]));
                        k += 1;
                    }
                }
                out.push(Tok::Class { negated, items });
                i = j + 1;
            }
            c => {
                out.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    out
}

/// Hex sha256 of a target path, as used by `path_hash_prefixes`.
pub fn target_path_hash(target: &str) -> String {
    hex::encode(Sha256::digest(target.as_bytes()))
}

impl DelegatedRole {
    /// Whether this delegation covers `target` (spec 5.7.2).
    pub fn covers(&self, target: &str) -> bool {
        if let Some(paths) = &self.paths {
            return paths.iter().any(|p| path_matches(p, target));
        }
        if let Some(prefixes) = &self.path_hash_prefixes {
            let h = target_path_hash(target);
            return prefixes.iter().any(|p| h.starts_with(p.as_str()));
        }
        false
    }

    /// Whether some path might be covered by both delegations (see
    /// [`patterns_may_overlap`]); always `true` when either uses hash prefixes.
    pub fn may_overlap(&self, other: &DelegatedRole) -> bool {
        match (&self.paths, &other.paths) {
            (Some(a), Some(b)) => a
                .iter()
                .any(|p| b.iter().any(|q| patterns_may_overlap(p, q))),
            _ => true,
        }
    }
}

impl SuccinctRoles {
    /// Number of hex digits in a bin suffix.
    fn suffix_len(&self) -> usize {
        let bins_minus_one = (1u64 << self.bit_length) - 1;
        format!("{bins_minus_one:x}").len()
    }

    /// Every bin's role name, in bin order.
    pub fn bin_names(&self) -> impl Iterator<Item = String> + '_ {
        let width = self.suffix_len();
        (0..1u64 << self.bit_length).map(move |bin| format!("{}-{bin:0width$x}", self.name_prefix))
    }

    /// The one bin role that may sign `target`.
    pub fn role_for_target(&self, target: &str) -> String {
        let digest = Sha256::digest(target.as_bytes());
        let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        let bin = u64::from(first) >> (32 - self.bit_length);
        format!(
            "{}-{:0width$x}",
            self.name_prefix,
            bin,
            width = self.suffix_len()
        )
    }

    /// Whether `name` is one of the bins.
    pub fn is_bin(&self, name: &str) -> bool {
        let Some(suffix) = name
            .strip_prefix(self.name_prefix.as_str())
            .and_then(|s| s.strip_prefix('-'))
        else {
            return false;
        };
        suffix.len() == self.suffix_len()
            && suffix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && u64::from_str_radix(suffix, 16).is_ok_and(|n| n < (1u64 << self.bit_length))
    }
}

/// A delegated role that covers a target, in search order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The delegated role's name.
    pub name: String,
    /// Whether the search must stop after this role.
    pub terminating: bool,
}

impl Delegations {
    /// The child roles that may sign `target`, in delegation order, cut after
    /// the first terminating one (spec 5.7.2.2: a terminating delegation
    /// that matches ends the search of the remaining delegations).
    pub fn roles_for_target(&self, target: &str) -> Vec<Candidate> {
        if let Some(roles) = &self.roles {
            return in_search_order(roles.iter(), target);
        }
        self.succinct_roles
            .iter()
            .map(|s| Candidate {
                name: s.role_for_target(target),
                terminating: false,
            })
            .collect()
    }

    /// The keys and threshold this delegator gives role `name`, if it
    /// delegates to it at all.
    pub fn authority_for(&self, name: &str) -> Option<crate::verify::Authority<'_>> {
        if let Some(roles) = &self.roles {
            return roles
                .iter()
                .find(|r| r.name == name)
                .map(|r| crate::verify::Authority {
                    keys: &self.keys,
                    keyids: &r.keyids,
                    threshold: r.threshold,
                });
        }
        self.succinct_roles
            .as_ref()
            .filter(|s| s.is_bin(name))
            .map(|s| crate::verify::Authority {
                keys: &self.keys,
                keyids: &s.keyids,
                threshold: s.threshold,
            })
    }
}

/// The roles of `roles` (in delegation order) that cover `target`, cut after the first
/// terminating one (spec 5.7.2.2).
fn in_search_order<'a>(
    roles: impl Iterator<Item = &'a DelegatedRole>,
    target: &str,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for role in roles.filter(|r| r.covers(target)) {
        out.push(Candidate {
            name: role.name.clone(),
            terminating: role.terminating,
        });
        if role.terminating {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_does_not_cross_slash() {
        assert!(path_matches(
            "authors/id/E/ET/ETHER/*",
            "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
        ));
        assert!(!path_matches(
            "authors/id/E/ET/ETHER/*",
            "authors/id/E/ET/ETHER/sub/x.tar.gz"
        ));
        assert!(path_matches(
            "authors/id/E/ET/ETHER/*/*",
            "authors/id/E/ET/ETHER/sub/x.tar.gz"
        ));
        assert!(!path_matches("*", "a/b"));
        assert!(path_matches("*", "anything"));
        assert!(path_matches("*/*", "a/b"));
        assert!(!path_matches("a/*", "a"));
        assert!(path_matches("a/*", "a/"));
    }

    #[test]
    fn fnmatch_classes_and_question_mark() {
        assert!(path_matches("file?.txt", "file1.txt"));
        assert!(!path_matches("file?.txt", "file10.txt"));
        assert!(path_matches("v[0-9].tgz", "v7.tgz"));
        assert!(!path_matches("v[!0-9].tgz", "v7.tgz"));
        assert!(path_matches("v[!0-9].tgz", "vx.tgz"));
        assert!(path_matches("[]]", "]"));
        assert!(path_matches("a[b", "a[b"));
        assert!(path_matches("*.tar.gz", "Moo-2.005005.tar.gz"));
        assert!(!path_matches("*.tar.gz", "Moo-2.005005.zip"));
        assert!(path_matches("Mo*o*.tar.gz", "Moo-2.005005.tar.gz"));
    }

    #[test]
    fn patterns_overlap_unless_a_segment_tells_them_apart() {
        let author = "authors/id/G/GO/GONZUS/*";
        assert!(!patterns_may_overlap(author, "authors/id/G/GO/OTHER/*"));
        assert!(!patterns_may_overlap(author, "authors/id/G/GO/GONZUS/*/*"));
        assert!(!patterns_may_overlap(author, "authors/id/G/GO/OT*/*"));
        assert!(patterns_may_overlap(author, "authors/id/G/GO/GO*/*"));
        assert!(patterns_may_overlap(author, "authors/id/G/GO/*/*"));
        assert!(patterns_may_overlap(author, author));
        assert!(patterns_may_overlap("a/*x", "a/y*"));
        assert!(!patterns_may_overlap("a/b", "a/c"));
        assert!(patterns_may_overlap("a/b", "a/b"));
        // Whenever a path matches both, they are said to overlap.
        for (p, q, path) in [
            ("a/[bc]", "a/?", "a/b"),
            ("x/*.gz", "x/Foo*", "x/Foo.gz"),
            ("*/*", "a/b", "a/b"),
        ] {
            assert!(path_matches(p, path) && path_matches(q, path));
            assert!(patterns_may_overlap(p, q), "{p} {q}");
        }
    }

    #[test]
    fn hostile_patterns_stay_fast() {
        let pat = "*a*a*a*a*a*a*a*a*a*a*a*b";
        let text = "a".repeat(5000);
        assert!(!path_matches(pat, &text));
    }

    #[test]
    fn succinct_bins_match_python_tuf() {
        // python-tuf: SuccinctRoles(bit_length=8, name_prefix="bin").get_role_for_target
        let s = SuccinctRoles {
            keyids: vec![],
            threshold: std::num::NonZeroU64::MIN,
            bit_length: 8,
            name_prefix: "bin".into(),
        };
        let h = target_path_hash("target");
        let expected = format!("bin-{}", &h[..2]);
        assert_eq!(s.role_for_target("target"), expected);
        assert!(s.is_bin(&expected));
        assert!(!s.is_bin("bin-100"));
        assert!(!s.is_bin("bin-0"));
        assert!(!s.is_bin("other-00"));
        let s1 = SuccinctRoles {
            bit_length: 1,
            ..s.clone()
        };
        assert!(s1.is_bin("bin-1") && !s1.is_bin("bin-2"));
    }
}
