//! When each mirror last answered, and how it last failed, for
//! `cpantuf status`.
//!
//! This record is advisory: it is shown to people and scripts, never read
//! by a trust decision. A missing or damaged file reads as empty, and a
//! failure to write it only costs a debug line (a read-only home still
//! reports its real failure through the command that hit it).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What is known of one mirror.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorRecord {
    /// When it last served metadata or a file that passed verification
    /// (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_answered: Option<String>,
    /// When it last failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failed: Option<String>,
    /// How it last failed, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The records of every mirror a home has used, by URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorLog {
    /// Mirror URL → record.
    pub mirrors: BTreeMap<String, MirrorRecord>,
}

fn path(home: &Path) -> PathBuf {
    home.join("mirrors.json")
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// When `t` (as recorded) was, if it parses.
pub fn parse_time(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl MirrorLog {
    /// The record of `home` (empty when there is none or it is damaged).
    pub fn read(home: &Path) -> MirrorLog {
        std::fs::read(path(home))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Notes that `answered` (if any) answered now and each of `failed`
    /// failed now with its message, and saves the record atomically.
    pub fn note(home: &Path, answered: Option<&str>, failed: &[(String, String)]) {
        let mut log = MirrorLog::read(home);
        let when = now();
        for (mirror, why) in failed {
            let r = log.mirrors.entry(mirror.clone()).or_default();
            r.last_failed = Some(when.clone());
            r.last_error = Some(why.clone());
        }
        if let Some(m) = answered {
            log.mirrors.entry(m.to_owned()).or_default().last_answered = Some(when);
        }
        if let Err(e) = log.save(home) {
            tracing::debug!("not recording when the mirrors answered: {e}");
        }
    }

    fn save(&self, home: &Path) -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(home)?;
        serde_json::to_writer_pretty(&mut tmp, self)?;
        tmp.persist(path(home)).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mirror_that_answered_after_failing_keeps_both_times() {
        let home = tempfile::tempdir().unwrap();
        MirrorLog::note(
            home.path(),
            None,
            &[("https://a/".into(), "cannot reach the mirror".into())],
        );
        MirrorLog::note(home.path(), Some("https://a/"), &[]);
        let r = &MirrorLog::read(home.path()).mirrors["https://a/"];
        assert!(r.last_answered.as_deref().and_then(parse_time).is_some());
        assert!(r.last_failed.is_some());
        assert_eq!(r.last_error.as_deref(), Some("cannot reach the mirror"));
    }

    #[test]
    fn a_damaged_record_reads_as_empty() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("mirrors.json"), b"{not json").unwrap();
        assert_eq!(MirrorLog::read(home.path()), MirrorLog::default());
    }
}
