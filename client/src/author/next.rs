//! The next version of an author's role: files released, files removed, or only a new expiry.

use super::local::LocalFile;
use super::AuthorError;
use chrono::{DateTime, Duration, Utc};
use cpantuf_core::cpan::CpanPath;
use cpantuf_core::metadata::Targets;

/// How long a role signed by the author lives unless asked otherwise: long enough that
/// authors do not re-sign every few weeks (the role's files stay installable until then).
pub const DEFAULT_LIFETIME_DAYS: i64 = 180;

/// The longest lifetime `cpantuf author` signs: PAUSE's default maximum
/// (`claimed_author_max_hours`, one year). PAUSE refuses a role beyond its own maximum.
pub const MAX_LIFETIME_DAYS: i64 = 365;

/// The expiry `days` from `now`, to the second (TUF writes whole seconds).
pub fn expiry(now: DateTime<Utc>, days: i64) -> Result<DateTime<Utc>, AuthorError> {
    if !(1..=MAX_LIFETIME_DAYS).contains(&days) {
        return Err(AuthorError::Lifetime(format!(
            "a role's lifetime is 1 to {MAX_LIFETIME_DAYS} days (PAUSE refuses longer ones), not \
             {days}"
        )));
    }
    let now = DateTime::from_timestamp(now.timestamp(), 0).expect("a time in range");
    Ok(now + Duration::days(days))
}

/// `current` with `add` listed and `remove` dropped, at exactly the next version (PAUSE
/// accepts no other) and expiring at `expires`. Refused: a file already listed with other
/// bytes (CPAN never replaces a release), the removal of a file not listed.
pub fn next_role(
    current: &Targets,
    add: &[LocalFile],
    remove: &[CpanPath],
    expires: DateTime<Utc>,
) -> Result<Targets, AuthorError> {
    let mut targets = current.targets.clone();
    for f in add {
        match targets.get(f.path.as_str()) {
            Some(listed) if *listed != f.info => {
                return Err(AuthorError::Replaces {
                    path: f.path.clone(),
                    published: listed.hashes.get("sha256").cloned().unwrap_or_default(),
                })
            }
            _ => {
                targets.insert(f.path.to_string(), f.info.clone());
            }
        }
    }
    for p in remove {
        if targets.remove(p.as_str()).is_none() {
            return Err(AuthorError::NotListed(p.to_string()));
        }
    }
    let version = current
        .version
        .checked_add(1)
        .ok_or_else(|| AuthorError::Lifetime("the role has no next version".into()))?;
    Ok(Targets {
        spec_version: current.spec_version.clone(),
        version,
        expires,
        targets,
        delegations: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpantuf_core::metadata::TargetFile;
    use std::collections::BTreeMap;
    use std::num::NonZeroU64;

    fn info(sha: &str) -> TargetFile {
        TargetFile {
            length: 3,
            hashes: BTreeMap::from([("sha256".to_owned(), sha.to_owned())]),
            custom: None,
        }
    }

    fn role() -> Targets {
        Targets {
            spec_version: "1.0.31".into(),
            version: NonZeroU64::new(4).unwrap(),
            expires: Utc::now(),
            targets: BTreeMap::from([(
                "authors/id/E/ET/ETHER/Moo-1.tar.gz".to_owned(),
                info("aa"),
            )]),
            delegations: None,
        }
    }

    fn file(name: &str, sha: &str) -> LocalFile {
        LocalFile {
            path: CpanPath::new(&format!("authors/id/E/ET/ETHER/{name}")).unwrap(),
            info: info(sha),
        }
    }

    #[test]
    fn a_release_adds_files_at_the_next_version() {
        let exp = expiry(Utc::now(), 30).unwrap();
        let t = next_role(&role(), &[file("Moo-2.tar.gz", "bb")], &[], exp).unwrap();
        assert_eq!(t.version.get(), 5);
        assert_eq!(t.targets.len(), 2);
        assert_eq!(t.expires, exp);
        let same_again = next_role(&role(), &[file("Moo-1.tar.gz", "aa")], &[], exp).unwrap();
        assert_eq!(same_again.targets, role().targets);
    }

    #[test]
    fn replacing_a_released_file_is_refused() {
        let exp = expiry(Utc::now(), 30).unwrap();
        let e = next_role(&role(), &[file("Moo-1.tar.gz", "cc")], &[], exp).unwrap_err();
        assert!(matches!(e, AuthorError::Replaces { .. }), "{e}");
    }

    #[test]
    fn removing_an_unlisted_file_is_refused() {
        let exp = expiry(Utc::now(), 30).unwrap();
        let gone = CpanPath::new("authors/id/E/ET/ETHER/Moo-9.tar.gz").unwrap();
        assert!(matches!(
            next_role(&role(), &[], &[gone], exp),
            Err(AuthorError::NotListed(_))
        ));
        let listed = CpanPath::new("authors/id/E/ET/ETHER/Moo-1.tar.gz").unwrap();
        assert!(next_role(&role(), &[], &[listed], exp)
            .unwrap()
            .targets
            .is_empty());
    }

    #[test]
    fn lifetimes_beyond_pause_maximum_are_refused() {
        assert!(expiry(Utc::now(), 0).is_err());
        assert!(expiry(Utc::now(), MAX_LIFETIME_DAYS + 1).is_err());
        assert!(expiry(Utc::now(), MAX_LIFETIME_DAYS).is_ok());
    }
}
