//! The HTTP semantics CPAN and TUF clients rely on.

use crate::harness::*;

#[test]
fn get_serves_the_bytes_with_validators_and_types() {
    let m = Mirror::start(&[]);
    let r = m.get("/authors/id/E/EX/EXAMPLE/Foo-1.0.tar.gz", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, filler(20 * 1024, 3));
    assert_eq!(r.header("content-type"), Some("application/x-gzip"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.header("etag").unwrap().starts_with('"'));
    assert!(r.header("last-modified").unwrap().ends_with(" GMT"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));

    let big = m.get("/authors/id/B/BI/BIG/Big-1.0.tar.gz", &[]);
    assert_eq!(big.status, 200);
    assert_eq!(big.body.len(), BIG_LEN);
    assert_eq!(
        big.body,
        filler(BIG_LEN, 4),
        "streamed from disk, byte for byte"
    );
}

#[test]
fn head_sends_the_headers_of_get_and_no_body() {
    let m = Mirror::start(&[]);
    let mut s = m.tls();
    use std::io::Write as _;
    let path = "/authors/id/B/BI/BIG/Big-1.0.tar.gz";
    s.write_all(&request("HEAD", path, &[])).unwrap();
    let head = read_response(&mut s, true).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(BIG_LEN.to_string().as_str())
    );
    // The same connection goes on: no body bytes were left in the stream.
    s.write_all(&request("GET", "/tiny.json", &[])).unwrap();
    let next = read_response(&mut s, false).unwrap();
    assert_eq!((next.status, &next.body[..]), (200, &b"{}"[..]));
    let get = m.get(path, &[]);
    assert_eq!(head.header("etag"), get.header("etag"));
}

