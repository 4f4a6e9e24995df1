//! The real engine against the fixture network, through the API.

use std::sync::Arc;
use std::time::Duration;

use kepler_core::Tier;
use kepler_core::config::EngineSettings;
use kepler_engine::Engine;
use kepler_testnet::{Testnet, TestnetOptions};
use serde_json::json;

use crate::support::{TestServer, config};

/// The test network, the real engine on it (with `settings` applied) and a
/// server running that engine with `workers` as its `[workers]` lines.
async fn engine_server(
    settings: impl FnOnce(EngineSettings) -> EngineSettings,
    workers: &str,
) -> (tempfile::TempDir, Testnet, TestServer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let testnet = Testnet::start(TestnetOptions::in_dir(dir.path()))
        .await
        .expect("testnet starts");
    let engine = Engine::new(&settings(testnet.engine_settings())).expect("engine builds");
    let server = TestServer::start(config(workers, ""), Some(Arc::new(engine))).await;
    (dir, testnet, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_engine_scores_strong_test_and_fails_nope_test() {
    let (_dir, testnet, server) = engine_server(
        |settings| EngineSettings {
            probe_timeout: Duration::from_secs(5),
            ..settings
        },
        "job_timeout = \"30s\"",
    )
    .await;
    let (_, key) = server.account(Tier::Growth).await;

    let strong = server
        .post_score(&key, json!({"domain": "strong.test"}), 202)
        .await;
    let nope = server
        .post_score(&key, json!({"domain": "nope.test"}), 202)
        .await;
    let (strong_job, nope_job) = tokio::join!(
        server.settle(
            &key,
            strong.body["job_id"].as_str().expect("id"),
            Duration::from_secs(30)
        ),
        server.settle(
            &key,
            nope.body["job_id"].as_str().expect("id"),
            Duration::from_secs(30)
        ),
    );
    assert_eq!(strong_job["status"], "complete", "{strong_job}");
    assert_eq!(nope_job["status"], "failed", "{nope_job}");
    assert_eq!(
        nope_job["failure_reason"], "domain_not_resolvable",
        "{nope_job}"
    );

    let record = server.get(&key, "/v1/score/strong.test", 200).await.body;
    let grade = record["grade"].as_str().expect("grade");
    assert!(
        grade.starts_with('A'),
        "strong.test grade {grade}: {record}"
    );
    assert_eq!(record["fresh_for_tier"], true);
    assert_eq!(record["scored_at"], strong_job["result_ref"]["scored_at"]);
    let categories = record["categories"].as_array().expect("categories");
    assert_eq!(categories.len(), 5);
    let mut ids: Vec<&str> = categories.iter().filter_map(|c| c["id"].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["dns", "email", "http_headers", "hygiene", "tls"]);
    for category in categories {
        for check in category["checks"].as_array().expect("checks") {
            assert!(
                ["pass", "warn", "fail", "info", "error"]
                    .contains(&check["status"].as_str().unwrap_or("")),
                "{check}"
            );
            assert!(check["evidence"].is_string(), "{check}");
        }
    }
    server.stop().await;
    testnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_allow_private_targets_a_loopback_domain_is_refused() {
    // The test network lives on loopback: every name resolves to a private address.
    let (_dir, testnet, server) = engine_server(
        |settings| EngineSettings {
            allow_private_targets: false,
            probe_timeout: Duration::from_secs(5),
            ..settings
        },
        "job_timeout = \"30s\"",
    )
    .await;
    let (_, key) = server.account(Tier::Growth).await;
    let accepted = server
        .post_score(&key, json!({"domain": "strong.test"}), 202)
        .await;
    let job = server
        .settle(
            &key,
            accepted.body["job_id"].as_str().expect("id"),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["failure_reason"], "private_address_refused", "{job}");
    server
        .get(&key, "/v1/score/strong.test", 404)
        .await
        .problem("not_scored");
    server.stop().await;
    testnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_test_fails_timeout_when_job_timeout_is_shorter_than_probe_timeout() {
    // slow.test's servers accept and stay silent for 30 s: the probes would wait
    // out their 10 s timeout, but the job is given 2 s.
    let (_dir, testnet, server) = engine_server(
        |settings| EngineSettings {
            probe_timeout: Duration::from_secs(10),
            ..settings
        },
        "job_timeout = \"2s\"",
    )
    .await;
    let (_, key) = server.account(Tier::Growth).await;
    let accepted = server
        .post_score(&key, json!({"domain": "slow.test"}), 202)
        .await;
    let job = server
        .settle(
            &key,
            accepted.body["job_id"].as_str().expect("id"),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["failure_reason"], "timeout", "{job}");
    server
        .get(&key, "/v1/score/slow.test", 404)
        .await
        .problem("not_scored");
    server.stop().await;
    testnet.shutdown().await;
}
