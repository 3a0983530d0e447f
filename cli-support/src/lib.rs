//! What `cpantuf`, `cpantuf-sign` and `cpantuf-mirror` share on the command
//! line and nothing else: reference documents generated from each tool's
//! clap definition (`TOOL generate man DIR`, `TOOL generate completions
//! SHELL`), so that man pages and completions never drift from `--help`,
//! and the logging convention (`-v`/`-q`, `CPANTUF_LOG`).
//!
//! No trust rule lives here; this crate only writes what it is asked to.

#![deny(missing_docs)]

pub mod generate;
pub mod logging;
