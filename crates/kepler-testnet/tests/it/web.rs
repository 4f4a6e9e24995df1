//! The fixture web servers seen from outside: rustls against the written CA,
//! plain TCP, and a hand-made TLS 1.0 ClientHello.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use rustls::CertificateError;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{self, has_ipv6, http_get, https_get};

const STRONG: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 10, 10));
const MIXED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 10, 20));
const WEAK: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 10, 30));
const EXPIRED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 10, 40));
const SLOW: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 10, 60));
const DOWN: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 10, 70));
const CDN: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 10, 80));

#[tokio::test]
async fn strong_serves_every_header_right_over_verified_https() {
    let net = support::start().await;
    let response = https_get(&net.net, STRONG, "strong.test", "/")
        .await
        .expect("HTTPS to strong.test");
    assert_eq!(response.status, 200);
    for (name, value) in [
        (
            "strict-transport-security",
            "max-age=63072000; includeSubDomains; preload",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("cross-origin-embedder-policy", "require-corp"),
    ] {
        assert_eq!(response.header(name), Some(value), "{name}");
    }
    let csp = response.header("content-security-policy").expect("CSP");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{csp} lacks {directive}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let cookie = response.header("set-cookie").expect("a cookie");
    assert!(cookie.starts_with("__Host-session="), "{cookie}");
    for attr in ["; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert_eq!(response.header("access-control-allow-origin"), None);
    assert!(
        response.body.contains("<script src=\"/app.js\""),
        "{}",
        response.body
    );
    assert!(
        response
            .body
            .contains("src=\"https://cdn.test/widget.js\" integrity=\"sha384-"),
        "{}",
        response.body
    );
    assert!(response.body.contains("crossorigin=\"anonymous\""));

    // The SRI hash is the real hash of what cdn.test serves.
    let widget = https_get(&net.net, CDN, "cdn.test", "/widget.js")
        .await
        .expect("widget");
    assert_eq!(widget.status, 200);
    assert_eq!(widget.header("access-control-allow-origin"), Some("*"));
    let digest = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha384::digest(widget.body.as_bytes()))
    };
    assert!(
        response
            .body
            .contains(&format!("integrity=\"sha384-{digest}\"")),
        "SRI does not match the widget"
    );
    net.net.shutdown().await;
}

