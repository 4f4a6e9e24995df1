//! §1/§10: several nodes on one database: limits stay exact and each run is
//! claimed by one worker only.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kepler_core::Tier;
use kepler_store::testing::Backend;
use serde_json::{Value, json};

use crate::support::{ScriptedScorer, TestServer, config, test_db};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_exact_cap_and_never_run_a_domain_twice() {
    let db = test_db().await;
    let cfg = || config("", "[tiers.starter]\nmonthly_cold_cap = 15\n");
    let scorer_a = Arc::new(ScriptedScorer::new(Duration::from_millis(30)));
    let scorer_b = Arc::new(ScriptedScorer::new(Duration::from_millis(30)));
    let a = Arc::new(TestServer::start_on(&db, cfg(), Some(scorer_a.clone())).await);
    let b = Arc::new(TestServer::start_on(&db, cfg(), Some(scorer_b.clone())).await);
    let (_, key) = a.account(Tier::Starter).await;

    let calls = (0..60).map(|i| {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        let key = key.clone();
        tokio::spawn(async move {
            let response = node
                .client
                .post(format!("{}/v1/score", node.base))
                .header("x-api-key", &key)
                .json(&json!({"domain": format!("n{}.example", i % 30)}))
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        })
    });
    let answers: Vec<(u16, String)> = join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let unexpected: Vec<&(u16, String)> = answers
        .iter()
        .filter(|(s, _)| ![200, 202, 429].contains(s))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");

    // Let every admitted job settle, wherever it runs.
    let usage = a.usage(&key).await;
    assert_eq!(
        usage["month"]["cold_calls"], 15,
        "the cap is exact across nodes: {usage}"
    );
    let mut job_ids: Vec<String> = answers
        .iter()
        .filter(|(s, _)| *s == 202)
        .filter_map(|(_, t)| serde_json::from_str::<serde_json::Value>(t).ok())
        .filter_map(|v| v["job_id"].as_str().map(str::to_owned))
        .collect();
    job_ids.sort();
    job_ids.dedup();
    assert_eq!(job_ids.len(), 15, "one job per admitted cold call");
    for job_id in &job_ids {
        let job = b.settle(&key, job_id, Duration::from_secs(10)).await;
        assert_eq!(job["status"], "complete", "{job}");
    }
    for i in 0..30 {
        let domain = format!("n{i}.example");
        let runs = scorer_a.calls(&domain) + scorer_b.calls(&domain);
        assert!(runs <= 1, "{domain} ran {runs} times");
    }
    assert_eq!(scorer_a.total_calls() + scorer_b.total_calls(), 15);
    for node in [a, b] {
        match Arc::try_unwrap(node) {
            Ok(node) => node.stop().await,
            Err(_) => panic!("node still shared"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_node_wakes_at_once_for_work_queued_by_another_node() {
    let db = test_db().await;
    if db.backend() != Backend::Postgres {
        // SQLite has no cross-process wake-up: its workers poll, as configured.
        return;
    }
    let scorer = Arc::new(ScriptedScorer::new(Duration::from_millis(20)));
    // A poll interval far longer than the test may take: only a notification can wake it.
    let mut slow_poll = config("", "");
    slow_poll.workers.poll_interval = Duration::from_secs(60);
    let worker = TestServer::start_on(&db, slow_poll, Some(scorer.clone())).await;
    let api = TestServer::start_on(&db, config("enabled = false", ""), None).await;
    let (_, key) = api.account(Tier::Growth).await;
    // Let the worker find the queue empty and start waiting.
    tokio::time::sleep(Duration::from_secs(1)).await;

    for domain in ["first.example", "second.example"] {
        let accepted = api.post_score(&key, json!({"domain": domain}), 202).await;
        let job_id = accepted.body["job_id"].as_str().expect("id").to_owned();
        let job = api.settle(&key, &job_id, Duration::from_secs(5)).await;
        assert_eq!(job["status"], "complete", "{job}");
    }
    assert_eq!(scorer.total_calls(), 2);
    api.stop().await;
    worker.stop().await;
}

/// One `POST /v1/score` with an Idempotency-Key, answered whole: (status, body).
async fn keyed_post(node: &TestServer, key: &str, idem: &str, domain: &str) -> (u16, Value) {
    let response = node
        .client
        .post(format!("{}/v1/score", node.base))
        .header("x-api-key", key)
        .header("idempotency-key", idem)
        .json(&json!({ "domain": domain }))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_is_processed_once_across_nodes() {
    let db = test_db().await;
    let a = TestServer::start_on(&db, config("enabled = false", ""), None).await;
    let b = TestServer::start_on(&db, config("enabled = false", ""), None).await;
    let (_, key) = a.account(Tier::Growth).await;
    let rounds = 8;
    for round in 0..rounds {
        // Two different requests under one key at the same instant, one per node:
        // each node's own lock cannot see the other, only the store's reservation can.
        let idem = format!("order-{round}");
        let (domain_a, domain_b) = (format!("a{round}.example"), format!("b{round}.example"));
        let (from_a, from_b) = tokio::join!(
            keyed_post(&a, &key, &idem, &domain_a),
            keyed_post(&b, &key, &idem, &domain_b),
        );
        let mut statuses = [from_a.0, from_b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [202, 422], "{from_a:?} {from_b:?}");
        let refused = if from_a.0 == 422 {
            &from_a.1
        } else {
            &from_b.1
        };
        assert_eq!(refused["error"], "idempotency_key_reused", "{refused}");

        // The same request on both nodes: admitted once, the other answer is its replay.
        let idem = format!("retry-{round}");
        let domain = format!("r{round}.example");
        let (from_a, from_b) = tokio::join!(
            keyed_post(&a, &key, &idem, &domain),
            keyed_post(&b, &key, &idem, &domain),
        );
        assert_eq!((from_a.0, from_b.0), (202, 202), "{from_a:?} {from_b:?}");
        assert_eq!(from_a.1["job_id"], from_b.1["job_id"], "one job");
    }
    let usage = b.usage(&key).await;
    assert_eq!(
        usage["month"]["cold_calls"],
        2 * rounds,
        "one cold call per key: {usage}"
    );
    a.stop().await;
    b.stop().await;
}
