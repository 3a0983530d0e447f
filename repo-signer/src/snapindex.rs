//! The published snapshot as an upload reads it back: an index over its
//! canonical bytes, and the next snapshot spliced from them.
//!
//! At CPAN scale the snapshot lists ~15,000 roles (half a megabyte). An
//! upload changes one or two entries, yet parsing the whole document into a
//! map and encoding it again took a third of the upload's time. The signer
//! writes every snapshot itself, in one exact canonical shape
//! ([`super::signed`]'s direct encoder):
//!
//! ```text
//! {"_type":"snapshot","expires":"…","meta":{"NAME.json":{"version":N},…},"spec_version":"…","version":N}
//! ```
//!
//! [`SnapshotIndex::parse`] accepts exactly that shape (names strictly
//! increasing, no escapes, versions without leading zeros) and nothing else;
//! anything else (a snapshot with lengths or hashes, written by another
//! tool) makes it return `None` and the caller parses the document in full.
//! [`SnapshotIndex::splice`] yields byte for byte what the encoder would
//! write for the updated list (tested against it, including by a property
//! test).

use chrono::{DateTime, Utc};
use cpantuf_core::canonical::write_string;
use cpantuf_core::metadata::{expiry, Snapshot};
use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::ops::Range;

/// One `"NAME":{"version":N}` entry.
#[derive(Clone, Debug)]
struct Entry {
    /// The name, without quotes.
    name: Range<usize>,
    /// The whole entry, quotes to closing brace.
    raw: Range<usize>,
    version: NonZeroU64,
}

/// An index over a snapshot's canonical `signed` bytes.
#[derive(Clone, Debug)]
pub struct SnapshotIndex {
    signed: Vec<u8>,
    expires: DateTime<Utc>,
    entries: Vec<Entry>,
    /// `"…"`: the spec_version string as written, quotes included.
    spec_version: Range<usize>,
    /// The snapshot's own version.
    pub version: NonZeroU64,
}

/// A role whose version a splice would lower (spec 5.5.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lowered {
    /// `ROLE.json`.
    pub name: String,
    /// Published version.
    pub old: NonZeroU64,
    /// Version asked for.
    pub new: NonZeroU64,
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        self.b[self.i..].starts_with(s).then(|| self.i += s.len())
    }
    /// A string without escapes or control characters; returns the range
    /// inside the quotes.
    fn plain_string(&mut self) -> Option<Range<usize>> {
        self.lit(b"\"")?;
        let start = self.i;
        let len = self.b[start..].iter().position(|&c| c == b'"')?;
        let s = &self.b[start..start + len];
        if s.iter().any(|&c| c == b'\\' || c < 0x20) {
            return None;
        }
        self.i = start + len + 1;
        Some(start..start + len)
    }
    /// A positive integer as canonical JSON writes it.
    fn version(&mut self) -> Option<NonZeroU64> {
        let start = self.i;
        let len = self.b[start..]
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(self.b.len() - start);
        let digits = &self.b[start..start + len];
        if digits.is_empty() || digits[0] == b'0' {
            return None;
        }
        self.i += len;
        std::str::from_utf8(digits).ok()?.parse().ok()
    }
}

impl SnapshotIndex {
    /// Indexes `signed` (a snapshot's canonical `signed` bytes) if it has
    /// exactly the shape cpantuf's signer writes; `None` otherwise.
    pub fn parse(signed: &[u8]) -> Option<Self> {
        std::str::from_utf8(signed).ok()?;
        let mut c = Cursor { b: signed, i: 0 };
        c.lit(b"{\"_type\":\"snapshot\",\"expires\":")?;
        let exp = c.plain_string()?;
        // Only the form the encoder writes: the parser is more lenient
        // (e.g. "00: 0Z"), and a splice must reproduce the bytes exactly.
        let exp = std::str::from_utf8(&signed[exp]).ok()?;
        let expires = expiry::parse(exp).ok()?;
        if expiry::format(&expires) != exp {
            return None;
        }
        c.lit(b",\"meta\":{")?;
        let mut entries: Vec<Entry> = Vec::new();
        if c.lit(b"}").is_none() {
            loop {
                let start = c.i;
                let name = c.plain_string()?;
                c.lit(b":{\"version\":")?;
                let version = c.version()?;
                c.lit(b"}")?;
                if let Some(last) = entries.last() {
                    if signed[last.name.clone()] >= signed[name.clone()] {
                        return None;
                    }
                }
                entries.push(Entry {
                    name,
                    raw: start..c.i,
                    version,
                });
                if c.lit(b"}").is_some() {
                    break;
                }
                c.lit(b",")?;
            }
        }
        c.lit(b",\"spec_version\":")?;
        let sv = c.plain_string()?;
        let spec_version = sv.start - 1..sv.end + 1;
        c.lit(b",\"version\":")?;
        let version = c.version()?;
        c.lit(b"}")?;
        (c.i == signed.len()).then(|| SnapshotIndex {
            signed: signed.to_vec(),
            expires,
            entries,
            spec_version,
            version,
        })
    }

