//! Certificate reload, atomic root switches and graceful shutdown.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use crate::harness::*;

fn peer_cert(s: &Tls) -> Vec<u8> {
    s.conn.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn a_new_certificate_is_used_without_dropping_connections() {
    let m = Mirror::start(&["--reload-interval", "1h"]);
    let mut old = m.tls();
    let first = peer_cert(&old);
    let second = m.pki.issue("second");
    assert_ne!(first, second);
    m.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while peer_cert(&m.tls()) != second {
        assert!(
            Instant::now() < deadline,
            "certificate not reloaded on SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The connection made before the reload still works.
    old.write_all(&request("GET", "/tiny.json", &[])).unwrap();
    let r = read_response(&mut old, false).unwrap();
    assert_eq!((r.status, &r.body[..]), (200, &b"{}"[..]));

    // Without a signal, a changed file is picked up by the periodic check too.
    let m = Mirror::start(&["--reload-interval", "100ms"]);
    let third = m.pki.issue("third");
    let deadline = Instant::now() + Duration::from_secs(10);
    while peer_cert(&m.tls()) != third {
        assert!(
            Instant::now() < deadline,
            "changed certificate not picked up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(m.metric("cpantuf_mirror_cert_reloads_total"), 1.0);
}

#[test]
fn a_broken_certificate_is_refused_and_the_old_one_kept() {
    let m = Mirror::start(&["--reload-interval", "100ms"]);
    let before = peer_cert(&m.tls());
    write_atomic(
        &m.pki.cert,
        b"-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.metric("cpantuf_mirror_cert_reload_failures_total") < 1.0 {
        assert!(Instant::now() < deadline, "broken certificate not noticed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(peer_cert(&m.tls()), before);
    m.assert_healthy();
    assert!(m.stderr().contains("certificate reload refused"));
}

#[test]
fn switching_the_root_symlink_switches_whole_states() {
    let dir = tempfile::tempdir().unwrap();
    for (state, version) in [("state-1", 1), ("state-2", 2)] {
        let root = dir.path().join(state);
        std::fs::create_dir(&root).unwrap();
        std::fs::write(
            root.join("timestamp.json"),
            metadata_json("timestamp", version, 600),
        )
        .unwrap();
        std::fs::write(root.join(format!("{version}.snapshot.json")), b"{}").unwrap();
    }
    let current = dir.path().join("current");
    std::os::unix::fs::symlink("state-1", &current).unwrap();
    let m = Mirror::start_on(dir, current.clone(), &["--reload-interval", "1h"]);
    let ts = |m: &Mirror| m.get("/timestamp.json", &[]).body;
    let v1 = metadata_json("timestamp", 1, 600);
    assert_eq!(ts(&m), v1);
    assert_eq!(m.get("/1.snapshot.json", &[]).status, 200);
    assert_eq!(m.get("/2.snapshot.json", &[]).status, 404);

    // The way a sync publishes: a new link renamed over the old one, then SIGHUP.
    std::os::unix::fs::symlink("state-2", m.dir.path().join("next")).unwrap();
    std::fs::rename(m.dir.path().join("next"), &current).unwrap();
    m.signal("HUP");
    let v2 = metadata_json("timestamp", 2, 600);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ts(&m) != v2 {
        assert!(Instant::now() < deadline, "root switch not followed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(m.get("/2.snapshot.json", &[]).status, 200);
    assert_eq!(m.get("/1.snapshot.json", &[]).status, 404);
    assert_eq!(m.metric("cpantuf_mirror_root_switches_total"), 1.0);
}

#[test]
fn sigterm_finishes_downloads_in_flight_then_exits() {
    let mut m = Mirror::start(&["--shutdown-timeout", "20s"]);
    let mut s = m.tls();
    s.write_all(&request("GET", "/authors/id/B/BI/BIG/Big-1.0.tar.gz", &[]))
        .unwrap();
    let mut first = [0u8; 1024];
    s.read_exact(&mut first).unwrap();
    m.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    // No new connections once stopping.
    assert!(
        std::net::TcpStream::connect(m.https).is_err(),
        "still accepting after SIGTERM"
    );
    // The download in flight completes.
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).ok();
    let text = [&first[..], &rest[..]].concat();
    let body_at = text.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = &text[body_at..];
    assert_eq!(
        body.len(),
        BIG_LEN,
        "{}",
        String::from_utf8_lossy(&text[..body_at])
    );
    assert!(body == &filler(BIG_LEN, 4)[..], "body differs");
    let status = m
        .wait_exit(Duration::from_secs(10))
        .expect("exits after draining");
    assert!(status.success(), "{status:?}\n{}", m.stderr());
}

#[test]
fn sigterm_does_not_wait_forever_for_a_stuck_client() {
    let mut m = Mirror::start(&["--shutdown-timeout", "1s", "--idle-timeout", "1h"]);
    // Far more than the socket buffers hold (sparse: costs no disk).
    let huge = std::fs::File::create(m.root.join("huge.bin")).unwrap();
    huge.set_len(1 << 30).unwrap();
    let mut s = m.tls();
    // Ask for it and never read: the response cannot finish.
    s.write_all(&request("GET", "/huge.bin", &[])).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    m.signal("TERM");
    let status = m
        .wait_exit(Duration::from_secs(10))
        .expect("exits after the shutdown timeout");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !m.stderr().contains("shutdown timeout") {
        assert!(Instant::now() < deadline, "{}", m.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn aes128_gcm_is_preferred_unless_the_client_leads_with_chacha20() {
    use rustls::CipherSuite as S;
    let m = Mirror::start(&[]);
    let negotiated = |suites: Option<&[S]>| {
        let tcp = std::net::TcpStream::connect(m.https).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let conn = rustls::ClientConnection::new(
            m.pki.client_config_offering(&[b"http/1.1"], suites),
            "localhost".try_into().unwrap(),
        )
        .unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).expect("TLS handshake");
        }
        s.conn.negotiated_cipher_suite().unwrap().suite()
    };
    // rustls' and OpenSSL's default order lead with AES-256-GCM: the server picks AES-128.
    assert_eq!(negotiated(None), S::TLS13_AES_128_GCM_SHA256);
    assert_eq!(
        negotiated(Some(&[
            S::TLS13_AES_256_GCM_SHA384,
            S::TLS13_AES_128_GCM_SHA256
        ])),
        S::TLS13_AES_128_GCM_SHA256
    );
    // A client without AES hardware leads with ChaCha20: its order is followed.
    assert_eq!(
        negotiated(Some(&[
            S::TLS13_CHACHA20_POLY1305_SHA256,
            S::TLS13_AES_256_GCM_SHA384,
            S::TLS13_AES_128_GCM_SHA256
        ])),
        S::TLS13_CHACHA20_POLY1305_SHA256
    );
    // What a client offers is all it can get.
    assert_eq!(
        negotiated(Some(&[S::TLS13_AES_256_GCM_SHA384])),
        S::TLS13_AES_256_GCM_SHA384
    );
    // TLS 1.2 clients too.
    assert_eq!(
        negotiated(Some(&[
            S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        ])),
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    );
    m.assert_healthy();
}
