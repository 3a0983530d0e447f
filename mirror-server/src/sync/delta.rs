//! What changed upstream since the served state, planned from the verified timestamp and
//! snapshot in O(changes), for `in_place` to apply.
//!
//! The served state's record (`unchanged::Record`) keeps every targets role it serves with
//! its version, the role whose keys verified it and its expiry. A role whose snapshot entry
//! is the same as then, whose delegator is unchanged and which has not expired since, would
//! verify the same way again: it is not read. Every other role is verified through the chain
//! of delegators above it ([`workflow::load_through`]: the core's checks, each role with its
//! delegator's keys):
//!
//! * a role whose snapshot entry changed; the paths whose entry differs from the version the
//!   state serves are searched again;
//! * a role a changed delegator now delegates to differently (new, other keys, threshold or
//!   paths): all of its paths are searched again, and every role it delegates to is planned
//!   in turn when it is new;
//! * a role no longer delegated to (with the roles below it, as recorded): its paths are
//!   searched again, and it is no longer served. When its delegation was terminating, no
//!   delegation searched after it may cover the paths it covered (CPAN's authors' directories
//!   are disjoint): otherwise the paths it blocked, which the state does not serve, could now
//!   surface from roles the plan does not read.
//!
//! Each path is searched from the top-level targets role ([`workflow::find_target_avoiding`]),
//! so the role allowed to speak for it decides, exactly as in a full sync. What the plan
//! cannot settle alone declines it, and a full sync builds a new state: a new root, a
//! withdrawn terminating delegation that may uncover other roles' paths, a reordered
//! delegation, a changed hash-bin layout, a role reached through two delegators, a role that
//! expired, was refused or blocks a search, an upstream without consistent snapshots, a state
//! without a record of its roles.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use anyhow::Context as _;
use chrono::Utc;
use cpantuf_client::urls::consistent_target_path;
use cpantuf_core::metadata::{DelegatedRole, Delegations, Snapshot, TargetFile, Targets};
use cpantuf_core::trusted::TrustedSet;
use cpantuf_core::workflow::{self, encode_role_name, Limits, Search};

use super::in_place::Served;
use super::unchanged::RoleRecord;
use super::Source;

/// What changes between the served state and the upstream's verified new version.
#[derive(Debug, Default)]
pub struct Delta {
    /// Roles verified for the new version: (role, the version the state serves, if any).
    pub roles: Vec<(String, Option<u64>)>,
    /// Roles the state serves that the new version no longer delegates to: (role, version).
    pub orphans: Vec<(String, u64)>,
    /// Paths whose served info changes: the new info, or `None` when no longer served.
    pub targets: BTreeMap<String, Option<TargetFile>>,
}

/// Why the change cannot be applied in place (a full sync follows).
pub type Declined = String;

/// A role to verify for the new version.
struct Planned {
    /// The roles that delegate down to it, from the top-level targets role.
    chain: Vec<String>,
    /// The version the state serves, if it serves the role.
    old: Option<u64>,
    /// Whether every path it lists (now or before) must be searched again, not only the
    /// changed ones: its delegation changed.
    whole: bool,
}

/// Plans the change from the verified timestamp and snapshot in `trusted`.
pub fn plan(
    served: &Served<'_>,
    trusted: &mut TrustedSet,
    src: &mut Source<'_>,
    limits: &Limits,
) -> anyhow::Result<Result<Delta, Declined>> {
    let record = &served.record;
    if !trusted.root().consistent_snapshot {
        return Ok(Err("the upstream does not use consistent snapshots".into()));
    }
    if record.root_version() != trusted.root().version.get() {
        return Ok(Err("a new root version".into()));
    }
    if record.roles.is_empty() {
        return Ok(Err("the served state has no record of its roles".into()));
    }
    let old_name = format!("{}.snapshot.json", record.snapshot().version);
    let Some(old) = served.metadata::<Snapshot>(&old_name) else {
        return Ok(Err(format!("the served state has no {old_name}")));
    };
    let new = trusted
        .snapshot()
        .context("no snapshot after refresh")?
        .clone();
    let mut planner = Planner {
        served,
        pending: BTreeMap::new(),
        done: BTreeSet::new(),
        paths: BTreeSet::new(),
        scopes: Vec::new(),
        reshaped: false,
        delta: Delta::default(),
    };
    let planned = changed_roles(&old, &new, &record.roles)
        .and_then(|changed| planner.queue_changed(changed))
        .and_then(|()| planner.verify_all(trusted, src, limits))
        .and_then(|()| planner.orphans(trusted));
    if let Err(why) = planned {
        return Ok(Err(why));
    }
    planner.settle_all(trusted, src, limits)
}

