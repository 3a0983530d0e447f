//! A delegator's path delegations indexed by the literal segments their patterns start with,
//! so that the search for one target (spec 5.7.2) tries only the delegations that can match
//! it, still in delegation order, instead of every one. CPAN's top-level targets role
//! delegates to hundreds of roles, and a mirror sync or an audit searches for ~100,000
//! paths.
//!
//! The answer is exactly [`Delegations::roles_for_target`]: a pattern matches a path only
//! with as many segments as the path, segment by segment, so its leading segments without
//! glob characters must be the path's leading segments.

use super::Candidate;
use crate::metadata::Delegations;
use std::collections::HashMap;

/// The delegations of one `delegations.roles` list, by literal leading segments.
#[derive(Debug, Clone, Default)]
pub struct PathIndex {
    /// A pattern's leading segments without glob characters, each followed by `/` (so that
    /// no segments, `""`, and one empty segment, `"/"`, differ) -> the delegations with
    /// such a pattern, ascending.
    by_prefix: HashMap<String, Vec<usize>>,
    /// Delegations with a pattern that starts with a glob, or with hash prefixes: tried for
    /// every path.
    anywhere: Vec<usize>,
    /// How many delegations were indexed.
    len: usize,
}

impl PathIndex {
    /// Indexes `d.roles` (an empty index for succinct hash bins, which need none).
    pub fn new(d: &Delegations) -> Self {
        let mut index = PathIndex::default();
        let Some(roles) = &d.roles else {
            return index;
        };
        index.len = roles.len();
        for (i, role) in roles.iter().enumerate() {
            match &role.paths {
                Some(paths) => {
                    for p in paths {
                        match literal_key(p) {
                            Some(key) => index.by_prefix.entry(key).or_default().push(i),
                            None => index.anywhere.push(i),
                        }
                    }
                }
                None => index.anywhere.push(i),
            }
        }
        for v in index.by_prefix.values_mut() {
            v.dedup();
        }
        index.anywhere.dedup();
        index
    }

    /// [`Delegations::roles_for_target`] of `d`, the delegations this index was built from.
    pub fn roles_for_target(&self, d: &Delegations, target: &str) -> Vec<Candidate> {
        let Some(roles) = &d.roles else {
            return d.roles_for_target(target);
        };
        debug_assert_eq!(roles.len(), self.len, "an index of other delegations");
        let candidates = self.candidates(target);
        super::in_search_order(candidates.iter().map(|&i| &roles[i]), target)
    }

    /// The delegations that may cover `target`, ascending.
    fn candidates(&self, target: &str) -> Vec<usize> {
        let mut out = self.anywhere.clone();
        let ends = target.match_indices('/').map(|(i, _)| &target[..=i]);
        for key in ends {
            out.extend(self.by_prefix.get(key).into_iter().flatten());
        }
        let whole = format!("{target}/");
        out.extend(self.by_prefix.get(&whole).into_iter().flatten());
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The leading segments of `pattern` without glob characters, each followed by `/`; `None`
/// when the first segment has one.
fn literal_key(pattern: &str) -> Option<String> {
    let mut key = String::new();
    for segment in pattern.split('/') {
        if segment.bytes().any(|c| matches!(c, b'*' | b'?' | b'[')) {
            break;
        }
        key.push_str(segment);
        key.push('/');
    }
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{DelegatedRole, KeyId};
    use std::collections::BTreeMap;
    use std::num::NonZeroU64;

    fn role(name: &str, paths: &[&str], terminating: bool) -> DelegatedRole {
        DelegatedRole {
            name: name.into(),
            keyids: Vec::<KeyId>::new(),
            threshold: NonZeroU64::MIN,
            terminating,
            paths: Some(paths.iter().map(|p| p.to_string()).collect()),
            path_hash_prefixes: None,
        }
    }

    #[test]
    fn the_index_answers_like_the_linear_search() {
        let patterns: &[&[&str]] = &[
            &["authors/id/E/ET/ETHER/*"],
            &["authors/id/E/ET/*/*"],
            &["*"],
            &["authors/*/E/*", "modules/02packages.details.txt.gz"],
            &["/x/*"],
            &["/x*"],
            &["a//*"],
            &["a/*"],
            &["a"],
            &["authors/id/E/ET/ETH*/*.tar.gz"],
            &["authors/id/E/ET/ETHER/Moo-1.tar.gz"],
            &["[a]uthors/id/*/*/*/*"],
            &["authors/id/?/??/*/*"],
        ];
        let paths = [
            "authors/id/E/ET/ETHER/Moo-1.tar.gz",
            "authors/id/E/ET/ETHER/sub/x.tar.gz",
            "authors/id/E/ET/OTHER/Moo-1.tar.gz",
            "authors/id/E/ET/ETHERX/Moo-1.tar.gz",
            "modules/02packages.details.txt.gz",
            "authors/x/E/y",
            "/x/y",
            "/xy",
            "x/y",
            "a//b",
            "a/",
            "a",
            "a/b",
            "",
            "/",
        ];
        // Every role, and every role alone, terminating or not: the cut must agree too.
        for terminating in [None, Some(0), Some(1), Some(3), Some(9)] {
            let roles: Vec<DelegatedRole> = patterns
                .iter()
                .enumerate()
                .map(|(i, p)| role(&format!("r{i}"), p, terminating.is_none_or(|t| t == i)))
                .collect();
            let d = Delegations {
                keys: BTreeMap::new(),
                roles: Some(roles),
                succinct_roles: None,
            };
            let index = PathIndex::new(&d);
            for path in paths {
                assert_eq!(
                    index.roles_for_target(&d, path),
                    d.roles_for_target(path),
                    "{path} with terminating {terminating:?}"
                );
            }
        }
    }

    #[test]
    fn hash_prefix_delegations_are_tried_for_every_path() {
        let mut r = role("bins", &[], false);
        r.paths = None;
        r.path_hash_prefixes = Some(vec![String::new()]);
        let d = Delegations {
            keys: BTreeMap::new(),
            roles: Some(vec![role("a", &["a/*"], false), r]),
            succinct_roles: None,
        };
        let index = PathIndex::new(&d);
        for path in ["a/b", "c/d"] {
            assert_eq!(index.roles_for_target(&d, path), d.roles_for_target(path));
        }
        assert_eq!(index.roles_for_target(&d, "c/d").len(), 1);
    }
}
