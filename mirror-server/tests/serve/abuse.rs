//! Hostile clients: each attack gets the right status or a closed connection, nothing leaks
//! from outside the root, the process survives, and good clients keep being served.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::*;

#[test]
fn path_traversal_in_every_spelling_is_refused() {
    let m = Mirror::start(&[]);
    let cases: &[(&str, u16)] = &[
        ("/../../../../etc/passwd", 400),
        ("/authors/../../outside-secret.txt", 400),
        ("/%2e%2e/outside-secret.txt", 400),
        ("/%2E%2E/%2E%2E/etc/passwd", 400),
        ("/.%2e/outside-secret.txt", 400),
        ("/authors/%2e%2e%2f%2e%2e%2foutside-secret.txt", 400),
        ("/authors%2f..%2f..%2foutside-secret.txt", 400),
        ("/authors/..%5c..%5coutside-secret.txt", 400),
        ("/authors\\..\\..\\outside-secret.txt", 400),
        ("/timestamp.json%00.tar.gz", 400),
        ("/%c0%ae%c0%ae/etc/passwd", 400),
        ("/./timestamp.json", 400),
        // Symlinks out of the root, hidden names and special files: as if absent.
        ("/authors/id/E/escape", 404),
        ("/etc/passwd", 404),
        ("/.hidden", 404),
        ("/.sync-in-progress/timestamp.json", 404),
        ("/authors/fifo", 404),
    ];
    for (target, want) in cases {
        let r = m.send(&request("GET", target, &[]));
        assert_eq!(r.status, *want, "{target}");
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            !body.contains("outside") && !body.contains("root:"),
            "{target} leaked {body}"
        );
    }
    m.assert_healthy();
}

#[test]
fn absolute_form_targets_are_served_by_their_path_only() {
    let m = Mirror::start(&[]);
    // RFC 9112 §3.2.2: a server must accept absolute-form; the authority names no other file.
    let r = m.send(&request("GET", "https://evil.example/tiny.json", &[]));
    assert_eq!((r.status, &r.body[..]), (200, &b"{}"[..]));
    let r = m.send(&request(
        "GET",
        "http://localhost/../../outside-secret.txt",
        &[],
    ));
    assert!(r.status == 400 || r.status == 404, "{}", r.status);
    let r = m.send(&request(
        "GET",
        "http://localhost/%2e%2e/outside-secret.txt",
        &[],
    ));
    assert_eq!(r.status, 400);
    // authority-form outside CONNECT is malformed.
    let r = m.send(b"GET localhost:443 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(r.status, 400);
    m.assert_healthy();
}

#[test]
fn oversized_headers_get_431_and_the_server_stays_up() {
    let m = Mirror::start(&[]);
    // The server answers 431 as soon as the head passes its limit (16 KiB) and closes. A
    // 64 KiB head may still be in the client's write when that happens: the write then
    // fails and the connection reset can drop the 431 before the client reads it, so for
    // 64 KiB any answer seen must be a 431. A 24 KiB head fits in the socket buffers and is
    // read whole before the close: the 431 itself must be seen.
    let mut seen_431 = false;
    for (filler_len, tries) in [(64 * 1024, 3), (24 * 1024, 5)] {
        let huge = format!("X-Filler: {}", "a".repeat(filler_len));
        seen_431 = false;
        for _ in 0..tries {
            let mut s = m.tls();
            let _ = s
                .write_all(&request("GET", "/tiny.json", &[&huge]))
                .and_then(|()| s.flush());
            if let Some(r) = read_response(&mut s, false) {
                assert_eq!(r.status, 431);
                seen_431 = true;
                break;
            }
        }
    }
    assert!(seen_431, "no 431 answer in 5 tries");
    let many: Vec<String> = (0..500).map(|i| format!("X-H{i}: v")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let r = m.send(&request("GET", "/tiny.json", &many));
    assert!(r.status == 431 || r.status == 400, "{}", r.status);
    let long_target = format!("/{}", "a/".repeat(20_000));
    let r = m.send(&request("GET", &long_target, &[]));
    assert!(
        r.status == 431 || r.status == 414 || r.status == 400,
        "{}",
        r.status
    );
    m.assert_healthy();
}

#[test]
fn slowloris_is_cut_off_while_good_clients_are_served() {
    let m = Mirror::start(&["--header-timeout", "1s"]);
    let start = Instant::now();
    let mut slow: Vec<Tls> = (0..20).map(|_| m.tls()).collect();
    for s in &mut slow {
        s.write_all(b"GET /timestamp.json HTTP/1.1\r\nHost: local")
            .unwrap();
        s.flush().unwrap();
    }
    // Drip one header byte a tenth of a second: never a complete head.
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(100));
        for s in &mut slow {
            let _ = s.write_all(b"h").and_then(|()| s.flush());
        }
        m.assert_healthy();
    }
    for s in &mut slow {
        s.sock
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        assert!(
            closed_within(s, Duration::from_secs(5)),
            "slow client not cut off"
        );
    }
    assert!(start.elapsed() < Duration::from_secs(8));
    m.assert_healthy();
}

