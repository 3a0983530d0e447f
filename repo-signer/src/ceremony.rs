//! What a new root changes, for the people who sign it.
//!
//! A root signature hands out every top-level key, so a key holder must see
//! what they sign: which keys each role gains and loses, each threshold old
//! -> new, the version and the expiry. `root prepare` prints this review and
//! `root sign` prints it again on each holder's machine, against the root
//! that holder trusts. A lowered threshold is flagged wherever it appears.

use cpantuf_core::metadata::{expiry, KeyId, Root};
use std::fmt;
use std::num::NonZeroU64;

/// The top-level roles, in the order a review lists them.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// One top-level role's keys and threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleSide {
    /// Key ids allowed to sign.
    pub keyids: Vec<KeyId>,
    /// Distinct keys needed.
    pub threshold: NonZeroU64,
}

/// One role in a review: as the trusted root has it (if known) and as the
/// new root has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleChange {
    /// `root`, `targets`, `snapshot` or `timestamp`.
    pub role: &'static str,
    /// In the trusted (current) root; `None` when there is none to compare.
    pub old: Option<RoleSide>,
    /// In the new root.
    pub new: RoleSide,
}

impl RoleChange {
    /// Whether the new root needs fewer signatures for this role.
    pub fn lowered(&self) -> bool {
        self.old
            .as_ref()
            .is_some_and(|o| self.new.threshold < o.threshold)
    }

    fn unchanged(&self) -> bool {
        self.old.as_ref() == Some(&self.new)
    }
}

/// A new root, compared with the root its signers trust.
#[derive(Clone, Debug)]
pub struct RootReview {
    /// The trusted root's version and expiry, if one was given.
    pub old: Option<(NonZeroU64, chrono::DateTime<chrono::Utc>)>,
    /// The new root's version and expiry.
    pub new: (NonZeroU64, chrono::DateTime<chrono::Utc>),
    /// Every top-level role.
    pub roles: Vec<RoleChange>,
}

fn side(root: &Root, role: &str) -> Option<RoleSide> {
    root.roles.get(role).map(|r| RoleSide {
        keyids: r.keyids.clone(),
        threshold: r.threshold,
    })
}

impl RootReview {
    /// The review of `new` against `old` (the trusted root), or of `new`
    /// alone.
    pub fn between(old: Option<&Root>, new: &Root) -> Self {
        let roles = TOP_LEVEL_ROLES
            .iter()
            .filter_map(|&role| {
                Some(RoleChange {
                    role,
                    old: old.and_then(|o| side(o, role)),
                    new: side(new, role)?,
                })
            })
            .collect();
        RootReview {
            old: old.map(|o| (o.version, o.expires)),
            new: (new.version, new.expires),
            roles,
        }
    }

    /// The roles whose threshold the new root lowers.
    pub fn lowered(&self) -> impl Iterator<Item = &RoleChange> {
        self.roles.iter().filter(|r| r.lowered())
    }
}

impl fmt::Display for RootReview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (v, exp) = self.new;
        match self.old {
            Some((ov, oexp)) => writeln!(
                f,
                "root version {ov} -> {v}, expires {} (was {})",
                expiry::format(&exp),
                expiry::format(&oexp)
            )?,
            None => writeln!(
                f,
                "root version {v}, expires {} (no trusted root given to compare with)",
                expiry::format(&exp)
            )?,
        }
        for r in &self.roles {
            write_role(f, r)?;
        }
        Ok(())
    }
}

/// `ROLE: threshold A -> B, N keys` and one line per key: `+` added, `-`
/// removed, `=` kept; or `ROLE: unchanged (...)`.
fn write_role(f: &mut fmt::Formatter<'_>, r: &RoleChange) -> fmt::Result {
    let n = r.new.keyids.len();
    let keys = if n == 1 { "key" } else { "keys" };
    let t = r.new.threshold;
    let Some(old) = &r.old else {
        writeln!(f, "{}: threshold {t}, {n} {keys}", r.role)?;
        return r.new.keyids.iter().try_for_each(|k| writeln!(f, "  {k}"));
    };
    if r.unchanged() {
        return writeln!(f, "{}: unchanged (threshold {t}, {n} {keys})", r.role);
    }
    let flag = if r.lowered() { " (LOWERED)" } else { "" };
    writeln!(
        f,
        "{}: threshold {} -> {t}{flag}, {n} {keys}",
        r.role, old.threshold
    )?;
    for k in &r.new.keyids {
        let mark = if old.keyids.contains(k) { '=' } else { '+' };
        writeln!(f, "  {mark} {k}")?;
    }
    for k in old.keyids.iter().filter(|k| !r.new.keyids.contains(k)) {
        writeln!(f, "  - {k}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build;
    use cpantuf_core::crypto::Ed25519Signer;

    fn root(threshold: u64, seeds: &[u8]) -> Root {
        let keys: Vec<_> = seeds
            .iter()
            .map(|s| Ed25519Signer::from_seed(&[*s; 32]).public_key().clone())
            .collect();
        let t = NonZeroU64::new(threshold).unwrap();
        let one = (keys[..1].to_vec(), NonZeroU64::MIN);
        let k = build::TopLevelKeys {
            root: (keys.clone(), t),
            targets: one.clone(),
            snapshot: one.clone(),
            timestamp: one,
        };
        build::root(NonZeroU64::MIN, chrono::Utc::now(), &k)
    }

    /// Every key added, removed and kept is listed, and only a lowered
    /// threshold is flagged.
    #[test]
    fn a_review_lists_each_key_change_and_flags_a_lowered_threshold() {
        let old = root(2, &[1, 2, 3]);
        let new = root(1, &[1, 2, 4]);
        let review = RootReview::between(Some(&old), &new);
        let text = review.to_string();
        let id = |s: u8| Ed25519Signer::from_seed(&[s; 32]).keyid().clone();
        assert!(
            text.contains("root: threshold 2 -> 1 (LOWERED), 3 keys"),
            "{text}"
        );
        assert!(text.contains(&format!("  + {}", id(4))), "{text}");
        assert!(text.contains(&format!("  - {}", id(3))), "{text}");
        assert!(text.contains(&format!("  = {}", id(1))), "{text}");
        assert!(
            text.contains("targets: unchanged (threshold 1, 1 key)"),
            "{text}"
        );
        assert_eq!(
            review.lowered().map(|r| r.role).collect::<Vec<_>>(),
            ["root"]
        );
        let same = RootReview::between(Some(&old), &root(3, &[1, 2, 3]));
        assert_eq!(same.lowered().count(), 0);
        assert!(same.to_string().contains("root: threshold 2 -> 3, 3 keys"));
    }
}
