//! How cpantuf reports a failure: one line that names the party at fault,
//! and an exit status a script can tell apart.
//!
//! The error types say what went wrong; [`Fault`] says whose it is. A
//! refusal by verification (an attack, or a stale or broken mirror) is
//! never reported as a network failure, and a full disk never as a mirror's
//! fault: scripts retry the one, page someone for the other.

use std::error::Error;

/// Whose failure it is, and the exit status that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Verification refused what a mirror served: an attack, or a stale or
    /// broken mirror. Exit 1.
    Refused,
    /// The command line (or `cpantuf init` not run yet). Exit 2, as clap's
    /// own usage errors.
    Usage,
    /// No mirror could be reached or answered (network, HTTP errors,
    /// timeouts). Exit 3.
    Mirror,
    /// The module or file is not on CPAN: no signed metadata lists it. Exit 4.
    NotFound,
    /// This machine: the disk, the client home, the configuration. Exit 5.
    Local,
}

impl Fault {
    /// The process exit status for this fault.
    pub fn exit_code(self) -> i32 {
        match self {
            Fault::Refused => 1,
            Fault::Usage => 2,
            Fault::Mirror => 3,
            Fault::NotFound => 4,
            Fault::Local => 5,
        }
    }

    /// The word that leads the error line.
    pub fn label(self) -> &'static str {
        match self {
            Fault::Refused => "refused",
            Fault::Usage => "usage",
            Fault::Mirror => "mirror",
            Fault::NotFound => "not found",
            Fault::Local => "local",
        }
    }
}

/// The exit statuses, for every command's `--help`.
pub const EXIT_STATUS_HELP: &str =
    "Exit status: 0 success; 1 refused by verification (an attack, or a stale or \
broken mirror); 2 usage (or the client home is not initialised); 3 no mirror could be reached or \
answered (network, HTTP, timeout); 4 not found (no such module or file on CPAN); 5 local error \
(disk, client home, configuration). install, carton and cpan end with the CPAN client's own \
status when it failed and cpantuf refused nothing.";

/// An error and its causes as one line: each cause is added only when the
/// text so far does not already say it (error types that print their
/// source and also return it from `source()` would otherwise repeat it).
pub fn one_line(e: &(dyn Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("locking {what}: {source}")]
    struct Wraps {
        what: &'static str,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("refreshing")]
    struct Outer(#[source] Wraps);

    /// `clearing old metadata: Read-only file system (os error 30): Read-only
    /// file system (os error 30)` was printed for an error that both shows
    /// and returns its source.
    #[test]
    fn a_cause_the_message_already_shows_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(30);
        let e = Outer(Wraps {
            what: "metadata",
            source: io,
        });
        let line = one_line(&e);
        assert_eq!(line.matches("os error 30").count(), 1, "{line}");
        assert!(line.starts_with("refreshing: locking metadata: "), "{line}");
    }

    #[test]
    fn exit_codes_are_distinct() {
        let all = [
            Fault::Refused,
            Fault::Usage,
            Fault::Mirror,
            Fault::NotFound,
            Fault::Local,
        ];
        let mut codes: Vec<i32> = all.iter().map(|f| f.exit_code()).collect();
        codes.dedup();
        assert_eq!(codes, vec![1, 2, 3, 4, 5]);
    }
}
