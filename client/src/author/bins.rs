//! A role split into hash bins (ADR 0006), signed by its author: a new client fetches the
//! bins its files hash into, not one large role, and a release re-signs only the bins the
//! new files hash into. A claim, a new key or a renewal signs the role and every bin again;
//! `--bins BITS` splits a single role.

use super::local::LocalFile;
use super::next::next_role;
use super::AuthorError;
use crate::session::AuthorRole;
use chrono::{DateTime, Utc};
use cpantuf_core::cpan::{CpanPath, CpanRole, PauseId, MAX_AUTHOR_BIN_BITS};
use cpantuf_core::crypto::compute_keyid;
use cpantuf_core::metadata::{Delegations, Key, SuccinctRoles, TargetFile, Targets};
use std::collections::BTreeMap;
use std::num::NonZeroU64;

/// The roles to sign, by name, the author's role first when it changes.
pub type Roles = Vec<(String, Targets)>;

/// What one signing changes.
pub struct Change<'a> {
    /// Tarballs to list.
    pub add: &'a [LocalFile],
    /// Files to drop.
    pub remove: &'a [CpanPath],
    /// The expiry of every role signed.
    pub expires: DateTime<Utc>,
    /// Sign every role again (a renewal), not only the bins the files hash into.
    pub everything: bool,
}

/// The next versions of the roles of `role` with `c` applied, signed by `key`: the role
/// alone when it is one role; when it is split, the bins `c` touches (every bin and the role
/// on a renewal or a new key). `bits` splits it into `2^bits` bins (again, when it is split
/// another way).
pub fn plan(
    id: &PauseId,
    role: &AuthorRole,
    key: &Key,
    bits: Option<u32>,
    c: &Change<'_>,
) -> Result<Roles, AuthorError> {
    let layout = succinct_of(&role.targets).map(|s| s.bit_length);
    match (layout, bits) {
        (Some(now), Some(b)) if now != b => split(id, &flattened(role), key, b, c),
        (Some(_), _) => next_split(role, key, c),
        (None, Some(b)) => split(id, role, key, b, c),
        (None, None) => {
            let next = next_role(&role.targets, c.add, c.remove, c.expires)?;
            Ok(vec![(role.name.clone(), next)])
        }
    }
}

/// Every file `role` lists, in itself or in its bins.
pub fn listed(role: &AuthorRole) -> BTreeMap<String, TargetFile> {
    let mut all = role.targets.targets.clone();
    for bin in role.bins.values() {
        all.extend(bin.targets.iter().map(|(p, t)| (p.clone(), t.clone())));
    }
    all
}

/// When the first of `role` and its bins expires: the author's files stop being
/// installable then, some or all of them.
pub fn earliest_expiry(role: &AuthorRole) -> DateTime<Utc> {
    role.bins
        .values()
        .map(|b| b.expires)
        .fold(role.targets.expires, DateTime::min)
}

fn succinct_of(t: &Targets) -> Option<&SuccinctRoles> {
    t.delegations.as_ref()?.succinct_roles.as_ref()
}

/// `role` as one role listing every file of its bins (to split it another way).
fn flattened(role: &AuthorRole) -> AuthorRole {
    let mut flat = role.clone();
    flat.targets.targets = listed(role);
    flat.targets.delegations = None;
    flat.bins.clear();
    flat
}

/// The next versions of the roles of `role`, which is split into bins, signed by `key`. A
/// role delegated to another key (a claim or a rotation) is signed whole: the role names the
/// new key and every bin is signed by it.
pub fn next_split(role: &AuthorRole, key: &Key, c: &Change<'_>) -> Result<Roles, AuthorError> {
    let s = succinct_of(&role.targets)
        .ok_or_else(|| AuthorError::Bins(format!("{} is not split into bins", role.name)))?;
    let rekey = s.keyids != [compute_keyid(key)];
    let everything = c.everything || rekey;
    let mut out = Roles::new();
    if everything {
        let version = next_version(&role.name, role.targets.version)?;
        out.push((
            role.name.clone(),
            delegating(&role.targets, version, c.expires, key, s.bit_length, s),
        ));
    }
    let (adds, removes) = by_bin(s, c.add, c.remove);
    for bin in s.bin_names() {
        let (a, r) = (adds.get(&bin), removes.get(&bin));
        if !everything && a.is_none() && r.is_none() {
            continue;
        }
        let current = role.bins.get(&bin).ok_or_else(|| {
            AuthorError::Bins(format!(
                "{bin} is delegated by {} but not published: ask PAUSE to publish your roles",
                role.name
            ))
        })?;
        let a: Vec<LocalFile> = a.cloned().unwrap_or_default();
        let r: Vec<CpanPath> = r.cloned().unwrap_or_default();
        out.push((bin, next_role(current, &a, &r, c.expires)?));
    }
    Ok(out)
}

