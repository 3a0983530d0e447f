//! `authors/01mailrc.txt`: the author list, one `alias` line per PAUSE id.
//!
//! PAUSE writes `alias ID "Full Name <email>"`, the id padded to 10 columns,
//! sorted by id:
//!
//! ```text
//! alias ETHER      "Karen Etheridge <ether@example.invalid>"
//! ```
//!
//! Mailing lists (ids such as `APML`) are listed too, with the id padded to
//! only 6 columns; [`MailrcEntry::is_mailing_list`] keeps that difference so
//! that a list round-trips byte for byte.
//!
//! The quoted text is free-form in practice (authors obfuscate addresses as
//! `<name at host>` or worse), so it is kept as written; only line breaks and
//! control characters are refused, since they could forge extra lines.

use std::collections::BTreeMap;

use super::{PauseId, PauseIdError};

/// One author of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailrcEntry {
    id: PauseId,
    text: String,
    mailing_list: bool,
}

/// Why an author list or entry is malformed. Line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailrcError {
    /// The text has a control character (such as a line break) or is longer
    /// than [`MailrcEntry::MAX_TEXT_LEN`].
    #[error("author text has a control character or is too long")]
    BadText,
    /// A line that is not `alias ID "text"`.
    #[error("line {line}: not 'alias ID \"Name <email>\"'")]
    Syntax {
        /// Line number.
        line: usize,
    },
    /// The id on a line is not a PAUSE id.
    #[error("line {line}: {source}")]
    Id {
        /// Line number.
        line: usize,
        /// What is wrong with it.
        source: PauseIdError,
    },
    /// The same id twice.
    #[error("line {line}: {id} listed twice")]
    Duplicate {
        /// Line number.
        line: usize,
        /// The repeated id.
        id: PauseId,
    },
    /// The input is larger than the caller's limit, or not UTF-8.
    #[error("author list is too large or not UTF-8")]
    Input,
}

impl MailrcEntry {
    /// Longest accepted quoted text, in bytes.
    pub const MAX_TEXT_LEN: usize = 1024;

    /// An entry `Name <email>` for `id`.
    pub fn new(id: PauseId, name: &str, email: &str) -> Result<Self, MailrcError> {
        Self::with_text(id, format!("{name} <{email}>"))
    }

    /// An entry whose quoted text is `text`, as found in an existing list.
    pub fn with_text(id: PauseId, text: String) -> Result<Self, MailrcError> {
        if text.len() > Self::MAX_TEXT_LEN || text.chars().any(char::is_control) {
            return Err(MailrcError::BadText);
        }
        Ok(Self {
            id,
            text,
            mailing_list: false,
        })
    }

    /// Marks the entry as a mailing list, which PAUSE writes with the id
    /// padded to 6 columns instead of 10.
    pub fn into_mailing_list(mut self) -> Self {
        self.mailing_list = true;
        self
    }

    /// Whether the entry is a mailing list.
    pub fn is_mailing_list(&self) -> bool {
        self.mailing_list
    }

    /// The author's id.
    pub fn id(&self) -> &PauseId {
        &self.id
    }

    /// The quoted text, usually `Name <email>`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The name: the text before ` <`, or all of it.
    pub fn name(&self) -> &str {
        self.text
            .split_once(" <")
            .map_or(self.text.as_str(), |(n, _)| n)
    }

    fn line(&self) -> String {
        let width = if self.mailing_list { 6 } else { 10 };
        format!("alias {:<width$} \"{}\"\n", self.id.as_str(), self.text)
    }
}

/// Writes the list in PAUSE's format, sorted by id.
pub fn write_mailrc<'a>(entries: impl IntoIterator<Item = &'a MailrcEntry>) -> Vec<u8> {
    let sorted: BTreeMap<&PauseId, &MailrcEntry> =
        entries.into_iter().map(|e| (&e.id, e)).collect();
    sorted
        .values()
        .map(|e| e.line())
        .collect::<String>()
        .into_bytes()
}

