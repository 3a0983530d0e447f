//! Strict JSON parsing and the OLPC / securesystemslib canonical JSON encoder.
//!
//! Security invariant: the bytes a signature covers are produced by
//! [`encode`] and nothing else, both when signing (repository side) and when
//! verifying (client side). The encoder is byte-identical to
//! `securesystemslib.formats.encode_canonical`, which python-tuf and most
//! TUF implementations use:
//!
//! * object keys sorted by code point (Rust's `String` ordering on UTF-8
//!   bytes is the same order), no insignificant whitespace;
//! * strings are written raw (UTF-8, control characters included) with only
//!   `\` and `"` escaped;
//! * integers only: a float anywhere is an error, as in securesystemslib;
//! * `true`, `false`, `null` as usual.
//!
//! [`parse`] is stricter than `serde_json::from_slice`: duplicate object keys
//! are an error (with serde_json's `Value` the last one silently wins, which
//! lets two parsers disagree about what was signed), trailing data is an
//! error, and numbers outside the 64-bit integer range surface as floats and
//! are refused by the encoder.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Why a document could not be parsed or encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JsonError {
    /// Not well-formed JSON, a duplicate object key, nesting too deep, or
    /// trailing bytes after the document.
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// A number that is not a 64-bit integer (a float, an exponent, or an
    /// integer too large); canonical JSON has integers only.
    #[error(
        "number {0} is not an integer in the 64-bit range: canonical JSON allows integers only"
    )]
    NotAnInteger(String),
}

/// Parses `bytes` as one JSON document, refusing duplicate object keys and
/// trailing data.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue
        .deserialize(&mut de)
        .map_err(|e| JsonError::Syntax(e.to_string()))?;
    de.end().map_err(|e| JsonError::Syntax(e.to_string()))?;
    Ok(value)
}

/// Encodes `value` as canonical JSON.
pub fn encode(value: &Value) -> Result<Vec<u8>, JsonError> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value)?;
    Ok(out)
}

/// Appends the canonical encoding of `value` to `out`.
pub fn encode_into(out: &mut Vec<u8>, value: &Value) -> Result<(), JsonError> {
    write_value(out, value)
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), JsonError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // serde_json's default Map is a BTreeMap<String, _>: iteration is
            // already in byte order of the UTF-8 keys, which equals code point
            // order, which is what Python's sorted() gives securesystemslib.
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, k);
                out.push(b':');
                write_value(out, v)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_number(out: &mut Vec<u8>, n: &Number) -> Result<(), JsonError> {
    if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else {
        return Err(JsonError::NotAnInteger(n.to_string()));
    }
    Ok(())
}

/// Appends `s` as a canonical JSON string (only `"` and `\\` escaped), for
/// encoders that write canonical bytes without building a [`Value`].
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'"' || b == b'\\' {
            out.extend_from_slice(&bytes[start..i]);
            out.push(b'\\');
            out.push(b);
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// What a canonical-form scan learned about a document.
#[derive(Debug, PartialEq, Eq)]
pub struct CanonicalScan {
    /// The string value of the top-level `_type` key, if any.
    pub type_field: Option<String>,
}

/// Checks, in one pass and without building a tree, whether `raw` (which
/// must already be well-formed JSON, e.g. a `serde_json::value::RawValue`)
/// is byte-for-byte what [`encode`] would produce for it: no whitespace,
/// object keys strictly increasing (so also no duplicates), strings with
/// only `\"` and `\\` escapes, integers in canonical form and 64-bit range.
///
/// Returns `None` when it is not canonical; the caller then re-encodes.
/// When it returns `Some`, verifying a signature over `raw` is the same as
/// verifying it over `encode(parse(raw))`, which lets large metadata skip the
/// generic tree entirely.
pub fn scan_canonical(raw: &[u8]) -> Option<CanonicalScan> {
    let mut s = Scanner {
        b: raw,
        i: 0,
        type_field: None,
    };
    s.value(0)?;
    (s.i == raw.len()).then_some(CanonicalScan {
        type_field: s.type_field,
    })
}

/// Splits a metadata file written entirely in canonical form,
/// `{"signatures":[...],"signed":{...}}`, into the byte ranges of the
/// signatures list and of the signed object, scanning only the (small)
/// signatures list. The signed range still has to pass [`scan_canonical`]
/// before it is used; until then it is only a candidate.
pub fn split_canonical_envelope(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    const HEAD: &[u8] = b"{\"signatures\":";
    const MID: &[u8] = b",\"signed\":";
    let rest = bytes.strip_prefix(HEAD)?;
    let mut s = Scanner {
        b: rest,
        i: 0,
        type_field: None,
    };
    if s.peek()? != b'[' {
        return None;
    }
    s.value(1)?;
    let sigs = &rest[..s.i];
    let signed = rest[s.i..].strip_prefix(MID)?.strip_suffix(b"}")?;
    Some((sigs, signed))
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    type_field: Option<String>,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }
    fn lit(&mut self, word: &[u8]) -> Option<()> {
        self.b
            .get(self.i..self.i + word.len())
            .filter(|w| *w == word)?;
        self.i += word.len();
        Some(())
    }
    fn value(&mut self, depth: usize) -> Option<()> {
        // serde_json refuses nesting deeper than 128; so does the scanner,
        // so both parse paths agree on every input.
        if depth >= 128 {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(depth),
            b'[' => {
                self.i += 1;
                if self.eat(b']').is_some() {
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    if self.eat(b',').is_none() {
                        return self.eat(b']');
                    }
                }
            }
            b'"' => self.string().map(|_| ()),
            b't' => self.lit(b"true"),
            b'f' => self.lit(b"false"),
            b'n' => self.lit(b"null"),
            _ => self.number(),
        }
    }
    /// A string; returns its raw content (escapes still in place).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => {
                    // Canonical form escapes only quote and backslash.
                    match self.b.get(self.i + 1)? {
                        b'"' | b'\\' => self.i += 2,
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
        let raw = &self.b[start..self.i];
        // The fast path skips serde_json's validation of strings the typed
        // parse ignores: check UTF-8 here so both paths agree.
        std::str::from_utf8(raw).ok()?;
        self.i += 1;
        Some(raw)
    }
    fn number(&mut self) -> Option<()> {
        let start = self.i;
        let neg = self.eat(b'-').is_some();
        let digits_start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let digits = &self.b[digits_start..self.i];
        if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None; // floats are not canonical (and not allowed)
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        if neg {
            let v: i64 = text.parse().ok()?;
            (v != 0).then_some(()) // "-0" encodes as "0"
        } else {
            text.parse::<u64>().ok().map(|_| ())
        }
    }
    fn object(&mut self, depth: usize) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        let mut prev: Option<std::borrow::Cow<'a, [u8]>> = None;
        loop {
            let raw_key = self.string()?;
            let key = unescape(raw_key);
            if let Some(p) = &prev {
                if key.as_ref() <= p.as_ref() {
                    return None; // unsorted or duplicate
                }
            }
            self.eat(b':')?;
            if depth == 0 && key.as_ref() == b"_type" && self.peek() == Some(b'"') {
                let v = self.string()?;
                self.type_field = Some(String::from_utf8_lossy(&unescape(v)).into_owned());
            } else {
                self.value(depth + 1)?;
            }
            prev = Some(key);
            if self.eat(b',').is_none() {
                return self.eat(b'}');
            }
        }
    }
}

