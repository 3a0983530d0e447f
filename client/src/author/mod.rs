//! The author's side of "is this from AUTHOR?": an author who holds their own key signs
//! their role on their own machine, over the tarballs they built (ADR 0017).
//!
//! The role to extend is fetched through the TUF client ([`crate::session::Session::author_role`]),
//! so the author starts from what clients trust now, not from a file PAUSE handed over. The
//! new files are hashed from the author's local tarballs, so a tarball replaced on PAUSE's
//! side before publication no longer matches what the author signed, and PAUSE refuses it.
//!
//! One module per step: [`local`] hashes a local tarball into the entry for its CPAN path,
//! [`next`] builds the next version of the role (a release, a removal, a renewal),
//! [`bins`] does the same for a role split into hash bins (re-signing only the bins a
//! release touches), [`envelope`] signs it as the exact bytes to upload, and [`status`] compares what the
//! repository publishes with what the author signed and holds.

pub mod bins;
pub mod envelope;
pub mod local;
pub mod next;
pub mod status;

use cpantuf_core::cpan::CpanPath;

/// Why an author's command refused: each names what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    /// A file to sign is not one the author's role may list.
    #[error("{path}: {why}")]
    NotYours {
        /// The CPAN path it would have.
        path: String,
        /// Who owns it instead, or what is wrong with it.
        why: String,
    },
    /// A file already listed with other bytes: CPAN never replaces a released file.
    #[error(
        "{path} is already released with other bytes (sha256 {published}): CPAN never replaces \
         a released file; release it under a new version number"
    )]
    Replaces {
        /// The CPAN path.
        path: CpanPath,
        /// The published sha256.
        published: String,
    },
    /// `--remove` of a file the role does not list.
    #[error("{0} is not in your published role: nothing to remove")]
    NotListed(String),
    /// Hash bins that cannot be signed as asked.
    #[error("{0}")]
    Bins(String),
    /// The role is delegated to another key.
    #[error(
        "wrong key: {role} is delegated to key {published}, and this key is {given}; use the key \
         you claimed with, or `cpantuf author claim` to register a new one"
    )]
    WrongKey {
        /// The role.
        role: String,
        /// The key id the delegation names.
        published: String,
        /// The key id given.
        given: String,
    },
    /// The requested lifetime is out of bounds.
    #[error("{0}")]
    Lifetime(String),
    /// Local file trouble.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}
