//! The operations `cpantuf-sign` exposes, one module each, over one shared
//! [`Ctx`].
//!
//! Every operation follows the same shape: take the lock, read the
//! published state, build and sign the whole change in memory, check it,
//! then hand one [`Publication`](crate::publish::Publication) to
//! [`publish::write`](crate::publish::write). An error anywhere before the
//! write leaves the disk untouched.
//!
//! * [`context`]: [`Ctx`] and [`Progress`].
//! * [`init`](mod@init): the first root.
//! * [`publish_full`](mod@publish_full): the full build, as named phases.
//! * [`upload`]: `add` and `remove` of single files.
//! * [`index`](mod@index): the index role after PAUSE rewrote its files.
//! * [`timestamp`](mod@timestamp): a fresh timestamp (cron).
//! * [`author`]: claimed authors (export, import, revoke).
//! * [`root`]: root rotation (prepare, publish).
//!
//! Below them, shared by several: `roles` (PAUSE's author payloads, roles
//! kept unchanged, retired bins, claimed authors) and `snapshot` (the
//! snapshot and timestamp that end every operation).

pub mod author;
mod author_upload;
pub mod context;
pub mod index;
pub mod init;
pub mod publish_full;
mod roles;
pub mod root;
mod snapshot;
pub mod timestamp;
pub mod upload;

pub use author::{author_export, author_import, author_revoke, AuthorChange};
pub use context::{Ctx, NoProgress, Progress};
pub use index::index;
pub use init::{init, InitParams};
pub use publish_full::{publish_full, publish_full_with, PublishReport, TargetsSigning};
pub(crate) use roles::{claimed_authors, claimed_listed, claimed_roles};
pub use root::{root_prepare, root_publish, RootChange};
pub use snapshot::AddReport;
pub use timestamp::timestamp;
pub use upload::{add, remove};
