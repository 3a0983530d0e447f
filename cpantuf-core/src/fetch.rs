//! What fetching bytes can fail with, seen by the client state machine.
//!
//! [`FetchError`] is what a caller's metadata source reports
//! ([`crate::workflow::MetadataSource`]) and what
//! [`crate::trusted::UpdateError::Fetch`] carries. It lives below both
//! modules so that neither imports the other for it. This module does no
//! I/O: the source that fetches is the caller's.

use std::fmt;

/// What went wrong fetching bytes.
#[derive(Debug)]
pub enum FetchError {
    /// The server answered 403 or 404.
    NotFound,
    /// Another HTTP status.
    Status(u16),
    /// The response was larger than allowed (endless data).
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The server was too slow (slow retrieval).
    Timeout(String),
    /// Connection, TLS, or local I/O failure.
    Transport(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::NotFound => f.write_str("not found (HTTP 404/403)"),
            FetchError::Status(s) => write!(f, "HTTP status {s}"),
            FetchError::TooLarge { limit } => {
                write!(
                    f,
                    "response exceeds {limit} bytes: endless-data attack refused"
                )
            }
            FetchError::Timeout(why) => {
                write!(f, "too slow: {why} (slow-retrieval attack or dead mirror)")
            }
            FetchError::Transport(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Transport(e) => Some(&**e),
            _ => None,
        }
    }
}
