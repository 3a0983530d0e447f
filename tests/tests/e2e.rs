//! End-to-end tests (filled by later issues).
