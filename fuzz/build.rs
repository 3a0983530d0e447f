//! Extracts the request-path parser (`RequestPath::parse` and
//! `decode_segment`) from the mirror server's source so that it can be fuzzed
//! as it is, without the server crate (a binary with no library target) and
//! without changing it. Everything in `root.rs` before the marker below is
//! copied; `//!` lines and imports the parser does not need are dropped. If
//! the file changes shape, the build fails (marker missing) or the harness
//! stops compiling, rather than silently fuzzing a stale copy.

use std::path::PathBuf;

const MARKER: &str = "/// Why a file could not be opened.";

fn main() {
    let src = PathBuf::from("../mirror-server/src/serve/root.rs");
    println!("cargo:rerun-if-changed={}", src.display());
    let text = std::fs::read_to_string(&src).expect("read mirror-server/src/serve/root.rs");
    let head = &text[..text
        .find(MARKER)
        .expect("marker not found in mirror-server/src/serve/root.rs")];
    let kept: Vec<&str> = head
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("//!") || t.starts_with("use "))
        })
        .collect();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("request_path.rs");
    std::fs::write(out, kept.join("\n")).unwrap();
}
