//! `index`: re-signing the index role after PAUSE rewrote its files.

use super::context::Ctx;
use super::snapshot::{publish_incremental, AddReport};
use crate::build;
use crate::mirror::FileEntry;
use crate::signed::{self, SignedFile};
use crate::state::PublishedState;
use crate::RepoError;
use cpantuf_core::cpan::{owner, CpanPath, CpanRole, Owner};
use std::collections::BTreeSet;
use std::num::NonZeroU64;

/// The index role with `updated` entries set and `removed` dropped (each
/// must be listed).
pub(super) fn index_update(
    ctx: &Ctx,
    state: &PublishedState,
    updated: &[FileEntry],
    removed: &[String],
) -> Result<SignedFile, RepoError> {
    let role = CpanRole::Index.name();
    let mut payload = match state.load_role(&role)? {
        Some((env, _)) => env.unverified().clone(),
        None => build::leaf_targets(NonZeroU64::MIN, ctx.now, []),
    };
    for r in removed {
        payload
            .targets
            .remove(r)
            .ok_or_else(|| RepoError::NotListed {
                path: r.clone(),
                role: role.clone(),
            })?;
    }
    payload.targets.extend(build::targets_of(updated));
    payload.version = state.next_version(&role)?;
    payload.expires = ctx.expires(ctx.cfg.expiry.index_hours);
    Ok(signed::sign(&role, &payload, &[ctx.key(&ctx.index_key)]))
}

/// Re-signs the index role after PAUSE rewrote its files: every file it
/// lists is hashed again (vanished ones are dropped), and new files in
/// `modules/` and directly in `authors/` are added.
pub fn index(ctx: &Ctx) -> Result<AddReport, RepoError> {
    let _lock = ctx.mirror.lock()?;
    let state = ctx.state()?;
    state.current()?;
    let listed: Vec<String> = state
        .load_role(&CpanRole::Index.name())?
        .map(|(e, _)| e.unverified().targets.keys().cloned().collect())
        .unwrap_or_default();
    let mut paths: BTreeSet<CpanPath> = BTreeSet::new();
    let mut removed = Vec::new();
    for p in listed {
        let cp = CpanPath::new(&p).map_err(|source| RepoError::BadPath {
            path: p.clone(),
            source,
        })?;
        if ctx.mirror.file(&cp).exists() {
            paths.insert(cp);
        } else {
            removed.push(p);
        }
    }
    for top in ["modules", "authors"] {
        let dir = ctx.mirror.root().join(top);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd {
            let entry = entry.map_err(RepoError::io(&dir))?;
            let ft = entry.file_type().map_err(RepoError::io(entry.path()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if ft.is_symlink() {
                return Err(RepoError::Symlink { path: entry.path() });
            }
            if ft.is_file() && !crate::mirror::is_signer_file(name) {
                let rel = format!("{top}/{name}");
                let cp = CpanPath::new(&rel).map_err(|source| RepoError::BadPath {
                    path: rel.clone(),
                    source,
                })?;
                paths.insert(cp);
            }
        }
    }
    let entries: Vec<FileEntry> = paths
        .into_iter()
        .map(|p| ctx.mirror.hash_file(p))
        .collect::<Result<_, _>>()?;
    for e in &entries {
        if owner(&e.path)? != Owner::Index {
            return Err(RepoError::NotOwnedBy {
                path: e.path.to_string(),
                owner: "an author".into(),
                role: "index".into(),
            });
        }
    }
    let f = index_update(ctx, &state, &entries, &removed)?;
    publish_incremental(ctx, state, vec![f], entries)
}
