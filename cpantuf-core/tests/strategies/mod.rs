//! Hostile JSON strings for property tests, shared with the signer's
//! property tests (`repo-signer/tests/properties.rs`).

use proptest::prelude::*;

/// Characters that stress the encoder: quotes, backslashes, a slash, ASCII,
/// multi-byte UTF-8, a non-BMP character, U+2028, DEL, plus anything.
pub fn json_char(controls: bool) -> BoxedStrategy<char> {
    let base = prop_oneof![
        Just('"'),
        Just('\\'),
        Just('/'),
        Just('\u{7f}'),
        Just('é'),
        Just('☃'),
        Just('😀'),
        Just('\u{2028}'),
        (b'a'..=b'z').prop_map(char::from),
        any::<char>(),
    ];
    if controls {
        prop_oneof![4 => base, 1 => (0u8..0x20).prop_map(char::from)].boxed()
    } else {
        base.prop_filter("no C0 control", |c| *c >= '\u{20}')
            .boxed()
    }
}

pub fn json_string(controls: bool) -> impl Strategy<Value = String> {
    prop::collection::vec(json_char(controls), 0..10).prop_map(|v| v.into_iter().collect())
}
