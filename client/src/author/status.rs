//! What the repository publishes for an author, against what the author signed and holds.

use super::local::LocalFile;
use chrono::{DateTime, Utc};
use cpantuf_core::metadata::{KeyId, TargetFile};
use std::collections::{BTreeMap, BTreeSet};

/// The comparison `cpantuf author status` prints.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The role's version.
    pub version: u64,
    /// When it expires.
    pub expires: Option<DateTime<Utc>>,
    /// Whether the delegation names the author's key (`None`: no key given to compare).
    pub signed_by_key: Option<bool>,
    /// The files the role lists, which clients install.
    pub signed: Vec<String>,
    /// Files the repository's signed index or CHECKSUMS name in the author's directory that
    /// the role does not list: uploads waiting for the author's signature, or someone else's.
    /// Clients refuse them.
    pub not_signed: Vec<String>,
    /// Local tarballs the role does not list.
    pub local_not_released: Vec<String>,
    /// Local tarballs whose bytes differ from what the role lists.
    pub local_differs: Vec<String>,
}

/// Compares the published role (`listed`, delegated to `keyids`) with the files the
/// repository names in the author's directory (`on_mirror`, CPAN paths) and the author's
/// local tarballs; `key` is the author's key id, when given.
pub fn compare(
    listed: &BTreeMap<String, TargetFile>,
    keyids: &[KeyId],
    key: Option<&KeyId>,
    on_mirror: &BTreeSet<String>,
    local: &[LocalFile],
) -> Report {
    let mut r = Report {
        signed_by_key: key.map(|k| keyids.contains(k)),
        signed: listed.keys().cloned().collect(),
        not_signed: on_mirror
            .iter()
            .filter(|p| !listed.contains_key(*p))
            .cloned()
            .collect(),
        ..Report::default()
    };
    for f in local {
        match listed.get(f.path.as_str()) {
            None => r.local_not_released.push(f.path.to_string()),
            Some(info) if *info != f.info => r.local_differs.push(f.path.to_string()),
            Some(_) => {}
        }
    }
    r
}

/// The file names a PAUSE `CHECKSUMS` file lists (the keys of its `$cksum` hash), read
/// leniently: a line `'NAME' => {` at the first level.
pub fn checksums_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut depth = 0usize;
    for line in text.lines() {
        let t = line.trim();
        if depth == 1 {
            if let Some((name, tail)) = t.strip_prefix('\'').and_then(quoted) {
                if tail.trim_start().starts_with("=>") && !name.contains('/') {
                    out.insert(name);
                }
            }
        }
        depth += t.matches('{').count();
        depth = depth.saturating_sub(t.matches('}').count());
    }
    out
}

/// A Perl single-quoted string's text (after its opening quote) and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '\'' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpantuf_core::cpan::CpanPath;

    fn info(sha: &str) -> TargetFile {
        TargetFile {
            length: 1,
            hashes: BTreeMap::from([("sha256".to_owned(), sha.to_owned())]),
            custom: None,
        }
    }

    #[test]
    fn unsigned_uploads_and_local_differences_are_reported() {
        let d = "authors/id/E/ET/ETHER";
        let listed = BTreeMap::from([(format!("{d}/A-1.tar.gz"), info("a"))]);
        let on_mirror = BTreeSet::from([format!("{d}/A-1.tar.gz"), format!("{d}/Evil-1.tar.gz")]);
        let local = [
            LocalFile {
                path: CpanPath::new(&format!("{d}/A-1.tar.gz")).unwrap(),
                info: info("changed"),
            },
            LocalFile {
                path: CpanPath::new(&format!("{d}/B-1.tar.gz")).unwrap(),
                info: info("b"),
            },
        ];
        let k = KeyId("k1".to_owned());
        let r = compare(
            &listed,
            std::slice::from_ref(&k),
            Some(&k),
            &on_mirror,
            &local,
        );
        assert_eq!(r.signed_by_key, Some(true));
        assert_eq!(r.not_signed, vec![format!("{d}/Evil-1.tar.gz")]);
        assert_eq!(r.local_differs, vec![format!("{d}/A-1.tar.gz")]);
        assert_eq!(r.local_not_released, vec![format!("{d}/B-1.tar.gz")]);
    }

    #[test]
    fn checksums_names_are_the_first_level_keys() {
        let text = "# CHECKSUMS\n$cksum = {\n  'Moo-2.tar.gz' => {\n    'md5' => 'x',\n    \
                    'sha256' => 'y',\n  },\n  'It\\'s-1.tar.gz' => {\n    'size' => 3\n  },\n};\n";
        assert_eq!(
            checksums_names(text),
            BTreeSet::from(["Moo-2.tar.gz".to_owned(), "It's-1.tar.gz".to_owned()])
        );
    }
}
