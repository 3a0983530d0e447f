//! CPAN knowledge: PAUSE ids, mirror paths, which TUF role owns which file,
//! and the PAUSE index files.
//!
//! Everything that knows how a CPAN mirror is laid out lives here, so that the
//! rest of cpantuf (signer, mirror, client) never builds or splits a CPAN path
//! by formatting strings.
//!
//! # Types
//!
//! - [`PauseId`]: a PAUSE author id (`ETHER`), checked when it is made.
//! - [`AuthorPrefix`]: the `X/XY` pair of directories above an author
//!   directory (`E/ET`).
//! - [`CpanPath`]: a relative path inside a mirror that cannot escape the
//!   mirror root (no `..`, no absolute paths, no backslashes or control
//!   characters).
//! - [`DistPath`]: an author-uploaded file as 02packages names it, relative to
//!   `authors/id/` (`E/ET/ETHER/Try-Tiny-0.31.tar.gz`).
//!
//! # Who signs what
//!
//! [`owner`] decides which role is responsible for a mirror file:
//!
//! | path | owner |
//! |---|---|
//! | `modules/F`, `authors/F` (exactly one level below) | [`Owner::Index`] |
//! | `authors/id/X/XY/AUTHOR/CHECKSUMS`, `…/AUTHOR/*.meta`, `…/AUTHOR/*.readme` (directly in the author directory: PAUSE writes them) | [`Owner::Index`] |
//! | anything else below `authors/id/X/XY/AUTHOR/`, at any depth | [`Owner::Author`] |
//! | `authors/id/X/XY/AUTHOR/…` where `X`/`XY` are not AUTHOR's first letters | error |
//! | anything else | error: no role may sign it |
//!
//! The TUF delegations that implement this table ([`CpanRole::path_patterns`]):
//!
//! ```text
//! targets
//!  ├─ index            (terminating)  modules/*, authors/*,
//!  │                                  authors/id/*/*/*/CHECKSUMS, …/*.meta, …/*.readme
//!  └─ prefix-X-XY      (terminating)  authors/id/X/XY/*/*, authors/id/X/XY/*/*/*, …
//!      └─ author-ID    (terminating)  authors/id/X/XY/ID/*, authors/id/X/XY/ID/*/*, …
//! ```
//!
//! Since TUF 1.0.20 a `*` in a delegation pattern does not match `/`, so the
//! author and prefix roles list one pattern per directory depth, up to the
//! deepest file of that author (see [`author_depth`]).
//!
//! **Overlap, and why it is safe.** The author pattern
//! `authors/id/E/ET/ETHER/*` also matches the PAUSE-written
//! `authors/id/E/ET/ETHER/CHECKSUMS`. The overlap is resolved by the order of
//! the top-level delegations: `targets` must list the `index` role *before*
//! the prefix roles, and `index` must be terminating. A client looking for
//! `…/ETHER/CHECKSUMS` then asks `index` first and, because the delegation is
//! terminating, never falls through to `author-ETHER`, even when `index` does
//! not list the file. An author key therefore cannot sign a `CHECKSUMS`,
//! `.meta` or `.readme` file that clients would accept. A file with such a
//! name in a *sub-directory* of the author directory is the author's own
//! upload: the index patterns only match directly in the author directory,
//! exactly like [`owner`].
//!
//! # Role names
//!
//! Role names become file names (`N.ROLE.json`) and URL path segments, so they
//! use only ASCII letters, digits and `-`:
//!
//! - `index` for the index role ([`INDEX_ROLE_NAME`]);
//! - `prefix-X-XY` for a prefix role, e.g. `prefix-E-ET`;
//! - `author-ID` for an author role, e.g. `author-ETHER`.
//!
//! PAUSE ids are upper case only, so no two names differ only by case and the
//! names are safe on case-insensitive file systems too. None of them collides
//! with a TUF top-level role name.
//!
//! # Index files
//!
//! - [`packages`] handles `modules/02packages.details.txt(.gz)`, parser and writer in
//!   PAUSE's exact format;
//! - [`mailrc`] handles `authors/01mailrc.txt(.gz)`;
//! - [`modlist`] writes the fixed `modules/03modlist.data(.gz)` stub;
//! - [`gz`] gives deterministic gzip and bounded gunzip.

pub mod gz;
mod id;
pub mod mailrc;
pub mod modlist;
mod owner;
pub mod packages;
mod path;

pub use id::{AuthorPrefix, PauseId, PauseIdError, PrefixError};
pub use owner::{
    author_depth, owner, CpanRole, Owner, OwnerError, RoleNameError, INDEX_ROLE_NAME,
    MAX_AUTHOR_BIN_BITS,
};
pub use path::{CpanPath, CpanPathError, DistPath, DistPathError};