/// The roles whose snapshot entry differs between `old` and `new` and that the state serves,
/// with the version it serves; declined when an unchanged one has expired since.
fn changed_roles(
    old: &Snapshot,
    new: &Snapshot,
    roles: &BTreeMap<String, RoleRecord>,
) -> Result<Vec<(String, u64)>, Declined> {
    let now = Utc::now().timestamp();
    let mut changed = Vec::new();
    for (role, r) in roles {
        let name = format!("{role}.json");
        match (old.meta.get(&name), new.meta.get(&name)) {
            (Some(before), Some(after)) if before == after && r.expires <= now => {
                return Err(format!("role {role} has expired since the last sync"))
            }
            (Some(before), Some(after)) if before == after => {}
            (_, Some(_)) => changed.push((role.clone(), r.version)),
            (_, None) => return Err(format!("the snapshot no longer lists {role}")),
        }
    }
    Ok(changed)
}

struct Planner<'a, 'b> {
    served: &'a Served<'b>,
    /// Roles still to verify.
    pending: BTreeMap<String, Planned>,
    /// Roles verified.
    done: BTreeSet<String>,
    /// Paths to search again.
    paths: BTreeSet<String>,
    /// New or changed terminating delegations: every served path they cover is searched
    /// again.
    scopes: Vec<DelegatedRole>,
    /// Whether some verified role delegates differently than the served version did (only
    /// then can a served role be cut off).
    reshaped: bool,
    delta: Delta,
}

impl Planner<'_, '_> {
    fn queue_changed(&mut self, changed: Vec<(String, u64)>) -> Result<(), Declined> {
        for (role, old) in changed {
            let chain = delegators(&self.served.record.roles, &role)?;
            let old = Some(old);
            let whole = false;
            self.pending.insert(role, Planned { chain, old, whole });
        }
        Ok(())
    }

