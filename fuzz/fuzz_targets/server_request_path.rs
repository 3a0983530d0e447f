//! The mirror server's request-path parser (`RequestPath::parse`, the first
//! of its two confinement layers), compiled from the server's own source
//! (see `build.rs`). For every accepted path:
//! * no segment is empty, `.`, `..` or hidden, and none holds a control
//!   character or a backslash (these are what keeps a request under the
//!   root);
//! * the decoded path stays within the length limit;
//! * parsing `/` + the result again gives the same path when the result has
//!   no `%` left to decode.
#![no_main]

use cpantuf_fuzz::request_path::RequestPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = RequestPath::parse(raw) else {
        return;
    };
    let s = p.as_str();
    assert!(s.len() <= 4096);
    if !s.is_empty() {
        for seg in s.split('/') {
            assert!(!seg.is_empty(), "empty segment in {s:?}");
            assert!(seg != "." && seg != "..", "dot segment in {s:?}");
            assert!(!seg.starts_with('.'), "hidden segment in {s:?}");
            assert!(
                !seg.chars().any(|c| c.is_control() || c == '\\'),
                "forbidden character in {s:?}"
            );
        }
    }
    assert!(!s.starts_with('/'));
    let _ = p.file_name();
    if !s.contains('%') {
        let again = RequestPath::parse(&format!("/{s}")).expect("re-parse of a parsed path");
        assert_eq!(again, p);
    }
});