#[test]
fn conditional_get_answers_304_when_the_client_copy_is_current() {
    let m = Mirror::start(&[]);
    let path = "/modules/02packages.details.txt.gz";
    let first = m.get(path, &[]);
    let etag = first.header("etag").unwrap().to_owned();
    let lm = first.header("last-modified").unwrap().to_owned();

    // cpanm's LWP and HTTP::Tiny backends mirror with If-Modified-Since.
    let r = m.get(path, &[&format!("If-Modified-Since: {lm}")]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert!(
        r.header("cache-control").is_some(),
        "304 repeats Cache-Control"
    );

    let r = m.get(path, &[&format!("If-None-Match: {etag}")]);
    assert_eq!(r.status, 304);
    let r = m.get(path, &[&format!("If-None-Match: \"other\", {etag}")]);
    assert_eq!(r.status, 304);
    let r = m.get(path, &["If-None-Match: *"]);
    assert_eq!(r.status, 304);

    // Stale validators get the full body. If-None-Match wins over If-Modified-Since.
    let r = m.get(
        path,
        &[
            "If-None-Match: \"stale\"",
            &format!("If-Modified-Since: {lm}"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, first.body);
    let r = m.get(path, &["If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT"]);
    assert_eq!(r.status, 200);
    // An unparseable date is ignored (RFC 9110), not an error.
    let r = m.get(path, &["If-Modified-Since: yesterday-ish"]);
    assert_eq!(r.status, 200);

    // After the file changes, the old validators no longer match.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_atomic(
        &m.root.join("modules/02packages.details.txt.gz"),
        &gzip(b"new index"),
    );
    let r = m.get(path, &[&format!("If-None-Match: {etag}")]);
    assert_eq!(r.status, 200);
    assert_eq!(gunzip(&r.body), b"new index");
    assert_ne!(r.header("etag"), Some(etag.as_str()));
}

#[test]
fn preconditions_that_fail_give_412() {
    let m = Mirror::start(&[]);
    let r = m.get("/timestamp.json", &["If-Match: \"not-it\""]);
    assert_eq!(r.status, 412);
    let etag = m
        .get("/timestamp.json", &[])
        .header("etag")
        .unwrap()
        .to_owned();
    assert_eq!(
        m.get("/timestamp.json", &[&format!("If-Match: {etag}")])
            .status,
        200
    );
    let r = m.get(
        "/timestamp.json",
        &["If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT"],
    );
    assert_eq!(r.status, 412);
}

#[test]
fn byte_ranges_resume_downloads() {
    let m = Mirror::start(&[]);
    let path = "/authors/id/B/BI/BIG/Big-1.0.tar.gz";
    let all = filler(BIG_LEN, 4);
    let r = m.get(path, &["Range: bytes=1000-1999"]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &all[1000..2000]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 1000-1999/{BIG_LEN}").as_str())
    );

    let r = m.get(path, &["Range: bytes=-100"]);
    assert_eq!((r.status, &r.body[..]), (206, &all[BIG_LEN - 100..]));
    let r = m.get(path, &["Range: bytes=3145000-"]);
    assert_eq!((r.status, &r.body[..]), (206, &all[3_145_000..]));

    let r = m.get(path, &[&format!("Range: bytes={BIG_LEN}-")]);
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{BIG_LEN}").as_str())
    );

    // If-Range with the current validator: the range; with a stale one: the whole file.
    let etag = m.get("/tiny.json", &[]).header("etag").unwrap().to_owned();
    let r = m.get(
        "/tiny.json",
        &["Range: bytes=0-0", &format!("If-Range: {etag}")],
    );
    assert_eq!((r.status, &r.body[..]), (206, &b"{"[..]));
    let r = m.get("/tiny.json", &["Range: bytes=0-0", "If-Range: \"stale\""]);
    assert_eq!((r.status, &r.body[..]), (200, &b"{}"[..]));

    // Several ranges: served whole rather than as multipart.
    let r = m.get("/tiny.json", &["Range: bytes=0-0,1-1"]);
    assert_eq!((r.status, &r.body[..]), (200, &b"{}"[..]));
}

#[test]
fn metadata_is_gzipped_when_accepted_and_gz_files_never_are() {
    let m = Mirror::start(&[]);
    let plain = std::fs::read(m.root.join("7.snapshot.json")).unwrap();
    let r = m.get("/7.snapshot.json", &["Accept-Encoding: gzip, deflate"]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("vary"), Some("accept-encoding"));
    assert!(r.body.len() < plain.len());
    assert_eq!(gunzip(&r.body), plain);
    let gz_etag = r.header("etag").unwrap().to_owned();

    let r = m.get("/7.snapshot.json", &[]);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, plain);
    assert_ne!(
        r.header("etag"),
        Some(gz_etag.as_str()),
        "each encoding has its own ETag"
    );
    let r = m.get("/7.snapshot.json", &["Accept-Encoding: gzip;q=0, identity"]);
    assert_eq!(r.header("content-encoding"), None);
    let r = m.get(
        "/7.snapshot.json",
        &[
            "Accept-Encoding: gzip",
            &format!("If-None-Match: {gz_etag}"),
        ],
    );
    assert_eq!(r.status, 304);

    // A .gz file is the representation itself: a client would otherwise unpack it in flight.
    let r = m.get(
        "/modules/02packages.details.txt.gz",
        &["Accept-Encoding: gzip"],
    );
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(
        r.body,
        std::fs::read(m.root.join("modules/02packages.details.txt.gz")).unwrap()
    );
}

