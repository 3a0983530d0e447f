//! 02packages bytes -> `Packages::parse`, and the same bytes as a gzip
//! stream -> `Packages::read_gz`. Whatever parses must write back
//! (`to_bytes`) into an index that parses to the same value.
#![no_main]

use cpantuf_core::cpan::packages::Packages;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for p in [Packages::parse(data), Packages::read_gz(data)]
        .into_iter()
        .flatten()
    {
        let text = p.to_bytes();
        let again = Packages::parse(&text).expect("to_bytes output parses");
        assert_eq!(again, p, "parse(to_bytes(p)) != p");
        let gz = Packages::read_gz(p.to_gz_bytes().as_slice()).expect("gz round trip");
        assert_eq!(gz, p);
    }
});
