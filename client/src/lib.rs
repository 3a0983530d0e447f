//! # cpantuf client library
//!
//! The I/O half of the TUF client: an HTTP(S) [`fetcher`] with the limits
//! that defeat endless-data and slow-retrieval attacks, a crash-safe
//! [`store`] of trusted metadata, and the [`updater`] that drives
//! `cpantuf_core`'s workflow with them. Verification itself lives in
//! `cpantuf_core` only.
#![deny(missing_docs)]

pub mod fetcher;
pub mod store;
pub mod updater;
