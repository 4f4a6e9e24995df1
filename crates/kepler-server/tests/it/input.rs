//! §5: request validation before any decision.

use kepler_core::Tier;
use serde_json::json;

use crate::support::{TestServer, config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_domains_are_invalid_domain() {
    let server = TestServer::start(config("", ""), None).await;
    let (_, key) = server.account(Tier::Growth).await;
    let long_label = format!("{}.com", "a".repeat(64));
    let long_name = format!("{}.com", ["abcdefghij"; 25].join("."));
    assert!(long_name.len() > 253);
    let cases: Vec<(&str, String)> = vec![
        ("IPv4 literal", "192.0.2.1".into()),
        ("IPv6 literal", "::1".into()),
        ("bracketed IPv6", "[2001:db8::1]".into()),
        ("URL with scheme", "https://example.com".into()),
        ("path", "example.com/login".into()),
        ("port", "example.com:443".into()),
        ("single label", "localhost".into()),
        ("underscore label", "exa_mple.com".into()),
        ("leading hyphen", "-example.com".into()),
        ("empty label", "example..com".into()),
        ("label over 63", long_label),
        ("name over 253", long_name),
        ("empty", "".into()),
        ("blank", "   ".into()),
        ("bad IDN", "exa\u{FFFD}mple.com".into()),
        ("space inside", "exa mple.com".into()),
    ];
    for (what, domain) in cases {
        let resp = server
            .post_score(&key, json!({"domain": domain}), 400)
            .await;
        let body = resp.problem("invalid_domain");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: message: {body}"
        );
        // GET /v1/score/{domain} applies the same rule to path-safe names.
        if !domain.contains(['/', ' ', '?', '#']) && !domain.is_empty() {
            let encoded: String = domain
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            server
                .get(&key, &format!("/v1/score/{encoded}"), 400)
                .await
                .problem("invalid_domain");
        }
    }
    // None of that counted.
    assert_eq!(server.usage(&key).await["month"]["cold_calls"], 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalised_domains_are_accepted() {
    let server = TestServer::start(config("", ""), None).await;
    let (_, key) = server.account(Tier::Growth).await;
    for (input, normal) in [
        ("  Example.COM. ", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("strong.test", "strong.test"),
    ] {
        let resp = server
            .post_score(&key, json!({"domain": input, "wait": true}), 202)
            .await;
        assert_eq!(resp.body["domain"], normal, "{input}");
    }
    // The limits themselves are allowed: a 63-character label, a 253-character name.
    let label_63 = format!("{}.example", "a".repeat(63));
    let name_253 = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61)
    );
    assert_eq!(name_253.len(), 253);
    for domain in [
        label_63,
        name_253.clone(),
        format!("{name_253}."),
        "x-1.a-b.example".to_owned(),
    ] {
        let resp = server
            .post_score(&key, json!({"domain": domain}), 202)
            .await;
        assert_eq!(resp.body["domain"], domain.trim_end_matches('.'));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_invalid_request_and_big_ones_413() {
    let server = TestServer::start(config("", ""), None).await;
    let (_, key) = server.account(Tier::Growth).await;
    let url = format!("{}/v1/score", server.base);
    let raw = |body: String| {
        server
            .client
            .post(&url)
            .header("x-api-key", &key)
            .header("content-type", "application/json")
            .body(body)
    };
    for body in [
        "{not json",
        "",
        "[]",
        "{}",
        r#"{"domain": 42}"#,
        r#"{"domain": null}"#,
        r#"{"wait": true}"#,
        r#"{"domain":"a.com","force_fresh":"yes"}"#,
    ] {
        server
            .send(raw(body.to_owned()), &format!("POST {body:?}"), 400)
            .await
            .problem("invalid_request");
    }
    let big = format!(
        r#"{{"domain":"example.com","pad":"{}"}}"#,
        "x".repeat(17 * 1024)
    );
    let resp = server.send(raw(big), "POST 17 KiB", 413).await;
    resp.problem("payload_too_large");
    // Just under the limit is read and judged on its content.
    let fits = format!(
        r#"{{"domain":"example.com","pad":"{}"}}"#,
        "x".repeat(15 * 1024)
    );
    server.send(raw(fits), "POST 15 KiB", 202).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_idempotency_key_header_is_400() {
    let server = TestServer::start(config("", ""), None).await;
    let (_, key) = server.account(Tier::Growth).await;
    let url = format!("{}/v1/score", server.base);
    for bad in ["".to_owned(), "has space".to_owned(), "k".repeat(256)] {
        let request = server
            .client
            .post(&url)
            .header("x-api-key", &key)
            .header("idempotency-key", bad.as_str())
            .json(&json!({"domain": "example.com"}));
        server
            .send(request, &format!("Idempotency-Key {bad:?}"), 400)
            .await
            .problem("invalid_request");
    }
    assert_eq!(server.usage(&key).await["month"]["cold_calls"], 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_16_kib_is_413_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(config("", ""), None).await;
    let (_, key) = server.account(Tier::Growth).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/score HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    let chunk = format!(r#"{{"domain":"example.com","pad":"{}"}}"#, "x".repeat(4096));
    for _ in 0..5 {
        // Five 4 KiB chunks: over the limit with no Content-Length to warn of it.
        let written = stream
            .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await;
        if written.is_err() {
            break; // the server may answer and close before reading it all
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(answer.contains("\"payload_too_large\""), "{answer}");
    assert_eq!(server.usage(&key).await["month"]["cold_calls"], 0);
    server.stop().await;
}
