//! §10: operations endpoints, and problem+json for unknown routes and methods.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kepler_core::Tier;
use reqwest::Method;
use serde_json::json;

use kepler_server::worker::run_pool;
use kepler_server::{AppState, Scorer, serve_ops};
use tokio_util::sync::CancellationToken;

use crate::support::{ScriptedScorer, TestServer, config, http_client, open_store, test_db};

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

/// The value of the sample `series` (name with labels, exactly as rendered).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

async fn scrape(server: &TestServer) -> String {
    server
        .call(Method::GET, "/metrics", None, None, 200)
        .await
        .text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_queue_lease_expiries_and_store_outages() {
    let db = test_db().await;
    let api = TestServer::start_on(&db, config("enabled = false", ""), None).await;
    let (_, key) = api.account(Tier::Growth).await;
    let mut jobs = Vec::new();
    for domain in ["q1.example", "q2.example"] {
        let accepted = api.post_score(&key, json!({ "domain": domain }), 202).await;
        jobs.push(accepted.body["job_id"].as_str().expect("id").to_owned());
    }
    // A worker that died holding q1's run: its lease ran out a few seconds ago.
    let died_at = Utc::now() - chrono::Duration::seconds(5);
    let dead = api
        .store
        .claim_run("dead-worker", Duration::from_secs(1), died_at)
        .await
        .expect("claim")
        .expect("a run");
    assert_eq!(dead.domain, "q1.example");

    let metrics = scrape(&api).await;
    assert_eq!(
        sample(&metrics, "kepler_jobs{state=\"pending\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "kepler_jobs{state=\"running\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        sample(&metrics, "kepler_oldest_pending_job_age_seconds").is_some_and(|age| age >= 0.0),
        "{metrics}"
    );
    assert!(
        !metrics.contains("state=\"complete\""),
        "finished jobs are not scanned: {metrics}"
    );
    assert_eq!(
        sample(&metrics, "kepler_admissions_total{outcome=\"admitted\"}"),
        Some(2.0),
        "{metrics}"
    );

    // A worker node reclaims the dead worker's run and runs the queue dry.
    let scorer = Arc::new(ScriptedScorer::new(Duration::from_millis(20)));
    let worker = TestServer::start_on(&db, config("", ""), Some(scorer.clone())).await;
    for job_id in &jobs {
        let job = worker.settle(&key, job_id, Duration::from_secs(10)).await;
        assert_eq!(job["status"], "complete", "{job}");
    }
    let metrics = scrape(&worker).await;
    assert_eq!(
        sample(&metrics, "kepler_lease_expiries_total"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "kepler_engine_runs_total{outcome=\"complete\"}"),
        Some(2.0),
        "{metrics}"
    );
    for state in ["pending", "running"] {
        assert_eq!(
            sample(&metrics, &format!("kepler_jobs{{state=\"{state}\"}}")),
            Some(0.0),
            "{metrics}"
        );
    }
    assert_eq!(
        sample(&metrics, "kepler_oldest_pending_job_age_seconds"),
        Some(0.0),
        "{metrics}"
    );

    // The API node loses its store: the 503 it answers is counted.
    api.store.close().await;
    api.post_score(&key, json!({ "domain": "q3.example" }), 503)
        .await
        .problem("store_unavailable");
    let metrics = scrape(&api).await;
    assert_eq!(
        sample(&metrics, "kepler_store_unavailable_total{source=\"api\"}"),
        Some(1.0),
        "{metrics}"
    );

    // So does the worker node: its idle workers count the failed claims.
    worker.store.close().await;
    let mut failed_claims = None;
    for _ in 0..200 {
        let metrics = scrape(&worker).await;
        failed_claims = sample(
            &metrics,
            "kepler_store_unavailable_total{source=\"worker\"}",
        );
        if failed_claims.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failed_claims.is_some_and(|n| n >= 1.0), "{failed_claims:?}");
    api.stop().await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_serves_only_the_operations_endpoints() {
    let db = test_db().await;
    let store = open_store(&db).await;
    let state = AppState::new(store.clone(), config("", ""));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let shutdown = CancellationToken::new();
    let scorer: Arc<dyn Scorer> = Arc::new(ScriptedScorer::new(Duration::from_millis(10)));
    let ops = tokio::spawn(serve_ops(state.clone(), listener, shutdown.clone()));
    let pool = tokio::spawn(run_pool(state, scorer, shutdown.clone()));

    let client = http_client();
    let get = |path: &str| client.get(format!("{base}{path}")).send();
    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = get(path).await.expect("request");
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    let metrics = get("/metrics")
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    for series in [
        "kepler_jobs{state=\"pending\"}",
        "kepler_lease_expiries_total",
        "kepler_engine_runs_in_flight",
    ] {
        assert!(sample(&metrics, series).is_some(), "{series}: {metrics}");
    }
    let api = get("/v1/usage").await.expect("request");
    assert_eq!(api.status().as_u16(), 404, "no API on a worker");

    shutdown.cancel();
    ops.await.expect("ops task").expect("ops server");
    pool.await.expect("pool task");
    store.close().await;
}
