//! §10: operations endpoints, and problem+json for unknown routes and methods.

use reqwest::Method;

use crate::support::{TestServer, config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_metrics_openapi() {
    let server = TestServer::start(config("", ""), None).await;
    server.call(Method::GET, "/healthz", None, None, 200).await;
    server.call(Method::GET, "/readyz", None, None, 200).await;

    // Make an admission so its counter has a sample.
    let (_, key) = server.account(kepler_core::Tier::Growth).await;
    server
        .post_score(&key, serde_json::json!({"domain": "metrics.example"}), 202)
        .await;

    let metrics = server
        .call(Method::GET, "/metrics", None, None, 200)
        .await
        .text;
    for name in ["kepler_http_requests_total", "kepler_admissions_total"] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    let sample = |prefix: &str, labels: &[&str]| {
        metrics.lines().any(|l| {
            l.starts_with(prefix) && labels.iter().all(|x| l.contains(x)) && l.ends_with(" 1")
        })
    };
    assert!(
        sample("kepler_admissions_total{", &["outcome=\"admitted\""]),
        "{metrics}"
    );
    assert!(
        sample(
            "kepler_http_requests_total{",
            &["route=\"/v1/score\"", "method=\"POST\"", "status=\"202\""]
        ),
        "{metrics}"
    );
    assert!(
        metrics.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );

    let openapi = server
        .call(Method::GET, "/openapi.json", None, None, 200)
        .await;
    assert!(
        openapi
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    assert_eq!(openapi.body["openapi"], "3.1.0");
    for path in [
        "/v1/score",
        "/v1/jobs/{job_id}",
        "/v1/score/{domain}",
        "/v1/usage",
    ] {
        assert!(
            openapi.body["paths"].get(path).is_some(),
            "openapi lacks {path}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_and_wrong_method_are_problems() {
    let server = TestServer::start(config("", ""), None).await;
    for path in ["/nope", "/v1/nothing", "/v2/score"] {
        server
            .call(Method::GET, path, None, None, 404)
            .await
            .problem("not_found");
    }
    let wrong = server
        .call(Method::DELETE, "/v1/score", None, None, 405)
        .await;
    wrong.problem("method_not_allowed");
    let wrong = server.call(Method::PUT, "/healthz", None, None, 405).await;
    wrong.problem("method_not_allowed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_is_503_store_unavailable_promptly() {
    let server = TestServer::start(config("", ""), None).await;
    let (_, key) = server.account(kepler_core::Tier::Growth).await;
    server.store.close().await;
    let started = std::time::Instant::now();
    server.call(Method::GET, "/healthz", None, None, 200).await;
    server
        .call(Method::GET, "/readyz", None, None, 503)
        .await
        .problem("store_unavailable");
    for (method, path) in [
        (Method::POST, "/v1/score"),
        (Method::GET, "/v1/usage"),
        (Method::GET, "/v1/score/example.com"),
    ] {
        let body = (method == Method::POST).then(|| serde_json::json!({"domain": "example.com"}));
        let resp = server.call(method, path, Some(&key), body, 503).await;
        resp.problem("store_unavailable");
        assert!(
            resp.header("retry-after")
                .is_some_and(|v| v.parse::<u64>().is_ok()),
            "Retry-After: {:?}",
            resp.headers
        );
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "answered promptly"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_not_allowed_names_the_allowed_methods() {
    let server = TestServer::start(config("", ""), None).await;
    let resp = server.call(Method::GET, "/v1/score", None, None, 405).await;
    resp.problem("method_not_allowed");
    assert!(
        resp.header("allow").is_some_and(|a| a.contains("POST")),
        "Allow: {:?}",
        resp.headers
    );
    server.stop().await;
}