    /// Verifies the pending roles, delegators before the roles below them.
    fn verify_all(
        &mut self,
        trusted: &mut TrustedSet,
        src: &mut Source<'_>,
        limits: &Limits,
    ) -> Result<(), Declined> {
        while let Some(role) = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.chain.len())
            .map(|(r, _)| r.clone())
        {
            let planned = self.pending.remove(&role).expect("just found");
            self.verify(trusted, src, limits, &role, planned)?;
        }
        Ok(())
    }

    /// Verifies one role's new version and plans what it changes.
    fn verify(
        &mut self,
        trusted: &mut TrustedSet,
        src: &mut Source<'_>,
        limits: &Limits,
        role: &str,
        planned: Planned,
    ) -> Result<(), Declined> {
        let chain: Vec<&str> = planned.chain.iter().map(String::as_str).collect();
        workflow::load_through(trusted, src, limits, &chain, role)
            .map_err(|e| format!("role {role}: {e}"))?;
        let old = match planned.old {
            Some(v) => Some(self.served_role(role, v)?),
            None => None,
        };
        let new = trusted.targets(role).expect("loaded just now");
        self.paths
            .extend(changed_paths(old.as_ref(), new, planned.whole));
        let (before, after) = (old.and_then(|o| o.delegations), new.delegations.clone());
        let mut chain = planned.chain;
        chain.push(role.to_owned());
        self.delegations_changed(trusted, role, &chain, before.as_ref(), after.as_ref())?;
        self.done.insert(role.to_owned());
        self.delta.roles.push((role.to_owned(), planned.old));
        Ok(())
    }

    /// The version `version` of `role` the state serves.
    fn served_role(&self, role: &str, version: u64) -> Result<Targets, Declined> {
        let name = format!("{version}.{}.json", encode_role_name(role));
        self.served
            .metadata(&name)
            .ok_or_else(|| format!("the served state has no {name}"))
    }

    /// Plans the roles `role` (reached through `chain`, which ends with it) now delegates to
    /// differently.
    fn delegations_changed(
        &mut self,
        trusted: &TrustedSet,
        role: &str,
        chain: &[String],
        before: Option<&Delegations>,
        after: Option<&Delegations>,
    ) -> Result<(), Declined> {
        if before == after {
            return Ok(());
        }
        self.reshaped = true;
        let succinct = |d: Option<&Delegations>| d.and_then(|d| d.succinct_roles.clone());
        match (succinct(before), succinct(after)) {
            (None, None) => {}
            (None, Some(s)) if before.is_none() => {
                for bin in s.bin_names() {
                    self.queue_delegated(role, chain, &bin)?;
                }
            }
            (b, a) if b == a => {}
            _ => return Err(format!("role {role} changed its hash bins")),
        }
        let entries = |d: Option<&Delegations>| -> Vec<DelegatedRole> {
            d.and_then(|d| d.roles.clone()).unwrap_or_default()
        };
        let (before, after) = (entries(before), entries(after));
        let same = |e: &DelegatedRole, other: &[DelegatedRole]| other.iter().any(|o| o == e);
        let kept_before: Vec<&str> = before
            .iter()
            .filter(|e| same(e, &after))
            .map(|e| e.name.as_str())
            .collect();
        let kept_after: Vec<&str> = after
            .iter()
            .filter(|e| same(e, &before))
            .map(|e| e.name.as_str())
            .collect();
        if kept_before != kept_after {
            return Err(format!("role {role} reordered its delegations"));
        }
        for e in before.iter().filter(|e| e.terminating && !same(e, &after)) {
            let now = after.iter().find(|a| a.name == e.name);
            if !now.is_some_and(|a| same_scope(a, e)) {
                uncovers_nothing(trusted, chain, e)?;
            }
        }
        for e in after.iter().filter(|e| !same(e, &before)) {
            self.queue_delegated(role, chain, &e.name)?;
            if e.terminating {
                // It may now end the search for paths other roles list.
                self.scopes.push(e.clone());
            }
        }
        Ok(())
    }

    /// Plans `child`, which `role` (at the end of `chain`) delegates to anew or differently:
    /// every path it lists is searched again.
    fn queue_delegated(
        &mut self,
        role: &str,
        chain: &[String],
        child: &str,
    ) -> Result<(), Declined> {
        let recorded = self.served.record.roles.get(child);
        if recorded.is_some_and(|r| r.delegator != role) || self.done.contains(child) {
            return Err(format!(
                "role {child} is reached through another delegator too"
            ));
        }
        let old = recorded.map(|r| r.version);
        let planned = self.pending.entry(child.to_owned()).or_insert(Planned {
            chain: chain.to_vec(),
            old,
            whole: true,
        });
        planned.whole = true;
        Ok(())
    }

    /// The roles the state serves that the new version no longer delegates to (no longer
    /// named by their delegator, or below such a role): their paths are searched again.
    fn orphans(&mut self, trusted: &TrustedSet) -> Result<(), Declined> {
        if !self.reshaped {
            return Ok(()); // no verified role delegates differently: nothing is cut off
        }
        let roles = &self.served.record.roles;
        for (role, r) in roles {
            if self.done.contains(role) || !self.cut_off(trusted, role)? {
                continue;
            }
            let old = self.served_role(role, r.version)?;
            self.paths.extend(old.targets.keys().cloned());
            self.delta.orphans.push((role.clone(), r.version));
        }
        Ok(())
    }

    /// Whether the nearest role above `role` (as recorded) that this plan verified anew no
    /// longer delegates to the next role down. The roles in between are unchanged, so their
    /// delegations are too: that delegator alone decides whether `role` is still reached.
    fn cut_off(&self, trusted: &TrustedSet, role: &str) -> Result<bool, Declined> {
        let mut below = role;
        for delegator in delegators(&self.served.record.roles, role)?.iter().rev() {
            if self.done.contains(delegator) {
                return Ok(!delegates_now(trusted, delegator, below));
            }
            below = delegator;
        }
        Ok(false)
    }

    /// Searches every planned path again and keeps those whose served info changes.
    fn settle_all(
        mut self,
        trusted: &mut TrustedSet,
        src: &mut Source<'_>,
        limits: &Limits,
    ) -> anyhow::Result<Result<Delta, Declined>> {
        let manifest = &self.served.manifest.targets;
        for e in &self.scopes {
            self.paths.extend(covered(manifest, e));
        }
        for path in std::mem::take(&mut self.paths) {
            let info = match settle(trusted, src, limits, &path)? {
                Ok(info) => info,
                Err(why) => return Ok(Err(why)),
            };
            if manifest.get(&path) == info.as_ref() {
                continue;
            }
            if info
                .as_ref()
                .is_some_and(|i| consistent_target_path(&path, i).is_none())
            {
                return Ok(Err(format!(
                    "{path} is signed without a SHA-256 to name its twin"
                )));
            }
            self.delta.targets.insert(path, info);
        }
        Ok(Ok(self.delta))
    }
}

