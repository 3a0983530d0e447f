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

fn write_string(out: &mut Vec<u8>, s: &str) {
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