#[test]
fn cache_lifetimes_follow_the_kind_of_file() {
    let m = Mirror::start(&[]);
    let cc = |p: &str| m.get(p, &[]).header("cache-control").unwrap().to_owned();
    let long = "public, max-age=31536000, immutable";
    assert_eq!(cc("/7.snapshot.json"), long);
    assert_eq!(cc("/1.root.json"), long);
    let hashed = std::fs::read_dir(m.root.join("authors/id/E/EX/EXAMPLE"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.len() > 64 && n.as_bytes()[64] == b'.')
        .unwrap();
    assert_eq!(cc(&format!("/authors/id/E/EX/EXAMPLE/{hashed}")), long);
    assert_eq!(cc("/timestamp.json"), "public, max-age=60");
    assert_eq!(cc("/snapshot.json"), "public, max-age=60");
    assert_eq!(
        cc("/modules/02packages.details.txt.gz"),
        "public, max-age=60"
    );
    assert_eq!(cc("/authors/01mailrc.txt.gz"), "public, max-age=60");
    assert_eq!(
        cc("/authors/id/E/EX/EXAMPLE/CHECKSUMS"),
        "public, max-age=60"
    );
    assert_eq!(
        cc("/authors/id/E/EX/EXAMPLE/Foo-1.0.tar.gz"),
        "public, max-age=3600"
    );
    // A 404 (how a TUF client learns there is no newer root) must not be cached for long.
    let r = m.get("/2.root.json", &[]);
    assert_eq!(
        (r.status, r.header("cache-control")),
        (404, Some("no-cache"))
    );
}

#[test]
fn missing_files_directories_and_other_methods() {
    let m = Mirror::start(&[]);
    assert_eq!(
        m.get("/authors/id/X/XY/NOBODY/Nothing-1.tar.gz", &[])
            .status,
        404
    );
    assert_eq!(
        m.get("/authors/id/E/EX/EXAMPLE/Foo-1.0.tar.gz/more", &[])
            .status,
        404
    );
    assert_eq!(m.get("/authors/id/", &[]).status, 404);
    assert_eq!(m.get("/", &[]).status, 404);
    let r = m.send(&request("POST", "/timestamp.json", &["Content-Length: 0"]));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    for method in ["PUT", "DELETE", "PATCH", "TRACE"] {
        assert_eq!(
            m.send(&request(method, "/timestamp.json", &["Content-Length: 0"]))
                .status,
            405
        );
    }
    assert_eq!(m.send(&request("OPTIONS", "*", &[])).status, 204);
    // A query string does not change which file is served.
    assert_eq!(m.get("/tiny.json?x=1", &[]).body, b"{}");
}

#[test]
fn http2_is_negotiated_by_alpn() {
    let m = Mirror::start(&[]);
    let s = m.tls_with(&[b"h2", b"http/1.1"]);
    assert_eq!(s.conn.alpn_protocol(), Some(&b"h2"[..]));
    drop(s);
    // A real HTTP/2 exchange, when curl is there to make one.
    let Ok(out) = std::process::Command::new("curl")
        .args([
            "-sS",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .arg("--cacert")
        .arg(&m.pki.ca_pem)
        .arg(format!(
            "https://localhost:{}/timestamp.json",
            m.https.port()
        ))
        .output()
    else {
        eprintln!("curl not found: HTTP/2 exchange not tested");
        return;
    };
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200", "{out:?}");
}

#[test]
fn plain_http_is_served_on_loopback_and_refused_elsewhere() {
    let m = Mirror::start(&[]);
    use std::io::Write as _;
    let mut s = std::net::TcpStream::connect(m.http).unwrap();
    s.write_all(&request("GET", "/tiny.json", &[])).unwrap();
    let r = read_response(&mut s, false).unwrap();
    assert_eq!((r.status, &r.body[..]), (200, &b"{}"[..]));

    let out = std::process::Command::new(BIN)
        .args(["serve", "--root"])
        .arg(&m.root)
        .args(["--http-listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only offered on loopback"));
}

#[test]
fn health_metrics_and_access_log() {
    let m = Mirror::start(&[]);
    m.get("/timestamp.json", &["User-Agent: cpanminus/1.7046"]);
    m.get("/nothing-here", &[]);
    let r = m.get("/-/health", &[]);
    assert_eq!((r.status, &r.body[..]), (200, &b"200 ok\n"[..]));
    assert_eq!(m.admin_get("/health").status, 200);
    let metrics = m.admin_get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    assert!(m.metric("cpantuf_mirror_responses_total{status=\"404\"}") >= 1.0);
    assert!(m.metric("cpantuf_mirror_responses_total{status=\"200\"}") >= 2.0);
    assert!(m.metric("cpantuf_mirror_response_bytes_total") > 0.0);
    let log = m.access_log(3);
    let line = log.lines().find(|l| l.contains("/timestamp.json")).unwrap();
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains("\"GET /timestamp.json HTTP/1.1\" 200 "),
        "{line}"
    );
    assert!(line.contains("\"cpanminus/1.7046\""), "{line}");
    assert!(line.ends_with(" tls complete"), "{line}");
    assert!(log.contains("\"GET /nothing-here HTTP/1.1\" 404 "));
}