#[test]
fn idle_connections_are_closed() {
    let m = Mirror::start(&[
        "--idle-timeout",
        "1s",
        "--header-timeout",
        "30s",
        "--handshake-timeout",
        "1s",
    ]);
    let mut h2 = m.tls_with(&[b"h2"]);
    assert_eq!(h2.conn.alpn_protocol(), Some(&b"h2"[..]));
    h2.sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // An HTTP/2 client that says nothing after the handshake.
    assert!(
        closed_within(&mut h2, Duration::from_secs(5)),
        "idle h2 connection kept"
    );
    let mut raw = TcpStream::connect(m.https).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    let n = raw.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "silent TCP connection must be closed");
    assert!(m.metric("cpantuf_mirror_idle_timeouts_total") >= 1.0);
    m.assert_healthy();
}

#[test]
fn broken_tls_handshakes_do_not_hurt_anyone_else() {
    let m = Mirror::start(&["--handshake-timeout", "1s"]);
    // Plain HTTP to the TLS port, random bytes, a truncated ClientHello, an immediate close.
    let junk: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        &filler(3000, 9),
        &[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ],
        b"",
    ];
    let mut stalled = Vec::new();
    for bytes in junk {
        for _ in 0..5 {
            let mut s = TcpStream::connect(m.https).unwrap();
            s.write_all(bytes).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            stalled.push(s);
        }
    }
    m.assert_healthy();
    for s in &mut stalled {
        assert!(
            closed_within(s, Duration::from_secs(5)),
            "a broken handshake was kept open"
        );
    }
    let failures = m.metric("cpantuf_mirror_tls_handshake_failures_total")
        + m.metric("cpantuf_mirror_tls_handshake_timeouts_total");
    assert!(failures >= 15.0, "{failures}");
    m.assert_healthy();
}

