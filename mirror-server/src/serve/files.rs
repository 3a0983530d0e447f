//! Static file responses with the HTTP semantics CPAN and TUF clients rely on: conditional GET
//! (`If-None-Match`/`ETag`, `If-Modified-Since`), `If-Match`/`If-Unmodified-Since`, HEAD,
//! single byte ranges with `If-Range`, gzip for metadata when the client accepts it, and a
//! `Cache-Control` lifetime chosen by what kind of file it is.
//!
//! Parsing and matching of the conditional and range headers is the `headers` crate's; this
//! module only applies them in the order RFC 9110 §13.2.2 prescribes.

use std::ops::Bound;

use headers::{
    ETag, HeaderMapExt as _, IfMatch, IfModifiedSince, IfNoneMatch, IfRange, IfUnmodifiedSince,
    LastModified, Range,
};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};

use super::body::Body;
use super::config::CachePolicy;
use super::entity::{FileEntity, FileKey};
use super::gzip::GzipCache;
use super::root::RequestPath;

/// Gzip copies of files up to this size are made on the request's thread.
const SMALL_FILE_BYTES: u64 = 128 * 1024;
/// Largest metadata file compressed for `Content-Encoding: gzip`.
const MAX_GZIP_SOURCE_BYTES: u64 = 32 * 1024 * 1024;
/// Smaller metadata is sent as is: gzip would save less than its own overhead.
const MIN_GZIP_SOURCE_BYTES: u64 = 512;

/// How long a file may be cached, decided from its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheClass {
    /// Content-addressed or versioned: `<sha256>.<name>`, `N.role.json`. Never changes.
    Immutable,
    /// Changes in place: `timestamp.json`, unversioned metadata, the PAUSE index files,
    /// `CHECKSUMS`.
    Mutable,
    /// Anything else (release tarballs: written once, but may be deleted).
    Default,
}

impl CacheClass {
    /// Classifies a request path.
    pub fn of(path: &RequestPath) -> Self {
        let name = path.file_name();
        if is_hash_prefixed(name) || is_versioned_metadata(name) {
            return CacheClass::Immutable;
        }
        let top = path.as_str().split('/').next().unwrap_or("");
        let is_index = top == "modules"
            || name == "CHECKSUMS"
            || name == "01mailrc.txt.gz"
            || name.ends_with(".json");
        if is_index {
            CacheClass::Mutable
        } else {
            CacheClass::Default
        }
    }

    fn header(self, policy: &CachePolicy) -> HeaderValue {
        match self {
            CacheClass::Immutable => {
                HeaderValue::from_static("public, max-age=31536000, immutable")
            }
            CacheClass::Mutable => max_age(policy.short_max_age.as_secs()),
            CacheClass::Default => max_age(policy.default_max_age.as_secs()),
        }
    }
}

fn max_age(secs: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={secs}")).expect("ASCII header value")
}