/// Checks that withdrawing or narrowing `e`, a terminating delegation of the last role in
/// `chain`, lets no search reach a role it blocked before: no delegation searched after it
/// (in its delegator, then in each delegator above, up to a terminating one) may cover a path
/// `e` covered. Otherwise a path no role served may now be served, and finding it would take
/// every later role's list: declined.
fn uncovers_nothing(
    trusted: &TrustedSet,
    chain: &[String],
    e: &DelegatedRole,
) -> Result<(), Declined> {
    let declined = || {
        format!(
            "a withdrawn or narrowed terminating delegation to {} may uncover paths other roles list",
            e.name
        )
    };
    let delegations = |role: &str| trusted.targets(role).and_then(|t| t.delegations.as_ref());
    let mut after = e.name.as_str();
    for (level, holder) in chain.iter().enumerate().rev() {
        if let Some(d) = delegations(holder) {
            if d.succinct_roles.is_some() {
                return Err(declined());
            }
            let entries = d.roles.as_deref().unwrap_or_default();
            let from = entries
                .iter()
                .position(|x| x.name == after)
                .map_or(0, |i| i + 1);
            if entries[from..]
                .iter()
                .any(|x| x.name != e.name && x.may_overlap(e))
            {
                return Err(declined());
            }
        }
        let Some(delegator) = level.checked_sub(1).map(|l| chain[l].as_str()) else {
            break;
        };
        let entry = delegations(delegator)
            .and_then(|d| d.roles.as_ref())
            .and_then(|r| r.iter().find(|x| x.name == *holder));
        match entry {
            Some(entry) if entry.terminating => break,
            Some(_) => after = holder,
            None => return Err(declined()),
        }
    }
    Ok(())
}

/// Whether two delegations give the same paths the same way (keys and threshold aside).
fn same_scope(a: &DelegatedRole, b: &DelegatedRole) -> bool {
    a.paths == b.paths
        && a.path_hash_prefixes == b.path_hash_prefixes
        && a.terminating == b.terminating
}

