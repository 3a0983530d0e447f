//! Errors of the signing side.

use cpantuf_core::cpan::{CpanPathError, OwnerError, PauseId, PauseIdError, RoleNameError};
use cpantuf_core::crypto::KeyFileError;
use cpantuf_core::metadata::{KeyId, MetadataError};
use cpantuf_core::verify::ThresholdError;
use std::num::NonZeroU64;
use std::path::PathBuf;

/// Why a signer operation stopped. Every variant means nothing was published
/// (or, for [`RepoError::Io`] during the write phase, that the previous state
/// is still the one `timestamp.json` points at).
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A symbolic link inside the mirror: it could make a signed path name
    /// bytes outside the mirror, so the signer refuses it.
    #[error("{}: symbolic links are not signed (a link can point outside the mirror)", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Neither a regular file nor a directory (a socket, a device, ...).
    #[error("{}: not a regular file", path.display())]
    NotAFile {
        /// The entry.
        path: PathBuf,
    },
    /// A path given on the command line is not inside the mirror.
    #[error("{}: outside the mirror directory {}", path.display(), mirror.display())]
    OutsideMirror {
        /// The path given.
        path: PathBuf,
        /// The mirror root.
        mirror: PathBuf,
    },
    /// A file name that is not a valid CPAN path (`..`, control characters,
    /// too long, ...).
    #[error("{path:?}: {source}")]
    BadPath {
        /// The name, as found.
        path: String,
        /// Why it is refused.
        #[source]
        source: CpanPathError,
    },
    /// A path that no role may sign (outside `authors/` and `modules/`, a
    /// bad PAUSE id, an author directory under the wrong prefix).
    #[error(transparent)]
    Owner(#[from] OwnerError),
    /// A string that should be a PAUSE id is not one.
    #[error("{input:?}: {source}")]
    BadPauseId {
        /// What was given.
        input: String,
        /// Why it is refused.
        #[source]
        source: PauseIdError,
    },
    /// A role name that is not a CPAN role.
    #[error("{name:?}: {source}")]
    BadRoleName {
        /// What was found.
        name: String,
        /// Why it is refused.
        #[source]
        source: RoleNameError,
    },
    /// A private key file could not be used.
    #[error("key file {}: {source}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong (format, passphrase).
        #[source]
        source: KeyFileError,
    },
    /// A public key file is not an ed25519 public or private key.
    #[error("key file {}: not an ed25519 public key (PEM SubjectPublicKeyInfo) or private key (PKCS#8)", path.display())]
    PublicKeyFile {
        /// The key file.
        path: PathBuf,
    },
    /// No loaded key may sign `role`.
    #[error(
        "role {role} needs {needed} signature(s) from the key(s) root names ({}); this run \
         holds fewer of them{hint}",
        keyids.join(", ")
    )]
    MissingKey {
        /// The role that must be signed.
        role: String,
        /// How many distinct keys are needed.
        needed: u64,
        /// The key ids allowed (shortened).
        keyids: Vec<String>,
        /// What to do, or which configured key file is the wrong one (empty, or
        /// starting with ": ").
        hint: String,
    },
    /// A key was given that is not one of the role's keys.
    #[error("key {keyid} is not a key of role {role}")]
    WrongKey {
        /// The role.
        role: String,
        /// The key id given.
        keyid: KeyId,
    },
    /// The configuration file is unreadable or invalid.
    #[error("configuration {}: {reason}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Another signer run holds the lock.
    #[error("another cpantuf-sign run holds the lock {}; try again when it has finished", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The mirror has no TUF repository yet.
    #[error("{} is not a cpantuf repository yet (no tuf/root.json): run `cpantuf-sign init`", mirror.display())]
    NotInitialised {
        /// The mirror root.
        mirror: PathBuf,
    },
    /// `init` over an existing repository.
    #[error("{} already holds a TUF repository (tuf/1.root.json exists)", mirror.display())]
    AlreadyInitialised {
        /// The mirror root.
        mirror: PathBuf,
    },
    /// Top-level targets has never been published: a full `publish` with
    /// the targets keys must come first.
    #[error("the repository has not been published yet: run `cpantuf-sign publish` with the targets keys first")]
    NotPublished,
    /// A published metadata file does not parse or validate.
    #[error("{file}: {source}")]
    Metadata {
        /// The file.
        file: String,
        /// What is wrong.
        #[source]
        source: MetadataError,
    },
    /// Signatures do not reach a role's threshold.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    /// A new snapshot would drop a role the published one lists, or lower
    /// its version (spec 5.5.5: clients refuse it as a rollback).
    #[error("refusing to publish: the new snapshot {} role {role} (published version {published}); clients would refuse it as a rollback", match new { Some(v) => format!("lowers to version {v} the"), None => "drops the".to_owned() })]
    SnapshotRollback {
        /// The role concerned.
        role: String,
        /// Its version in the published snapshot.
        published: NonZeroU64,
        /// Its version in the new snapshot, if listed.
        new: Option<NonZeroU64>,
    },
    /// A role's new version is not above the published one (spec 5.6.5 /
    /// 5.7.x: clients refuse a rollback, so publishing it would break them).
    #[error("{role}: version {new} does not increase the published version {published}")]
    VersionNotIncreased {
        /// The role.
        role: String,
        /// The version offered.
        new: u64,
        /// The version published.
        published: u64,
    },
    /// An author-signed role at or below the published version: signed from metadata older
    /// than PAUSE's, or an old role file sent again.
    #[error(
        "{role}: version {new} does not increase the published version {published}: it was \
         signed from metadata older than PAUSE's (a mirror behind PAUSE, or an old role file \
         sent again); sign again with `cpantuf author release` or `renew` against an \
         up-to-date mirror"
    )]
    AuthorRoleStale {
        /// The role.
        role: String,
        /// The version offered.
        new: u64,
        /// The version published.
        published: u64,
    },
    /// An author-signed role skips versions: only the next version is
    /// accepted, so that nobody can push a role towards `u64::MAX`.
    #[error("{role}: version {new} is not the next version {next}; an author-signed role must be exactly one above the published version (sign again with `cpantuf author release` or `renew`, or a fresh `author export`)")]
    VersionNotNext {
        /// The role.
        role: String,
        /// The version offered.
        new: u64,
        /// The only version accepted.
        next: u64,
    },
    /// A role is published at the largest version there is: it has no
    /// next version, and re-signing it would rewrite a published file.
    #[error("{role}: version {version} is the largest a TUF version can be; the role can no longer change (see \"Versions\" in docs/operators.md)")]
    VersionExhausted {
        /// The role.
        role: String,
        /// Its published version.
        version: u64,
    },
    /// A run would replace a published `N.ROLE.json` with other bytes.
    #[error("refusing to publish: tuf/{file} is already published with other bytes; a published metadata file never changes (mirrors and clients keep the first copy)")]
    RewritesPublished {
        /// The file name.
        file: String,
    },
    /// An author-chosen expiry beyond what PAUSE accepts.
    #[error("{role} expires at {expires}, more than {max} from now (claimed_author_max_hours); the author must sign it again with an earlier expiry")]
    ExpiryTooFar {
        /// The role.
        role: String,
        /// Its expiry, as signed.
        expires: String,
        /// The configured maximum, in words.
        max: String,
    },
    /// A new root would lower a threshold without being asked to.
    #[error("the new root lowers the {role} threshold from {old} to {new}; pass --allow-lower-threshold if that is intended")]
    LowersThreshold {
        /// The role.
        role: String,
        /// The current threshold.
        old: u64,
        /// The new threshold.
        new: u64,
    },
    /// A new root would give a role more threshold than keys.
    #[error("the new root gives {role} a threshold of {threshold} with {keys} key(s): no one could ever sign {role} again")]
    ThresholdAboveKeys {
        /// The role.
        role: String,
        /// The threshold asked for.
        threshold: u64,
        /// Its distinct keys.
        keys: usize,
    },
    /// A role lists a target its delegation does not cover.
    #[error("{role} lists {path:?}, which its delegation does not cover")]
    OutsideDelegation {
        /// The role.
        role: String,
        /// The target path.
        path: String,
    },
    /// A role file has a different role name or type than expected.
    #[error("expected metadata for role {expected}, got {found}")]
    WrongRole {
        /// What the operation expected.
        expected: String,
        /// What the file says.
        found: String,
    },
    /// A path belongs to a role other than the one being worked on.
    #[error("{path} belongs to {owner}, not to {role}")]
    NotOwnedBy {
        /// The path.
        path: String,
        /// The role that owns it.
        owner: String,
        /// The role being worked on.
        role: String,
    },
    /// `remove` of a file that is still on the mirror.
    #[error(
        "{path} is still on the mirror: delete the file first, then `remove` re-signs without it"
    )]
    StillOnMirror {
        /// The CPAN path.
        path: String,
    },
    /// `remove` of a path that no role lists.
    #[error("{path} is not listed by {role}: nothing to remove")]
    NotListed {
        /// The CPAN path.
        path: String,
        /// The role that would list it.
        role: String,
    },
    /// An author holds their own key, so PAUSE cannot sign their role.
    #[error("author {author} is claimed (signs their own role): they sign with `cpantuf author release` and PAUSE runs `cpantuf-sign author import`")]
    AuthorClaimed {
        /// The author.
        author: PauseId,
    },
    /// An author's signed roles PAUSE cannot take as they are (the set of roles, not one
    /// role's content).
    #[error("{author}'s signed roles: {why}")]
    AuthorUpload {
        /// The author.
        author: PauseId,
        /// What is wrong and what to do.
        why: String,
    },
    /// A claimed author's key replaced by a role the old key did not sign.
    #[error(
        "rotating {author}'s key needs the role signed by the registered key {old} too \
         (`cpantuf author claim {author} --key NEW.pem --old-key OLD.pem`); if {author} lost \
         it, authenticate them and import with --recover"
    )]
    RotationNotSigned {
        /// The author.
        author: PauseId,
        /// The registered key's id.
        old: String,
    },
    /// An author-level operation on an author that is not claimed.
    #[error("author {author} is not claimed (PAUSE holds the key)")]
    AuthorNotClaimed {
        /// The author.
        author: PauseId,
    },
    /// No role is delegated for this author.
    #[error("author {author} has no role in this repository")]
    UnknownAuthor {
        /// The author.
        author: PauseId,
    },
    /// A new `X/XY` prefix or a deeper directory needs a change of the
    /// offline top-level targets role.
    #[error("{what}: this changes the top-level targets role, which needs the offline targets keys (pass them with --key)")]
    NeedsTargetsKeys {
        /// What changed.
        what: String,
    },
    /// A file lies deeper below its author directory than the prefix
    /// delegations in top-level targets cover.
    #[error("{path}: {depth} levels below the author directory; the repository's prefix delegations cover {max}")]
    TooDeep {
        /// The path.
        path: String,
        /// Its depth.
        depth: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A file listed by the index role vanished from the mirror.
    #[error("{path}: listed by the repository but missing from the mirror")]
    Missing {
        /// The path.
        path: String,
    },
    /// A prepared (pending) change has not collected enough signatures.
    #[error("pending {role} version {version} has {have} of {needed} signature(s); more key holders must sign it")]
    PendingBelowThreshold {
        /// The role.
        role: String,
        /// Its version.
        version: u64,
        /// Valid signatures so far.
        have: u64,
        /// Signatures needed.
        needed: u64,
    },
    /// A co-signed top-level targets file does not match what the
    /// repository needs now.
    #[error("the prepared targets file cannot be used: {why}; prepare it again (the same command with --prepare-targets) and have it signed")]
    PreparedTargetsStale {
        /// What does not match.
        why: String,
    },
    /// `--prepare-targets` or `--targets-signed` for a change that leaves
    /// top-level targets as it is.
    #[error("{what} leaves the top-level targets role as it is: nothing to sign offline; run it without --prepare-targets or --targets-signed")]
    NoTargetsChange {
        /// The change.
        what: String,
    },
    /// There is no prepared change of this role.
    #[error("no pending {role} change (prepare one first)")]
    NoPending {
        /// The role.
        role: String,
    },
}

impl RepoError {
    /// An [`RepoError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RepoError {
        let path = path.into();
        move |source| RepoError::Io { path, source }
    }
}
