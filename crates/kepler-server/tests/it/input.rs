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