/// `<64 hex digits>.<rest>`: a consistent-snapshot target name.
fn is_hash_prefixed(name: &str) -> bool {
    matches!(name.split_once('.'), Some((hash, rest))
        if hash.len() == 64 && !rest.is_empty() && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `<version>.<role>.json`: a consistent-snapshot metadata file.
fn is_versioned_metadata(name: &str) -> bool {
    matches!(name.strip_suffix(".json").and_then(|n| n.split_once('.')),
        Some((version, role)) if !version.is_empty() && !role.is_empty()
            && version.bytes().all(|b| b.is_ascii_digit()))
}

/// TUF metadata: worth compressing, and served as JSON.
fn is_metadata(name: &str) -> bool {
    name.ends_with(".json")
}

fn content_type(name: &str) -> &'static str {
    // CPAN clients treat every `.gz` as an opaque gzip file: it must never be labelled with a
    // Content-Encoding, or an HTTP library would unpack it on the way.
    let ext = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    match ext {
        "json" => "application/json",
        "gz" | "tgz" => "application/x-gzip",
        "bz2" => "application/x-bzip2",
        "zip" => "application/zip",
        "txt" | "readme" | "meta" | "yml" | "pm" | "pl" | "pod" | "asc" | "sig" => {
            "text/plain; charset=utf-8"
        }
        _ if name == "CHECKSUMS" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Builds the response for GET or HEAD of an opened file.
pub async fn respond(
    method: &Method,
    req: &HeaderMap,
    path: &RequestPath,
    entity: FileEntity,
    policy: &CachePolicy,
    gzip: &GzipCache,
) -> std::io::Result<Response<Body>> {
    let name = path.file_name();
    let compressible = is_metadata(name)
        && (MIN_GZIP_SOURCE_BYTES..=MAX_GZIP_SOURCE_BYTES).contains(&entity.len());
    let use_gzip = compressible && accepts_gzip(req);

    let modified = entity.modified();
    let etag_str = entity.etag(use_gzip);
    let etag: ETag = etag_str.parse().expect("well-formed entity tag");

    let mut head = HeaderMap::with_capacity(10);
    head.insert(header::CACHE_CONTROL, CacheClass::of(path).header(policy));
    head.insert(
        header::ETAG,
        HeaderValue::from_str(&etag_str).expect("ASCII"),
    );
    head.typed_insert(LastModified::from(modified));
    head.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if compressible {
        head.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }

    // RFC 9110 §13.2.2, steps 1-4. A header that does not parse is ignored, as the RFC says.
    let precondition_failed = match req.typed_get::<IfMatch>() {
        Some(if_match) => !if_match.precondition_passes(&etag),
        None => req
            .typed_get::<IfUnmodifiedSince>()
            .is_some_and(|since| !since.precondition_passes(modified)),
    };
    if precondition_failed {
        return Ok(with_head(
            StatusCode::PRECONDITION_FAILED,
            head,
            Body::empty(),
        ));
    }
    let not_modified = match req.typed_get::<IfNoneMatch>() {
        Some(if_none_match) => !if_none_match.precondition_passes(&etag),
        None => req
            .typed_get::<IfModifiedSince>()
            .is_some_and(|since| !since.is_modified(modified)),
    };
    if not_modified {
        return Ok(with_head(StatusCode::NOT_MODIFIED, head, Body::empty()));
    }

    // The selected representation: the file itself, or its gzip copy.
    let entity = if use_gzip {
        let key = entity.key;
        let compressed = if entity.len() <= SMALL_FILE_BYTES {
            gzip.get_or_compress_now(key, entity.read_all()?)?
        } else {
            gzip.get_or_compress(key, move || entity.read_all()).await?
        };
        let len = compressed.len() as u64;
        FileEntity::memory(compressed, FileKey { len, ..key })
    } else {
        entity
    };
    let total = entity.len();
    head.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    if use_gzip {
        head.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }

    // Step 5: a Range is honoured on GET only, and only while If-Range still matches.
    let mut status = StatusCode::OK;
    let mut span = 0..total;
    let range = (method == Method::GET)
        .then(|| req.typed_get::<Range>())
        .flatten()
        .filter(|_| {
            req.typed_get::<IfRange>()
                .is_none_or(|if_range| !if_range.is_modified(Some(&etag), Some(&modified.into())))
        });
    if let Some(range) = range {
        match resolve_range(&range, total) {
            RangeOutcome::Single(r) => {
                status = StatusCode::PARTIAL_CONTENT;
                head.typed_insert(
                    headers::ContentRange::bytes(r.clone(), total).expect("valid range"),
                );
                span = r;
            }
            RangeOutcome::Unsatisfiable => {
                head.typed_insert(headers::ContentRange::unsatisfied_bytes(total));
                head.remove(header::CONTENT_TYPE);
                head.remove(header::CONTENT_ENCODING);
                return Ok(with_head(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    head,
                    Body::empty(),
                ));
            }
            // Several ranges: RFC 9110 lets a server send the whole representation instead.
            RangeOutcome::Ignore => {}
        }
    }
    let len = span.end - span.start;
    head.insert(header::CONTENT_LENGTH, HeaderValue::from(len));

    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        entity.into_body(span)
    };
    Ok(with_head(status, head, body))
}

fn with_head(status: StatusCode, head: HeaderMap, body: Body) -> Response<Body> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    *res.headers_mut() = head;
    res
}

enum RangeOutcome {
    Single(std::ops::Range<u64>),
    Unsatisfiable,
    Ignore,
}

fn resolve_range(range: &Range, total: u64) -> RangeOutcome {
    let mut specs = range.satisfiable_ranges(total).peekable();
    let Some((start, end)) = specs.next() else {
        // `headers` drops a suffix range longer than the file; RFC 9110 §14.1.3 says to send
        // the whole file then. Anything else that yields no range is unsatisfiable.
        return if total > 0 && is_single_suffix(range) {
            RangeOutcome::Single(0..total)
        } else {
            RangeOutcome::Unsatisfiable
        };
    };
    if specs.peek().is_some() {
        return RangeOutcome::Ignore;
    }
    let start = match start {
        Bound::Included(s) => s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match end {
        Bound::Included(e) => e.saturating_add(1).min(total),
        Bound::Excluded(e) => e.min(total),
        Bound::Unbounded => total,
    };
    if start >= total || start >= end {
        return RangeOutcome::Unsatisfiable;
    }
    RangeOutcome::Single(start..end)
}

fn is_single_suffix(range: &Range) -> bool {
    // Re-encode to inspect the original spec: `bytes=-N` with N > 0 and nothing else.
    let mut map = HeaderMap::new();
    map.typed_insert(range.clone());
    map.get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes=-"))
        .is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 0))
}