/// `role`, a single role, split into `2^bits` bins signed by `key`, with `c` applied. Each
/// bin's version is one above the version the snapshot lists for it (PAUSE may have split
/// the role before), or 1.
pub fn split(
    id: &PauseId,
    role: &AuthorRole,
    key: &Key,
    bits: u32,
    c: &Change<'_>,
) -> Result<Roles, AuthorError> {
    if !(1..=MAX_AUTHOR_BIN_BITS).contains(&bits) {
        return Err(AuthorError::Bins(format!(
            "--bins is 1 to {MAX_AUTHOR_BIN_BITS} (2 to {} bins), not {bits}",
            1u32 << MAX_AUTHOR_BIN_BITS
        )));
    }
    let all = next_role(&role.targets, c.add, c.remove, c.expires)?;
    let s = succinct(id, key, bits);
    let mut out = vec![(
        role.name.clone(),
        delegating(&role.targets, all.version, c.expires, key, bits, &s),
    )];
    let mut bins: BTreeMap<String, Targets> = BTreeMap::new();
    for bin in s.bin_names() {
        let version = match role.versions.get(&bin) {
            Some(v) => next_version(&bin, *v)?,
            None => NonZeroU64::MIN,
        };
        let t = Targets {
            version,
            targets: BTreeMap::new(),
            ..all.clone()
        };
        bins.insert(bin, t);
    }
    for (path, info) in all.targets {
        let bin = s.role_for_target(&path);
        bins.get_mut(&bin)
            .expect("role_for_target names a bin")
            .targets
            .insert(path, info);
    }
    out.extend(bins);
    Ok(out)
}

/// The bins of `id`'s role, `2^bits` of them, delegated to `key` alone.
fn succinct(id: &PauseId, key: &Key, bits: u32) -> SuccinctRoles {
    SuccinctRoles {
        keyids: vec![compute_keyid(key)],
        threshold: NonZeroU64::MIN,
        bit_length: bits,
        name_prefix: CpanRole::author_bin_prefix(id),
    }
}

/// The author's role delegating to its bins (`like`'s name prefix, `bits`) with `key`.
fn delegating(
    current: &Targets,
    version: NonZeroU64,
    expires: DateTime<Utc>,
    key: &Key,
    bits: u32,
    like: &SuccinctRoles,
) -> Targets {
    let keyid = compute_keyid(key);
    Targets {
        spec_version: current.spec_version.clone(),
        version,
        expires,
        targets: BTreeMap::new(),
        delegations: Some(Delegations {
            keys: BTreeMap::from([(keyid.clone(), key.clone())]),
            roles: None,
            succinct_roles: Some(SuccinctRoles {
                keyids: vec![keyid],
                threshold: NonZeroU64::MIN,
                bit_length: bits,
                name_prefix: like.name_prefix.clone(),
            }),
        }),
    }
}

/// The files to add and to drop, by the bin each hashes into.
#[allow(clippy::type_complexity)]
fn by_bin(
    s: &SuccinctRoles,
    add: &[LocalFile],
    remove: &[CpanPath],
) -> (
    BTreeMap<String, Vec<LocalFile>>,
    BTreeMap<String, Vec<CpanPath>>,
) {
    let mut adds: BTreeMap<String, Vec<LocalFile>> = BTreeMap::new();
    for f in add {
        adds.entry(s.role_for_target(f.path.as_str()))
            .or_default()
            .push(f.clone());
    }
    let mut removes: BTreeMap<String, Vec<CpanPath>> = BTreeMap::new();
    for p in remove {
        removes
            .entry(s.role_for_target(p.as_str()))
            .or_default()
            .push(p.clone());
    }
    (adds, removes)
}