/// The served paths delegation `e` covers, found through the literal start of each pattern
/// (a CPAN author's `authors/id/A/AB/AUTHOR/*`) rather than by testing every path.
fn covered(manifest: &BTreeMap<String, TargetFile>, e: &DelegatedRole) -> Vec<String> {
    let Some(patterns) = &e.paths else {
        return manifest.keys().filter(|p| e.covers(p)).cloned().collect();
    };
    let mut out = Vec::new();
    for pattern in patterns {
        let literal = pattern
            .find(['*', '?', '[', '\\'])
            .map_or(pattern.as_str(), |i| &pattern[..i]);
        let from = manifest.range::<str, _>((
            std::ops::Bound::Included(literal),
            std::ops::Bound::Unbounded,
        ));
        out.extend(
            from.map(|(p, _)| p)
                .take_while(|p| p.starts_with(literal))
                .filter(|p| e.covers(p))
                .cloned(),
        );
    }
    out
}

/// Whether the new version of `delegator` (loaded in `trusted`) delegates to `role`.
fn delegates_now(trusted: &TrustedSet, delegator: &str, role: &str) -> bool {
    trusted
        .targets(delegator)
        .and_then(|t| t.delegations.as_ref())
        .is_some_and(|d| d.authority_for(role).is_some())
}

/// The paths of a role to search again: those whose entry differs between the version the
/// state serves (`old`) and the new one, or all of both when `whole`.
fn changed_paths(old: Option<&Targets>, new: &Targets, whole: bool) -> Vec<String> {
    let empty = BTreeMap::new();
    let before = old.map_or(&empty, |o| &o.targets);
    let mut paths: Vec<String> = new
        .targets
        .iter()
        .filter(|(p, info)| whole || before.get(*p) != Some(*info))
        .map(|(p, _)| p.clone())
        .collect();
    paths.extend(
        before
            .keys()
            .filter(|p| whole || !new.targets.contains_key(*p))
            .cloned(),
    );
    paths
}

/// The roles that delegate down to `role`, from the top-level targets role, as recorded.
fn delegators(roles: &BTreeMap<String, RoleRecord>, role: &str) -> Result<Vec<String>, Declined> {
    let mut chain = Vec::new();
    let mut at = role;
    while at != "targets" {
        let r = roles
            .get(at)
            .ok_or_else(|| format!("no record of role {at}"))?;
        if chain.len() > 64 || r.delegator == "root" {
            return Err(format!("no delegation chain recorded for role {role}"));
        }
        chain.push(r.delegator.clone());
        at = &r.delegator;
    }
    chain.reverse();
    Ok(chain)
}

/// What the state serves for `path` now: the info of the role the delegation search (spec
/// 5.7) finds allowed to speak for it, or `None`.
fn settle(
    trusted: &mut TrustedSet,
    src: &mut Source<'_>,
    limits: &Limits,
    path: &str,
) -> anyhow::Result<Result<Option<TargetFile>, Declined>> {
    let none = HashSet::new();
    Ok(
        match workflow::find_target_avoiding(trusted, src, limits, path, &none)? {
            Search::Found(found) => Ok(super::plan::mirrorable(found)),
            Search::NotFound => Ok(None),
            Search::Blocked { role } => Err(format!("the search for {path} stops at {role}")),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(delegator: &str) -> RoleRecord {
        RoleRecord {
            version: 1,
            delegator: delegator.into(),
            expires: i64::MAX,
        }
    }

    #[test]
    fn the_delegation_chain_is_read_from_the_record() {
        let roles = BTreeMap::from([
            ("targets".to_string(), role("root")),
            ("prefix-A".to_string(), role("targets")),
            ("author-A".to_string(), role("prefix-A")),
        ]);
        assert_eq!(
            delegators(&roles, "author-A").unwrap(),
            ["targets", "prefix-A"]
        );
        assert!(delegators(&roles, "targets").unwrap().is_empty());
        assert!(delegators(&roles, "author-B").is_err());
    }

    #[test]
    fn a_cycle_in_a_recorded_chain_declines_rather_than_loops() {
        let roles = BTreeMap::from([("a".to_string(), role("b")), ("b".to_string(), role("a"))]);
        assert!(delegators(&roles, "a").is_err());
    }
}
