//! How a TUF repository's files are addressed over HTTP, shared by the
//! client's updater and the mirror server's sync (both fetch from a
//! repository the same way).

use cpantuf_core::metadata::TargetFile;
use cpantuf_core::workflow::encode_role_name;

/// `s` with a trailing `/`.
pub fn with_slash(s: &str) -> String {
    let mut s = s.to_owned();
    if !s.ends_with('/') {
        s.push('/');
    }
    s
}

/// Where a cpantuf mirror at `mirror` keeps its TUF metadata: `<mirror>/tuf/`
/// (its CPAN tree, the targets, is `<mirror>/` itself).
pub fn metadata_base(mirror: &str) -> String {
    format!("{}tuf/", with_slash(mirror))
}

/// URL of a metadata file under `base` (ending in `/`): `N.ROLE.json` when a
/// version is given (consistent snapshots), else `ROLE.json`; the role name
/// is percent-encoded as python-tuf does.
pub fn metadata_url(base: &str, role: &str, version: Option<u64>) -> String {
    let name = encode_role_name(role);
    match version {
        Some(v) => format!("{base}{v}.{name}.json"),
        None => format!("{base}{name}.json"),
    }
}

/// What a path segment keeps unencoded: RFC 3986's unreserved characters
/// and the sub-delimiters, `:` and `@` (its `pchar`).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// Percent-encodes each `/`-separated segment of a target path for a URL.
pub fn url_path(path: &str) -> String {
    path.split('/')
        .map(|seg| percent_encoding::utf8_percent_encode(seg, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// The hash-named twin of a target path, `dir/HASH.name` (spec 5.7.3,
/// consistent snapshots), preferring the sha256 digest. `None` when the
/// metadata lists no usable hex digest.
pub fn consistent_target_path(path: &str, info: &TargetFile) -> Option<String> {
    let hash = info
        .hashes
        .get("sha256")
        .or_else(|| info.hashes.values().next())?;
    if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(match path.rsplit_once('/') {
        Some((dir, base)) => format!("{dir}/{hash}.{base}"),
        None => format!("{hash}.{path}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            metadata_url("http://m/tuf/", "/x", Some(3)),
            "http://m/tuf/3.%2Fx.json"
        );
        assert_eq!(
            metadata_url("http://m/tuf/", "timestamp", None),
            "http://m/tuf/timestamp.json"
        );
        assert_eq!(url_path("a b/c?d/e%f"), "a%20b/c%3Fd/e%25f");
        assert_eq!(url_path("x/\u{dc}n:@+~'#"), "x/%C3%9Cn:@+~'%23");
        assert_eq!(with_slash("x"), "x/");
        let mut hashes = std::collections::BTreeMap::new();
        hashes.insert("sha256".to_owned(), "ab12".to_owned());
        let info = TargetFile {
            length: 1,
            hashes,
            custom: None,
        };
        assert_eq!(
            consistent_target_path("a/b/F.tar.gz", &info).unwrap(),
            "a/b/ab12.F.tar.gz"
        );
        assert_eq!(consistent_target_path("F", &info).unwrap(), "ab12.F");
    }
}
