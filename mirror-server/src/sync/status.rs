//! `DEST/.sync/status.json`: when the sync last succeeded and what it serves, for `serve`'s
//! `cpantuf_mirror_last_sync_success_timestamp_seconds` and for administrators' scripts.
//!
//! Written after each successful sync (published or already up to date), by rename, so a
//! reader never sees half a file. It is a report, not a trust input: nothing reads it to
//! decide what to serve or trust.

use std::path::Path;

use cpantuf_client::store::write_atomic;
use serde::Serialize;

use super::Outcome;

/// The status file, relative to `--dest`.
pub const FILE: &str = ".sync/status.json";

#[derive(Serialize)]
struct Status<'a> {
    /// RFC 3339, UTC.
    last_success: String,
    /// The state `current` names.
    state: &'a str,
    /// Whether this sync published a new state.
    published: bool,
    targets: usize,
}

/// Records a successful sync. A failure to write is logged, not fatal: the sync itself
/// succeeded and is served.
pub fn record(dest: &Path, outcome: &Outcome) {
    let status = Status {
        last_success: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        state: &outcome.state,
        published: outcome.published,
        targets: outcome.targets,
    };
    let path = dest.join(FILE);
    let written = serde_json::to_vec_pretty(&status)
        .map_err(std::io::Error::other)
        .and_then(|bytes| write_atomic(&path, &bytes));
    if let Err(e) = written {
        tracing::warn!(
            "could not write the sync status {}: {e} (local disk)",
            path.display()
        );
    }
}