/// True if the client prefers `Content-Encoding: gzip` to no encoding (RFC 9110 §12.5.3).
pub fn accepts_gzip(req: &HeaderMap) -> bool {
    let (mut gzip, mut identity, mut star) = (None, None, None);
    for value in req.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let mut q = Some(1000u16);
            for param in parts {
                if let Some((k, v)) = param.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = parse_qvalue(v.trim());
                    }
                }
            }
            let Some(q) = q else { return false };
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(q);
            } else if coding.eq_ignore_ascii_case("identity") {
                identity = Some(q);
            } else if coding == "*" {
                star = Some(q);
            }
        }
    }
    let gzip = gzip.or(star).unwrap_or(0);
    let identity = identity.or(star).unwrap_or(1);
    gzip > 0 && gzip >= identity
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, as thousandths.
fn parse_qvalue(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_val = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(frac_val),
        "1" if frac_val == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(p: &str) -> CacheClass {
        CacheClass::of(&RequestPath::parse(p).unwrap())
    }

    #[test]
    fn cache_classes_follow_the_file_naming() {
        use CacheClass::*;
        let hash = "a".repeat(64);
        assert_eq!(class("/timestamp.json"), Mutable);
        assert_eq!(class("/snapshot.json"), Mutable);
        assert_eq!(class("/root.json"), Mutable);
        assert_eq!(class("/12.snapshot.json"), Immutable);
        assert_eq!(class("/3.A.AB.json"), Immutable);
        assert_eq!(
            class(&format!("/authors/id/A/AB/ABC/{hash}.Foo-1.0.tar.gz")),
            Immutable
        );
        assert_eq!(
            class(&format!("/modules/{hash}.02packages.details.txt.gz")),
            Immutable
        );
        assert_eq!(class("/modules/02packages.details.txt.gz"), Mutable);
        assert_eq!(class("/authors/01mailrc.txt.gz"), Mutable);
        assert_eq!(class("/authors/id/A/AB/ABC/CHECKSUMS"), Mutable);
        assert_eq!(class("/authors/id/A/AB/ABC/Foo-1.0.tar.gz"), Default);
        assert_eq!(class("/authors/id/A/AB/ABC/Foo-1.0.meta"), Default);
        assert_eq!(class(&format!("/{}.tar.gz", "g".repeat(64))), Default);
    }

    #[test]
    fn gz_files_are_never_content_encoded() {
        assert_eq!(
            content_type("02packages.details.txt.gz"),
            "application/x-gzip"
        );
        assert_eq!(content_type("Foo-1.0.tar.gz"), "application/x-gzip");
        assert_eq!(content_type("CHECKSUMS"), "text/plain; charset=utf-8");
        assert_eq!(content_type("12.snapshot.json"), "application/json");
        assert_eq!(content_type("Foo-1.0.tar.bz2"), "application/x-bzip2");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }

    fn ae(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn accept_encoding_follows_qvalues() {
        assert!(accepts_gzip(&ae("gzip")));
        assert!(accepts_gzip(&ae("deflate, gzip;q=0.5")));
        assert!(accepts_gzip(&ae("x-gzip")));
        assert!(accepts_gzip(&ae("*")));
        assert!(accepts_gzip(&ae("gzip;q=1.0, identity;q=0.5")));
        assert!(!accepts_gzip(&HeaderMap::new()));
        assert!(!accepts_gzip(&ae("identity")));
        assert!(!accepts_gzip(&ae("gzip;q=0")));
        assert!(!accepts_gzip(&ae("br, deflate")));
        assert!(!accepts_gzip(&ae("gzip;q=0.5, identity")));
        assert!(!accepts_gzip(&ae("*;q=0")));
        assert!(
            !accepts_gzip(&ae("gzip;q=2")),
            "malformed qvalue: stay with identity"
        );
    }

    fn range(v: &str) -> Range {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        h.typed_get::<Range>().unwrap()
    }

    #[test]
    fn ranges_resolve_like_rfc_9110() {
        let single = |v: &str| match resolve_range(&range(v), 100) {
            RangeOutcome::Single(r) => Some(r),
            _ => None,
        };
        assert_eq!(single("bytes=0-9"), Some(0..10));
        assert_eq!(single("bytes=90-"), Some(90..100));
        assert_eq!(single("bytes=90-1000"), Some(90..100));
        assert_eq!(single("bytes=-10"), Some(90..100));
        assert_eq!(single("bytes=-1000"), Some(0..100));
        assert!(matches!(
            resolve_range(&range("bytes=100-"), 100),
            RangeOutcome::Unsatisfiable
        ));
        assert!(matches!(
            resolve_range(&range("bytes=5-3"), 100),
            RangeOutcome::Unsatisfiable
        ));
        assert!(matches!(
            resolve_range(&range("bytes=0-1,5-6"), 100),
            RangeOutcome::Ignore
        ));
    }
}
