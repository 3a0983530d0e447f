//! The cpantuf client library.