#[test]
fn connection_limit_queues_clients_instead_of_failing_them() {
    let m = Mirror::start(&["--max-connections", "2"]);
    let a = m.tls();
    let b = m.tls();
    // A third client waits in the backlog, and is served once a slot frees up.
    let addr = m.https;
    let config = m.pki.client_config(&[b"http/1.1"]);
    let third = std::thread::spawn(move || {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let conn = rustls::ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(&request("GET", "/tiny.json", &[])).unwrap();
        read_response(&mut s, false).unwrap().status
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !third.is_finished(),
        "a third connection was served beyond the limit"
    );
    drop(a);
    assert_eq!(third.join().unwrap(), 200);
    drop(b);
}

/// Requests a hostile client sends on fresh connections, and what each may get back.
const MALFORMED: &[(&[u8], &[u16])] = &[
    (b"GARBAGE\r\n\r\n", &[400]),
    (b"GET\r\n\r\n", &[400]),
    (b"GET /timestamp.json HTTP/9.9\r\nHost: x\r\n\r\n", &[400, 505]),
    (b"GET /timestamp.json HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", &[400]),
    (b"GET /timestamp.json HTTP/1.1\r\nHost: x\r\nX: \x01\x02\r\n\r\n", &[400]),
    (
        b"POST /timestamp.json HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde",
        &[400],
    ),
    (
        b"POST /timestamp.json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        &[400, 405],
    ),
    (b"DELETE /timestamp.json HTTP/1.1\r\nHost: x\r\n\r\n", &[405]),
    (b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", &[400]),
    (b"GET /%2e%2e/outside-secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", &[400]),
    (b"GET /authors/id/E/escape HTTP/1.1\r\nHost: x\r\n\r\n", &[404]),
    (b"GET /timestamp.json%00 HTTP/1.1\r\nHost: x\r\n\r\n", &[400]),
    (b"GET /timestamp.json HTTP/1.1\r\nHost: x\r\nRange: bytes=999999-\r\n\r\n", &[416]),
    (b"GET /no/such/file HTTP/1.1\r\nHost: x\r\n\r\n", &[404]),
];

/// Hundreds of idle and slowloris connections held open at once (TLS connections that sent
/// half a request head, TCP connections that never start a handshake, and connections
/// stalled in the middle of a ClientHello), a stream of malformed and traversal requests,
/// and, throughout, good keep-alive clients whose every answer is checked byte for byte.
#[test]
fn hundreds_of_idle_connections_and_hostile_requests_while_good_clients_get_correct_answers() {
    const EACH: usize = 100;
    let m = Mirror::start(&["--header-timeout", "60s", "--handshake-timeout", "60s"]);
    let mut slow_heads: Vec<Tls> = (0..EACH).map(|_| m.tls()).collect();
    for s in &mut slow_heads {
        s.write_all(b"GET /timestamp.json HTTP/1.1\r\nHost: lo")
            .unwrap();
        s.flush().unwrap();
    }
    let silent: Vec<TcpStream> = (0..EACH)
        .map(|_| TcpStream::connect(m.https).unwrap())
        .collect();
    let half_hello: Vec<TcpStream> = (0..EACH)
        .map(|_| {
            let mut s = TcpStream::connect(m.https).unwrap();
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
                .unwrap();
            s
        })
        .collect();
    // Every one of them is held by the server, not refused or queued.
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.metric("cpantuf_mirror_connections_open") < (3 * EACH) as f64 {
        assert!(
            Instant::now() < deadline,
            "hostile connections not all accepted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let files: Vec<(&str, Vec<u8>)> = [
        "timestamp.json",
        "7.snapshot.json",
        "modules/02packages.details.txt.gz",
        "authors/id/E/EX/EXAMPLE/Foo-1.0.tar.gz",
        "authors/id/E/EX/EXAMPLE/CHECKSUMS",
    ]
    .into_iter()
    .map(|p| (p, std::fs::read(m.root.join(p)).unwrap()))
    .collect();
    let files = std::sync::Arc::new(files);
    const GOOD_CLIENTS: usize = 4;
    const REQUESTS: usize = 60;
    let good: Vec<_> = (0..GOOD_CLIENTS)
        .map(|c| {
            let files = files.clone();
            let mut s = m.tls();
            std::thread::spawn(move || {
                let mut correct = 0;
                for i in 0..REQUESTS {
                    let (path, want) = &files[(c + i) % files.len()];
                    s.write_all(&request("GET", &format!("/{path}"), &[]))
                        .unwrap();
                    s.flush().unwrap();
                    let r = read_response(&mut s, false).expect("a response on keep-alive");
                    assert_eq!(r.status, 200, "good client got {} for {path}", r.status);
                    assert!(r.body == *want, "good client got wrong bytes for {path}");
                    correct += 1;
                }
                correct
            })
        })
        .collect();
    let mut hostile_answers = 0;
    for round in 0..5 {
        for (raw, allowed) in MALFORMED {
            let mut s = m.tls();
            let _ = s.write_all(raw).and_then(|()| s.flush());
            // An answer must be an allowed status; closing without one is also fine.
            if let Some(r) = read_response(&mut s, false) {
                assert!(
                    allowed.contains(&r.status),
                    "round {round}: {:?} got {}",
                    String::from_utf8_lossy(raw),
                    r.status
                );
                let body = String::from_utf8_lossy(&r.body);
                assert!(!body.contains("outside") && !body.contains("root:"));
                hostile_answers += 1;
            }
        }
        // The slowloris clients keep dripping bytes.
        for s in &mut slow_heads {
            let _ = s.write_all(b"c").and_then(|()| s.flush());
        }
    }
    let correct: usize = good.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(correct, GOOD_CLIENTS * REQUESTS);
    assert!(hostile_answers >= MALFORMED.len(), "{hostile_answers}");
    // The hostile connections were still open throughout.
    let open = m.metric("cpantuf_mirror_connections_open");
    assert!(open >= (3 * EACH) as f64, "{open}");
    eprintln!(
        "{open} connections open ({} idle/slowloris), {hostile_answers} hostile requests \
         answered correctly, {correct}/{} good answers correct",
        3 * EACH,
        GOOD_CLIENTS * REQUESTS
    );
    m.assert_healthy();
    drop((slow_heads, silent, half_hello));
}
