//! The TUF engine of cpantuf (design overview filled in with the engine).
#![deny(missing_docs)]
pub mod cpan;