    fn name(&self, e: &Entry) -> &str {
        std::str::from_utf8(&self.signed[e.name.clone()]).expect("checked in parse")
    }

    /// The version listed for `name` (`ROLE.json`).
    pub fn version_of(&self, name: &str) -> Option<NonZeroU64> {
        self.entries
            .binary_search_by(|e| self.signed[e.name.clone()].cmp(name.as_bytes()))
            .ok()
            .map(|i| self.entries[i].version)
    }

    /// Every listed name (`ROLE.json`), in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(|e| self.name(e))
    }

    /// The full snapshot payload (for the runs that need every entry).
    pub fn to_snapshot(&self) -> Snapshot {
        let sv = &self.signed[self.spec_version.start + 1..self.spec_version.end - 1];
        Snapshot {
            spec_version: String::from_utf8(sv.to_vec()).expect("utf-8"),
            version: self.version,
            expires: self.expires,
            meta: self
                .entries
                .iter()
                .map(|e| {
                    (
                        self.name(e).to_owned(),
                        cpantuf_core::metadata::MetaFile {
                            version: e.version,
                            length: None,
                            hashes: None,
                        },
                    )
                })
                .collect(),
        }
    }

    /// The canonical `signed` bytes of the next snapshot: every entry as
    /// published, with `changes` (`ROLE.json` -> version) set, at `version`
    /// and `expires`. Refuses to lower a listed version (spec 5.5.5); no
    /// entry is ever dropped.
    pub fn splice(
        &self,
        changes: &BTreeMap<String, NonZeroU64>,
        version: NonZeroU64,
        expires: DateTime<Utc>,
    ) -> Result<Vec<u8>, Lowered> {
        let mut out = Vec::with_capacity(self.signed.len() + 48 * changes.len() + 64);
        out.extend_from_slice(b"{\"_type\":\"snapshot\",\"expires\":");
        write_string(&mut out, &expiry::format(&expires));
        out.extend_from_slice(b",\"meta\":{");
        let new_entry = |out: &mut Vec<u8>, name: &str, v: NonZeroU64| {
            write_string(out, name);
            out.extend_from_slice(format!(":{{\"version\":{v}}}").as_bytes());
        };
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>| {
            if !first {
                out.push(b',');
            }
            first = false;
        };
        let mut olds = self.entries.iter().peekable();
        let mut news = changes.iter().peekable();
        loop {
            match (olds.peek(), news.peek()) {
                (None, None) => break,
                (Some(o), Some((n, v))) if self.name(o) == n.as_str() => {
                    if **v < o.version {
                        return Err(Lowered {
                            name: (*n).clone(),
                            old: o.version,
                            new: **v,
                        });
                    }
                    sep(&mut out);
                    new_entry(&mut out, n, **v);
                    olds.next();
                    news.next();
                }
                (Some(o), Some((n, _))) if self.name(o).as_bytes() < n.as_bytes() => {
                    sep(&mut out);
                    out.extend_from_slice(&self.signed[o.raw.clone()]);
                    olds.next();
                }
                (Some(o), None) => {
                    sep(&mut out);
                    out.extend_from_slice(&self.signed[o.raw.clone()]);
                    olds.next();
                }
                (_, Some((n, v))) => {
                    sep(&mut out);
                    new_entry(&mut out, n, **v);
                    news.next();
                }
            }
        }
        out.extend_from_slice(b"},\"spec_version\":");
        out.extend_from_slice(&self.signed[self.spec_version.clone()]);
        out.extend_from_slice(format!(",\"version\":{version}}}").as_bytes());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::signed::snapshot_canonical_signed as encode;
    use super::*;
    use cpantuf_core::metadata::MetaFile;
    use proptest::prelude::*;

    fn snap(meta: &[(&str, u64)], version: u64) -> Snapshot {
        Snapshot {
            spec_version: "1.0.31".into(),
            version: NonZeroU64::new(version).unwrap(),
            expires: expiry::parse("2030-01-02T03:04:05Z").unwrap(),
            meta: meta
                .iter()
                .map(|(n, v)| {
                    (
                        (*n).to_owned(),
                        MetaFile {
                            version: NonZeroU64::new(*v).unwrap(),
                            length: None,
                            hashes: None,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn parses_what_the_signer_writes_and_nothing_else() {
        let s = snap(
            &[
                ("author-A.json", 3),
                ("index.json", 1),
                ("targets.json", 12),
            ],
            40,
        );
        let bytes = encode(&s);
        let ix = SnapshotIndex::parse(&bytes).unwrap();
        assert_eq!(ix.version.get(), 40);
        assert_eq!(ix.version_of("index.json").unwrap().get(), 1);
        assert_eq!(ix.version_of("targets.json").unwrap().get(), 12);
        assert_eq!(ix.version_of("author-B.json"), None);
        assert_eq!(
            ix.names().collect::<Vec<_>>(),
            ["author-A.json", "index.json", "targets.json"]
        );
        assert_eq!(encode(&ix.to_snapshot()), bytes);
        assert!(SnapshotIndex::parse(&encode(&snap(&[], 1))).is_some());
        let text = String::from_utf8(bytes).unwrap();
        for bad in [
            text.replace("\"version\":3", "\"version\":03"),
            text.replace("\"version\":3", "\"version\":0"),
            text.replace("{\"version\":3}", "{\"length\":9,\"version\":3}"),
            text.replace("author-A", "zzz"),
            text.replace("author-A", "a\\\"b"),
            text.replace(",\"version\":40}", ",\"version\":40} "),
            text.replace("\"_type\":\"snapshot\"", "\"_type\":\"targets\""),
            text.replace("2030-01-02T03:04:05Z", "tomorrow"),
            // Found by fuzzing: the expiry parser accepts a space-padded
            // field that the encoder never writes.
            text.replace("2030-01-02T03:04:05Z", "2030-01-02T03:04: 5Z"),
            text.replace("\"version\":40", "\"version\":99999999999999999999999"),
        ] {
            assert!(SnapshotIndex::parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn splice_refuses_to_lower_a_version() {
        let ix = SnapshotIndex::parse(&encode(&snap(&[("a.json", 5)], 2))).unwrap();
        let lower = BTreeMap::from([("a.json".to_owned(), NonZeroU64::new(4).unwrap())]);
        let exp = expiry::parse("2031-01-01T00:00:00Z").unwrap();
        let err = ix
            .splice(&lower, NonZeroU64::new(3).unwrap(), exp)
            .unwrap_err();
        assert_eq!((err.old.get(), err.new.get()), (5, 4));
    }

    proptest! {
        /// Splicing changes into the published bytes gives exactly what the
        /// encoder writes for the updated list.
        #[test]
        fn splice_equals_encoding_the_updated_snapshot(
            old in proptest::collection::btree_map("[a-z0-9.-]{1,12}", 1u64..1000, 0..40),
            changes in proptest::collection::btree_map("[a-z0-9.-]{1,12}", 0u64..2000, 0..12),
            version in 1u64..u64::MAX,
        ) {
            let old_snap = snap(&old.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>(), 7);
            let ix = SnapshotIndex::parse(&encode(&old_snap)).unwrap();
            let changes: BTreeMap<String, NonZeroU64> = changes
                .into_iter()
                .map(|(k, v)| (k.clone(), NonZeroU64::new(v.max(old.get(&k).copied().unwrap_or(1))).unwrap()))
                .collect();
            let exp = expiry::parse("2031-05-06T07:08:09Z").unwrap();
            let spliced = ix.splice(&changes, NonZeroU64::new(version).unwrap(), exp).unwrap();
            let mut want = old_snap.clone();
            want.version = NonZeroU64::new(version).unwrap();
            want.expires = exp;
            for (k, v) in &changes {
                want.meta.insert(k.clone(), MetaFile { version: *v, length: None, hashes: None });
            }
            prop_assert_eq!(String::from_utf8(spliced).unwrap(), String::from_utf8(encode(&want)).unwrap());
        }
    }
}