fn unescape(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !raw.contains(&b'\\') {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&c) = it.next() {
        if c == b'\\' {
            if let Some(&n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A `DeserializeSeed` that builds a `serde_json::Value` but refuses
/// duplicate keys in any object.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // Kept as a float so that the error names the number when the
        // document is encoded or a typed field is read.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(StrictValue)?;
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate object key {key:?}"
                )));
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        String::from_utf8(encode(&parse(s.as_bytes()).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        assert_eq!(
            canon(r#"{ "b": 1, "a": [true, false, null, "x"] }"#),
            r#"{"a":[true,false,null,"x"],"b":1}"#
        );
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        // securesystemslib writes control characters and non-ASCII raw.
        let v = Value::String("a\"b\\c\n\u{e9}\u{1}".into());
        assert_eq!(
            encode(&v).unwrap(),
            "\"a\\\"b\\\\c\n\u{e9}\u{1}\"".as_bytes()
        );
    }

    #[test]
    fn keys_sort_by_code_point() {
        assert_eq!(
            canon(r#"{"\u00e9":1,"z":2,"A":3,"_":4}"#),
            "{\"A\":3,\"_\":4,\"z\":2,\"\u{e9}\":1}"
        );
    }

    #[test]
    fn refuses_floats_and_huge_numbers() {
        assert!(matches!(
            encode(&parse(b"{\"a\":1.5}").unwrap()),
            Err(JsonError::NotAnInteger(_))
        ));
        assert!(matches!(
            encode(&parse(b"[1e3]").unwrap()),
            Err(JsonError::NotAnInteger(_))
        ));
        assert!(matches!(
            encode(&parse(b"[123456789012345678901234567890]").unwrap()),
            Err(JsonError::NotAnInteger(_))
        ));
        assert_eq!(
            canon("[-5, 18446744073709551615]"),
            "[-5,18446744073709551615]"
        );
    }

    #[test]
    fn refuses_duplicate_keys_at_any_depth() {
        assert!(parse(br#"{"a":1,"a":2}"#).is_err());
        let err = parse(br#"{"x":{"signed":1,"signed":2}}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate object key"), "{err}");
    }

    #[test]
    fn scan_agrees_with_the_encoder() {
        for doc in [
            r#"{"a":1,"b":[true,false,null,"x\\y\"z"],"c":{"_type":"inner"}}"#,
            r#"{"_type":"root","x":-5,"y":18446744073709551615}"#,
            "{}",
            "[]",
        ] {
            let v = parse(doc.as_bytes()).unwrap();
            assert_eq!(encode(&v).unwrap(), doc.as_bytes(), "{doc} is canonical");
            assert!(scan_canonical(doc.as_bytes()).is_some(), "{doc}");
        }
        let scan = scan_canonical(br#"{"_type":"root","x":{"_type":"no"}}"#).unwrap();
        assert_eq!(scan.type_field.as_deref(), Some("root"));
        for doc in [
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":1}"#,
            r#"{"a": 1}"#,
            r#"{"a":1.0}"#,
            r#"{"a":1e2}"#,
            r#"{"a":-0}"#,
            r#"{"a":01}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":"\n"}"#,
            r#"{"a":99999999999999999999}"#,
            "[1, 2]",
        ] {
            assert!(
                scan_canonical(doc.as_bytes()).is_none(),
                "{doc} is not canonical"
            );
        }
    }

    #[test]
    fn refuses_trailing_data_and_garbage() {
        assert!(parse(b"{} {}").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"{\"a\":").is_err());
        assert!(parse(&[0xff, 0xfe]).is_err());
        // Deep nesting is bounded by serde_json's recursion limit, not a stack overflow.
        let deep = "[".repeat(100_000);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
