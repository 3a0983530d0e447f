//! # cpantuf client library
//!
//! The I/O half of the TUF client: an HTTP(S) [`fetcher`] with the limits
//! that defeat endless-data and slow-retrieval attacks, a crash-safe
//! [`store`] of trusted metadata, the [`updater`] that drives
//! `cpantuf_core`'s workflow with them, a CPAN user's [`session`] (mirrors
//! with failover, verified cache, module resolution through the verified
//! index) and the [`local_mirror`] that unmodified cpanm / CPAN.pm / cpm use.
//! Verification itself lives in `cpantuf_core` only.
//!
//! `cpantuf-mirror sync` is a client too: it uses this crate's fetcher, store
//! and [`urls`] helpers, so a mirror verifies and keeps trusted state exactly
//! as `cpantuf` does. The dependency runs from the mirror to this crate,
//! never back (ADR 0014).
#![deny(missing_docs)]

pub mod author;
pub mod fetcher;
pub mod home;
pub mod local_mirror;
pub mod mirror_log;
pub mod packages_index;
pub mod report;
pub mod session;
pub mod status;
pub mod store;
pub mod updater;
pub mod urls;
