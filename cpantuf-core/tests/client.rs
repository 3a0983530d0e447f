//! Client state machine tests that CI runs: one test per attack, named after
//! it (after python-tuf's `test_updater_top_level_update.py` and
//! `test_updater_delegation_graphs.py`), and bad-input tests that feed raw
//! bytes for every role through the workflow (after
//! `test_trusted_metadata_set.py`).
//!
//! Every refused update asserts the exact error variant and the contents of
//! the local store afterwards.

#[path = "client/sim.rs"]
mod sim;

#[path = "client/attacks.rs"]
mod attacks;

#[path = "client/bad_input.rs"]
mod bad_input;

/// `Err(e)` matching `$pat`, or a panic naming what happened instead.
#[macro_export]
macro_rules! expect_err {
    ($res:expr, $pat:pat $(if $guard:expr)?) => {
        match $res {
            Err(e) => {
                assert!(
                    matches!(&e, $pat $(if $guard)?),
                    "unexpected error: {e:?} ({e})"
                );
                e
            }
            Ok(_) => panic!("update accepted; expected {}", stringify!($pat)),
        }
    };
}
