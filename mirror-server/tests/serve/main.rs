//! Integration tests of `cpantuf-mirror serve`: real server processes on 127.0.0.1 with a
//! test CA, driven by a raw client (and, in `cpan_clients`, by real CPAN clients).

mod abuse;
mod admin;
mod cpan_clients;
mod harness;
mod lifecycle;
mod semantics;