#[tokio::test]
async fn strong_policies_are_served_over_https() {
    let net = support::start().await;
    let security = https_get(&net.net, STRONG, "strong.test", "/.well-known/security.txt")
        .await
        .expect("security.txt");
    assert_eq!(security.status, 200);
    assert!(
        security
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    for field in [
        "Contact: mailto:security@strong.test",
        "Expires: ",
        "Preferred-Languages: en",
        "Canonical: https://strong.test/.well-known/security.txt",
    ] {
        assert!(security.body.contains(field), "{}", security.body);
    }
    let expires = security
        .body
        .lines()
        .find_map(|l| l.strip_prefix("Expires: "))
        .expect("Expires");
    let expires = chrono::DateTime::parse_from_rfc3339(expires).expect("RFC 3339");
    let ahead = expires.signed_duration_since(chrono::Utc::now());
    assert!(
        ahead > chrono::Duration::days(360) && ahead <= chrono::Duration::days(366),
        "{ahead}"
    );

    let policy = https_get(
        &net.net,
        STRONG,
        "mta-sts.strong.test",
        "/.well-known/mta-sts.txt",
    )
    .await
    .expect("mta-sts.txt");
    assert_eq!(policy.status, 200);
    let lines: Vec<&str> = policy.body.lines().map(str::trim_end).collect();
    assert_eq!(
        lines,
        [
            "version: STSv1",
            "mode: enforce",
            "mx: mail.strong.test",
            "max_age: 604800"
        ]
    );
    net.net.shutdown().await;
}

#[tokio::test]
async fn plain_http_redirects_to_https_where_it_should() {
    let net = support::start().await;
    for (ip, host) in [
        (STRONG, "strong.test"),
        (MIXED, "mixed.test"),
        (EXPIRED, "expired.test"),
    ] {
        let response = http_get(&net.net, ip, host, "/").await.expect("HTTP");
        assert_eq!(response.status, 301, "{host}");
        assert_eq!(
            response.header("location"),
            Some(format!("https://{host}/").as_str()),
            "{host}"
        );
        assert_eq!(
            response.header("strict-transport-security"),
            None,
            "HSTS over plain HTTP is meaningless"
        );
    }
    let weak = http_get(&net.net, WEAK, "weak.test", "/")
        .await
        .expect("HTTP to weak.test");
    assert_eq!(weak.status, 200);
    for header in [
        "strict-transport-security",
        "content-security-policy",
        "x-frame-options",
        "x-content-type-options",
        "set-cookie",
    ] {
        assert_eq!(weak.header(header), None, "{header}");
    }
    // weak.test has nothing on the HTTPS port.
    let refused = TcpStream::connect(SocketAddr::new(WEAK, net.net.https_port())).await;
    assert!(refused.is_err(), "weak.test must not answer HTTPS");
    net.net.shutdown().await;
}

#[tokio::test]
async fn strong_answers_on_ipv6_too() {
    if !has_ipv6() {
        return;
    }
    let net = support::start().await;
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let response = https_get(&net.net, v6, "strong.test", "/")
        .await
        .expect("HTTPS over ::1");
    assert_eq!(response.status, 200);
    assert_eq!(
        http_get(&net.net, v6, "strong.test", "/")
            .await
            .expect("HTTP over ::1")
            .status,
        301
    );
    net.net.shutdown().await;
}

#[tokio::test]
async fn mixed_has_gaps() {
    let net = support::start().await;
    let response = https_get(&net.net, MIXED, "mixed.test", "/")
        .await
        .expect("valid TLS on mixed.test");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(response.header("content-security-policy"), None);
    assert_eq!(response.header("referrer-policy"), None);
    let cookie = response.header("set-cookie").expect("a cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
    let policy = https_get(
        &net.net,
        MIXED,
        "mta-sts.mixed.test",
        "/.well-known/mta-sts.txt",
    )
    .await
    .expect("the MTA-STS policy host shares mixed.test's certificate");
    assert_eq!(policy.status, 200);
    let security = https_get(&net.net, MIXED, "mixed.test", "/.well-known/security.txt")
        .await
        .expect("security.txt");
    assert_eq!(security.status, 200);
    net.net.shutdown().await;
}

#[tokio::test]
async fn the_expired_certificate_is_rejected_as_expired() {
    let net = support::start().await;
    let stream = TcpStream::connect(SocketAddr::new(EXPIRED, net.net.https_port()))
        .await
        .expect("connect");
    let name = ServerName::try_from("expired.test").expect("name");
    let err = support::tls_client(&net.net)
        .connect(name, stream)
        .await
        .expect_err("expired certificate");
    let cause = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    assert!(
        matches!(
            cause,
            Some(rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            ))
        ),
        "{err:?}"
    );
    net.net.shutdown().await;
}

/// A TLS 1.0 ClientHello as a 2010 client would send it: no supported_versions.
fn tls10_client_hello() -> Vec<u8> {
    let suites: [u16; 4] = [0xC013, 0xC014, 0x002F, 0x0035];
    let mut body = vec![0x03, 0x01];
    body.extend_from_slice(&[0x42; 32]);
    body.push(0);
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]);
    let mut handshake = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    handshake.extend_from_slice(&body);
    let mut record = vec![22, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// Sends a TLS 1.0 ClientHello and returns what comes back (up to 5 s).
async fn answer_to_tls10(net: &kepler_testnet::Testnet, ip: IpAddr) -> Vec<u8> {
    let mut stream = TcpStream::connect(SocketAddr::new(ip, net.https_port()))
        .await
        .expect("connect");
    stream
        .write_all(&tls10_client_hello())
        .await
        .expect("send hello");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got)).await;
    got
}

#[tokio::test]
async fn mixed_still_accepts_tls10_and_strong_does_not() {
    let net = support::start().await;
    let answer = answer_to_tls10(&net.net, MIXED).await;
    assert!(answer.len() > 9, "{answer:?}");
    assert_eq!(answer[0], 22, "handshake record");
    assert_eq!(&answer[1..3], &[3, 1], "TLS 1.0 record");
    assert_eq!(answer[5], 2, "ServerHello");
    assert_eq!(&answer[9..11], &[3, 1], "negotiated TLS 1.0");
    assert_eq!(&answer[44..46], &[0xC0, 0x13], "a suite the client offered");

    let refused = answer_to_tls10(&net.net, STRONG).await;
    assert!(
        !(refused.len() > 5 && refused[0] == 22 && refused[5] == 2),
        "strong.test must not accept TLS 1.0: {refused:?}"
    );
    net.net.shutdown().await;
}

#[tokio::test]
async fn slow_accepts_and_stays_silent() {
    let net = support::start().await;
    for port in [net.net.http_port(), net.net.https_port()] {
        let mut stream = TcpStream::connect(SocketAddr::new(SLOW, port))
            .await
            .expect("slow.test accepts");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: slow.test\r\n\r\n")
            .await
            .expect("send");
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await;
        assert!(
            read.is_err(),
            "slow.test sent something on port {port}: {read:?}"
        );
    }
    net.net.shutdown().await;
}

#[tokio::test]
async fn down_refuses_connections() {
    let net = support::start().await;
    for port in [net.net.http_port(), net.net.https_port()] {
        let err = TcpStream::connect(SocketAddr::new(DOWN, port))
            .await
            .expect_err("nothing listens on down.test");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }
    net.net.shutdown().await;
}

#[tokio::test]
async fn latency_delays_the_first_byte_of_each_connection() {
    let net = support::start_with_latency(Duration::from_millis(100)).await;
    let started = Instant::now();
    let response = http_get(&net.net, WEAK, "weak.test", "/")
        .await
        .expect("HTTP");
    assert_eq!(response.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(90),
        "{:?}",
        started.elapsed()
    );
    net.net.shutdown().await;
}