/// Parses an author list of at most `max_bytes` bytes.
pub fn parse_mailrc(bytes: &[u8], max_bytes: usize) -> Result<Vec<MailrcEntry>, MailrcError> {
    if bytes.len() > max_bytes {
        return Err(MailrcError::Input);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| MailrcError::Input)?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        let syntax = MailrcError::Syntax { line };
        let rest = l.strip_prefix("alias ").ok_or(syntax.clone())?;
        let (id, quoted) = rest.split_once(' ').ok_or(syntax.clone())?;
        let id = PauseId::new(id).map_err(|source| MailrcError::Id { line, source })?;
        let unpadded = quoted.trim_start_matches(' ');
        // The padding tells a mailing list (6 columns) from an author (10).
        let mailing_list =
            id.as_str().len() + 1 + quoted.len() - unpadded.len() == 7.max(id.as_str().len() + 1);
        let inner = unpadded
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .ok_or(syntax)?;
        if !seen.insert(id.clone()) {
            return Err(MailrcError::Duplicate { line, id });
        }
        let entry = MailrcEntry::with_text(id, inner.to_owned())?;
        out.push(if mailing_list {
            entry.into_mailing_list()
        } else {
            entry
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> PauseId {
        PauseId::new(s).unwrap()
    }

    #[test]
    fn writes_pause_format_sorted() {
        let entries = [
            MailrcEntry::new(id("HAARG"), "Graham Knop", "haarg@example.invalid").unwrap(),
            MailrcEntry::new(id("ETHER"), "Karen Etheridge", "ether@example.invalid").unwrap(),
            MailrcEntry::new(id("AALEARNER"), "Yufei Tang", "CENSORED").unwrap(),
        ];
        let out = String::from_utf8(write_mailrc(&entries)).unwrap();
        assert_eq!(
            out,
            "alias AALEARNER  \"Yufei Tang <CENSORED>\"\n\
             alias ETHER      \"Karen Etheridge <ether@example.invalid>\"\n\
             alias HAARG      \"Graham Knop <haarg@example.invalid>\"\n"
        );
        assert_eq!(
            parse_mailrc(out.as_bytes(), 1 << 20).unwrap()[1],
            entries[1]
        );
        assert_eq!(entries[1].name(), "Karen Etheridge");
        let list = MailrcEntry::new(id("APML"), "The Perl/Apache Mailing List", "dev@x")
            .unwrap()
            .into_mailing_list();
        let out = write_mailrc([&list]);
        assert_eq!(
            out,
            b"alias APML   \"The Perl/Apache Mailing List <dev@x>\"\n"
        );
        assert_eq!(parse_mailrc(&out, 100).unwrap(), [list]);
    }

    #[test]
    fn refuses_forged_lines() {
        assert_eq!(
            MailrcEntry::new(id("EVIL"), "x\"\nalias ETHER \"y", "z"),
            Err(MailrcError::BadText)
        );
        assert_eq!(
            MailrcEntry::with_text(id("EVIL"), "a".repeat(2000)),
            Err(MailrcError::BadText)
        );
    }

    #[test]
    fn hostile_lists() {
        let p = |s: &str| parse_mailrc(s.as_bytes(), 1 << 20);
        assert!(matches!(
            p("alias ETHER\n"),
            Err(MailrcError::Syntax { line: 1 })
        ));
        assert!(matches!(
            p("alias ETHER x\n"),
            Err(MailrcError::Syntax { line: 1 })
        ));
        assert!(matches!(
            p("alas ETHER \"x\"\n"),
            Err(MailrcError::Syntax { line: 1 })
        ));
        assert!(matches!(
            p("alias ../X \"x\"\n"),
            Err(MailrcError::Id { line: 1, .. })
        ));
        assert!(matches!(
            p("alias ETHER \"x\"\nalias ETHER \"y\"\n"),
            Err(MailrcError::Duplicate { line: 2, .. })
        ));
        assert!(matches!(
            p("alias ETHER \"x\u{1b}\"\n"),
            Err(MailrcError::BadText)
        ));
        assert_eq!(parse_mailrc(b"\xff", 10), Err(MailrcError::Input));
        assert_eq!(parse_mailrc(&[b'a'; 11], 10), Err(MailrcError::Input));
    }

    #[test]
    fn real_list_round_trips() {
        // Compiled in: the core does no file I/O, not even in its tests.
        let gz = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/cpan-index/01mailrc.perlancar-darkpan-cpan.2022-01-11.txt.gz"
        ));
        let raw = super::super::gz::gunzip_limited(&gz[..], 64 << 20).unwrap();
        let entries = parse_mailrc(&raw, 64 << 20).unwrap();
        assert_eq!(entries.len(), 11_970);
        assert!(write_mailrc(&entries) == raw, "re-written list differs");
        let lists: Vec<&str> = entries
            .iter()
            .filter(|e| e.is_mailing_list())
            .map(|e| e.id().as_str())
            .collect();
        assert_eq!(lists.len(), 28);
        assert!(lists.contains(&"APML"));
        let ether = entries.iter().find(|e| e.id().as_str() == "ETHER").unwrap();
        assert_eq!(ether.name(), "Karen Etheridge");
        assert!(ether.text().starts_with("Karen Etheridge <ether@"));
    }
}
