//! # cpantuf-core: the TUF engine of cpantuf
//!
//! Everything that decides trust lives in this crate, and this crate does no
//! file or network I/O: parsers take bytes or readers, and the callers open
//! files and sockets. The binaries (`cpantuf-sign`, `cpantuf-mirror`,
//! `cpantuf`) parse arguments, move bytes and report; they never parse
//! metadata JSON, call a crypto crate or build a CPAN path by formatting
//! strings.
//!
//! It holds what every tool must agree on and nothing else. The signing side
//! (mirror scan, hashing, state, publishing, pruning) is the `repo-signer`
//! crate's: its mistakes are caught by the checks here, which it runs on
//! everything it signs, and a change to how it writes cannot change what a
//! client accepts (ADR 0014).
//!
//! ## Layout
//!
//! * [`canonical`]: strict JSON parsing (duplicate keys refused) and the one
//!   canonical JSON encoder used to sign and to verify.
//! * [`metadata`]: the TUF 1.0.x model; an [`metadata::Envelope`] holds the
//!   typed payload, the canonical bytes signatures cover, and the signatures.
//! * [`crypto`]: ed25519, ECDSA P-256 and RSA-PSS verification; ed25519
//!   signing and PKCS#8 key files.
//! * [`verify`]: the threshold rule, written once, and [`verify::Verified`],
//!   which only [`verify::verify_role`] can create.
//! * [`trusted`]: the client state machine (spec section 5): bytes in,
//!   verified values out, one reference time per update.
//! * [`fetch`]: [`fetch::FetchError`], what a caller's fetch of metadata can
//!   fail with (below both [`trusted`] and [`workflow`], which use it).
//! * [`workflow`]: the sans-IO driver of the client workflow and the
//!   delegation search, over a caller-supplied [`workflow::MetadataSource`].
//! * [`delegation`]: path patterns, hash prefixes and succinct hash bins.
//! * [`target`]: streaming length and hash checks for downloads.
//! * [`cpan`]: CPAN paths, PAUSE ids, which role owns which file, index files.
//!
//! Every check cites the step of the TUF specification it implements in a
//! comment ("5.4.3.1: ..."); deliberate deviations say "Off-spec:".
#![deny(missing_docs)]

pub mod canonical;
pub mod cpan;
pub mod crypto;
pub mod delegation;
pub mod fetch;
pub mod metadata;
pub mod target;
pub mod trusted;
pub mod verify;
pub mod workflow;
