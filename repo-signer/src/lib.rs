//! The signing side: TUF metadata for a CPAN mirror tree (PAUSE's part).
//!
//! `cpantuf-sign` (`src/cli/`) is a thin CLI over this library. It is not
//! part of `cpantuf-core`: the core holds only what every tool must agree on
//! and does no I/O, while this crate scans, hashes, locks, writes and prunes
//! files. Everything it signs is checked with the core's own verification
//! before it is written (ADR 0014). Everything that decides
//! what a role lists, which key signs it, which version it gets and in which
//! order files reach the disk lives here, so that the binary never builds
//! metadata, formats a role file name or calls a crypto crate.
//!
//! ## Pieces
//!
//! * [`config`]: the operator's configuration (online key files, expiry
//!   policy, retention) and the [`config::KeyRing`] of loaded signers.
//! * [`mirror`]: the mirror directory: validated paths (no symlinks, nothing
//!   outside the mirror), the parallel scan and hash of the CPAN tree, the
//!   lock, hash-named twins.
//! * [`build`]: pure functions from an inventory of files to role payloads
//!   (author, prefix, index, targets, snapshot, timestamp, root).
//! * [`signed`]: a payload signed into the exact bytes that are written
//!   ("hash the bytes you write"), and adding signatures to a prepared file
//!   for multi-party offline signing.
//! * [`state`]: the published state read back from `MIRROR/tuf/`.
//! * [`ceremony`]: what a new root changes (keys, thresholds, expiry), for
//!   the key holders to review before they sign.
//! * [`publish`]: the crash-safe write order (twins, delegated roles,
//!   targets, root, snapshot, timestamp last; temp file + rename) and pruning.
//! * [`ops`]: the operations the CLI exposes, one module each (init,
//!   publish, add/remove, index, timestamp, author keys, root rotation),
//!   over one shared [`ops::Ctx`].
//! * [`audit`]: `verify` and `status`, reading a published repository back.
//! * [`snapindex`]: the published snapshot indexed over its bytes, so an
//!   upload splices it instead of parsing it.
//!
//! ## Security invariants
//!
//! * **Nothing broken is published.** Every operation builds and signs its
//!   whole new state in memory, checks it (signatures against the delegating
//!   role with [`cpantuf_core::verify::check_threshold`], target paths against the
//!   delegation patterns with [`cpantuf_core::metadata::DelegatedRole::covers`]), and
//!   only then writes. `timestamp.json` is renamed into place last, so a crash
//!   at any point leaves the previous timestamp pointing at the previous,
//!   complete state.
//! * **A published `N.ROLE.json` never changes.** Mirrors and clients keep
//!   the first copy of each name. Versions only ever step by one, with
//!   checked arithmetic ([`state::version_after`]); [`publish::write`]
//!   refuses a publication that would replace a published role, snapshot or
//!   root file with other bytes; `verify` checks that every retained file
//!   is the version its name says.
//! * **Each author stays in their directory.** Role contents come from
//!   [`cpantuf_core::cpan::owner`]; an imported author-signed role must list only
//!   paths its delegation covers, be signed by the author's registered key
//!   and be exactly the next version.
//! * **One signer run at a time**, enforced by an exclusive lock on
//!   `MIRROR/.cpantuf-sign.lock`.

pub mod audit;
pub mod build;
pub mod ceremony;
pub mod config;
mod error;
pub mod mirror;
pub mod ops;
pub mod publish;
pub mod signed;
pub mod snapindex;
pub mod state;

pub use error::RepoError;
