//! CPAN path and id rules, and delegation path patterns.
//!
//! The whole input (lossily UTF-8) goes to `CpanPath::new`, `PauseId::new`
//! and `CpanRole::from_name`; for every accepted path:
//! * `owner()` never panics, and the role it names has a delegation pattern
//!   (`CpanRole::path_patterns`) that matches the path; a path owned by an
//!   author matches none of the index role's patterns;
//! * role names round-trip.
//!
//! The input split at its first NUL byte is `(pattern, target)` for
//! `path_matches`:
//! * a pattern with no glob characters matches exactly the equal path;
//! * a pattern never matches a target with a different number of segments
//!   (so `*` never matches across `/`).
#![no_main]

use cpantuf_core::cpan::{author_depth, owner, CpanPath, CpanRole, DistPath, Owner, PauseId};
use cpantuf_core::delegation::{path_matches, target_path_hash};
use libfuzzer_sys::fuzz_target;

fn any_match(patterns: &[String], path: &str) -> bool {
    patterns.iter().any(|p| path_matches(p, path))
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);

    if let Ok(p) = CpanPath::new(&s) {
        for seg in p.segments() {
            assert!(!seg.is_empty() && seg != "." && seg != "..", "{p:?}");
        }
        let _ = p.file_name();
        let _ = p.dist_path();
        let _ = DistPath::from_cpan_path(p.clone());
        let depth = author_depth(&p);
        match owner(&p) {
            Ok(Owner::Index) => {
                assert!(
                    any_match(&CpanRole::Index.path_patterns(1), p.as_str()),
                    "index-owned path {p:?} matches no index pattern"
                );
            }
            Ok(Owner::Author(id)) => {
                let d = depth.expect("an author's file has a depth");
                let role = CpanRole::Author(id.clone());
                assert!(
                    any_match(&role.path_patterns(d), p.as_str()),
                    "{p:?} owned by {id:?} matches none of its patterns"
                );
                assert!(
                    any_match(&CpanRole::Prefix(id.prefix()).path_patterns(d), p.as_str()),
                    "{p:?} matches none of its prefix role's patterns"
                );
                assert!(
                    !any_match(&CpanRole::Index.path_patterns(1), p.as_str()),
                    "author-owned {p:?} also matches an index pattern"
                );
                assert_eq!(CpanRole::from_name(&role.name()).ok(), Some(role));
            }
            Err(_) => {}
        }
    }

    if let Ok(id) = PauseId::new(&s) {
        let dir = id.author_dir();
        assert!(id.prefix().contains(&id));
        assert!(CpanPath::new(dir.as_str()).is_ok());
        let role = CpanRole::Prefix(id.prefix());
        assert_eq!(CpanRole::from_name(&role.name()).ok(), Some(role));
        // Hash bins of a binned author (ADR 0006) round-trip too.
        let bin = CpanRole::AuthorBin(id.clone(), format!("{:x}", data.len() % 4096));
        assert_eq!(CpanRole::from_name(&bin.name()).ok(), Some(bin));
    }
    if let Ok(role) = CpanRole::from_name(&s) {
        let _ = role.path_patterns(s.len());
        assert_eq!(role.name(), s, "role name does not round-trip");
    }

    let (pattern, target) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => return,
    };
    let (pattern, target) = (
        String::from_utf8_lossy(pattern),
        String::from_utf8_lossy(target),
    );
    let m = path_matches(&pattern, &target);
    if pattern.split('/').count() != target.split('/').count() {
        assert!(!m, "{pattern:?} matched {target:?} across segments");
    }
    if !pattern.contains(['*', '?', '[']) {
        assert_eq!(m, pattern == target, "literal {pattern:?} vs {target:?}");
    }
    let _ = target_path_hash(&target);
});