fn next_version(role: &str, v: NonZeroU64) -> Result<NonZeroU64, AuthorError> {
    v.checked_add(1)
        .ok_or_else(|| AuthorError::Bins(format!("{role} has no next version")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpantuf_core::crypto::Ed25519Signer;
    use cpantuf_core::metadata::TargetFile;

    fn info(sha: &str) -> TargetFile {
        TargetFile {
            length: 3,
            hashes: BTreeMap::from([("sha256".to_owned(), sha.to_owned())]),
            custom: None,
        }
    }

    fn id() -> PauseId {
        "ETHER".parse().unwrap()
    }

    fn file(name: &str, sha: &str) -> LocalFile {
        LocalFile {
            path: CpanPath::new(&format!("authors/id/E/ET/ETHER/{name}")).unwrap(),
            info: info(sha),
        }
    }

    fn flat(n: usize) -> AuthorRole {
        let targets = (0..n)
            .map(|i| (format!("authors/id/E/ET/ETHER/D-{i}.tar.gz"), info("aa")))
            .collect();
        AuthorRole {
            name: CpanRole::Author(id()).name(),
            targets: Targets {
                spec_version: "1.0.31".into(),
                version: NonZeroU64::new(3).unwrap(),
                expires: Utc::now(),
                targets,
                delegations: None,
            },
            keyids: Vec::new(),
            bins: BTreeMap::new(),
            versions: BTreeMap::new(),
        }
    }

    /// `flat(n)` split by `key` into 4 bins, as published.
    fn split_role(n: usize, key: &Key) -> AuthorRole {
        let flat = flat(n);
        let c = Change {
            add: &[],
            remove: &[],
            expires: Utc::now(),
            everything: true,
        };
        let mut roles = split(&id(), &flat, key, 2, &c).unwrap().into_iter();
        let (name, targets) = roles.next().unwrap();
        AuthorRole {
            name,
            targets,
            keyids: vec![compute_keyid(key)],
            bins: roles.collect(),
            versions: BTreeMap::new(),
        }
    }

    #[test]
    fn splitting_puts_each_file_in_the_bin_it_hashes_into() {
        let key = Ed25519Signer::from_seed(&[3; 32]);
        let role = split_role(40, key.public_key());
        assert_eq!(role.targets.version.get(), 4);
        assert!(role.targets.targets.is_empty());
        assert_eq!(role.bins.len(), 4);
        let s = role
            .targets
            .delegations
            .as_ref()
            .unwrap()
            .succinct_roles
            .as_ref()
            .unwrap();
        let mut n = 0;
        for (bin, t) in &role.bins {
            for path in t.targets.keys() {
                assert_eq!(&s.role_for_target(path), bin);
                n += 1;
            }
        }
        assert_eq!(n, 40);
    }

    #[test]
    fn a_release_re_signs_only_the_bin_its_file_hashes_into() {
        let key = Ed25519Signer::from_seed(&[3; 32]);
        let role = split_role(40, key.public_key());
        let new = [file("New-1.tar.gz", "bb")];
        let c = Change {
            add: &new,
            remove: &[],
            expires: Utc::now(),
            everything: false,
        };
        let roles = next_split(&role, key.public_key(), &c).unwrap();
        assert_eq!(roles.len(), 1, "one bin, not the role");
        let (bin, t) = &roles[0];
        assert!(t.targets.contains_key(new[0].path.as_str()));
        assert_eq!(t.version.get(), role.bins[bin].version.get() + 1);
    }

    #[test]
    fn a_new_key_signs_the_role_and_every_bin() {
        let old = Ed25519Signer::from_seed(&[3; 32]);
        let new = Ed25519Signer::from_seed(&[4; 32]);
        let role = split_role(40, old.public_key());
        let c = Change {
            add: &[],
            remove: &[],
            expires: Utc::now(),
            everything: false,
        };
        let roles = next_split(&role, new.public_key(), &c).unwrap();
        assert_eq!(roles.len(), 5);
        let s = roles[0]
            .1
            .delegations
            .as_ref()
            .unwrap()
            .succinct_roles
            .as_ref()
            .unwrap();
        assert_eq!(s.keyids, [new.keyid().clone()]);
    }

    #[test]
    fn bins_beyond_the_limit_are_refused() {
        let key = Ed25519Signer::from_seed(&[3; 32]);
        let c = Change {
            add: &[],
            remove: &[],
            expires: Utc::now(),
            everything: true,
        };
        let bits = MAX_AUTHOR_BIN_BITS + 1;
        assert!(split(&id(), &flat(3), key.public_key(), bits, &c).is_err());
        assert!(split(&id(), &flat(3), key.public_key(), 0, &c).is_err());
    }
}
