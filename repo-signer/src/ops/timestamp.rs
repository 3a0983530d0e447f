//! `timestamp`: a fresh timestamp for the current snapshot.

use super::context::Ctx;
use crate::build;
use crate::publish::{self, Publication};
use crate::signed::{self, SignedFile};
use crate::state::version_after;
use crate::RepoError;
use cpantuf_core::metadata::Timestamp;
use cpantuf_core::verify::Authority;

/// Signs a fresh timestamp for the current snapshot (cron).
pub fn timestamp(ctx: &Ctx) -> Result<SignedFile, RepoError> {
    let _lock = ctx.mirror.lock()?;
    let state = ctx.state()?;
    let cur = state.current()?;
    let root = state.root.unverified();
    let old = cur.timestamp.unverified();
    let ts = build::timestamp(
        version_after("timestamp", old.version)?,
        ctx.expires(ctx.cfg.expiry.timestamp_hours),
        cur.snapshot_version(),
        &cur.snapshot_bytes,
    );
    let f = signed::sign("timestamp", &ts, &ctx.top_signers(root, "timestamp")?);
    signed::check::<Timestamp>(&f, Authority::of_root(root, "timestamp"))?;
    let publication = Publication {
        timestamp: Some(f.clone()),
        ..Default::default()
    };
    publish::write(&ctx.mirror, &publication, ctx.cfg.fsync, &|| {})?;
    Ok(f)
}
