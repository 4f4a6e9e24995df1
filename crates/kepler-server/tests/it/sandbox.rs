//! §5 step 1 and §7: sandbox keys answer the canned domains only, never count.

use kepler_core::Tier;
use serde_json::json;

use crate::support::{TestServer, config};

const CANNED: [(&str, char); 4] = [
    ("grade-a.sandbox.test", 'A'),
    ("grade-b.sandbox.test", 'B'),
    ("grade-d.sandbox.test", 'D'),
    ("grade-f.sandbox.test", 'F'),
];

fn check_record(body: &serde_json::Value, domain: &str, letter: char) {
    assert_eq!(body["domain"], domain);
    let grade = body["grade"].as_str().expect("grade");
    assert!(grade.starts_with(letter), "{domain}: grade {grade}");
    let categories = body["categories"].as_array().expect("categories");
    assert_eq!(categories.len(), 5, "{domain}: five categories");
    let score = body["score"].as_u64().expect("score");
    assert!(score <= 100);
    for c in categories {
        assert!(
            c["checks"].as_array().is_some_and(|a| !a.is_empty()),
            "{domain}: checks in {c}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canned_domains_answer_inline_and_nothing_counts() {
    let server = TestServer::start(config("", ""), None).await;
    // A free account: the sandbox is exactly what its keys are for.
    let (account_id, _) = server.account(Tier::Free).await;
    let key = server.key(&account_id, true).await;
    assert!(key.starts_with("ki_test_"));

    for (domain, letter) in CANNED {
        let resp = server
            .post_score(&key, json!({"domain": domain}), 200)
            .await;
        check_record(&resp.body, domain, letter);
        // Normalisation applies to sandbox domains too.
        let loud = format!(" {}. ", domain.to_uppercase());
        let again = server
            .post_score(&key, json!({"domain": loud, "force_fresh": true}), 200)
            .await;
        check_record(&again.body, domain, letter);

        let stored = server.get(&key, &format!("/v1/score/{domain}"), 200).await;
        check_record(&stored.body, domain, letter);
        assert!(stored.body["fresh_for_tier"].is_boolean());
    }

    for other in ["example.com", "strong.test", "grade-c.sandbox.test"] {
        let resp = server.post_score(&key, json!({"domain": other}), 400).await;
        let body = resp.problem("sandbox_domain_unknown");
        let listed: Vec<&str> = body["sandbox_domains"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(listed, CANNED.map(|(d, _)| d).to_vec());
        server
            .get(&key, &format!("/v1/score/{other}"), 400)
            .await
            .problem("sandbox_domain_unknown");
    }

    let usage = server.usage(&key).await;
    assert_eq!(usage["month"]["cold_calls"], 0);
    assert_eq!(usage["month"]["cost_usd"], 0.0);
    let stats = server
        .store
        .queue_stats(chrono::Utc::now())
        .await
        .expect("stats");
    // No scorer, so no workers: a job, had one been created, would still be pending.
    assert_eq!(
        (stats.jobs_pending, stats.jobs_running),
        (0, 0),
        "no job created"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_key_of_a_paid_account_does_not_charge_it() {
    let server = TestServer::start(config("", ""), None).await;
    let (account_id, live) = server.account(Tier::Starter).await;
    let sandbox = server.key(&account_id, true).await;
    for _ in 0..3 {
        server
            .post_score(&sandbox, json!({"domain": "grade-a.sandbox.test"}), 200)
            .await;
    }
    let usage = server.usage(&live).await;
    assert_eq!(usage["month"]["cold_calls"], 0);
    assert_eq!(usage["account_day"]["cold_calls"], 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_hold_for_sandbox_keys_too() {
    let server = TestServer::start(config("", ""), None).await;
    let (account_id, _) = server.account(Tier::Growth).await;
    let key = server.key(&account_id, true).await;
    let post = |domain: &str| {
        server
            .client
            .post(format!("{}/v1/score", server.base))
            .header("x-api-key", &key)
            .header("idempotency-key", "sandbox-1")
            .json(&json!({"domain": domain}))
    };
    let first = server
        .send(post("grade-a.sandbox.test"), "first", 200)
        .await;
    let again = server
        .send(post("grade-a.sandbox.test"), "replay", 200)
        .await;
    assert_eq!(first.text, again.text);
    server
        .send(post("grade-b.sandbox.test"), "reused", 422)
        .await
        .problem("idempotency_key_reused");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_key_never_replays_a_sandbox_answer() {
    let server = TestServer::start(config("enabled = false", ""), None).await;
    let (account_id, live) = server.account(Tier::Growth).await;
    let sandbox = server.key(&account_id, true).await;
    let post = |key: &str| {
        server
            .client
            .post(format!("{}/v1/score", server.base))
            .header("x-api-key", key)
            .header("idempotency-key", "shared-1")
            .json(&json!({"domain": "grade-a.sandbox.test"}))
    };
    server.send(post(&sandbox), "sandbox", 200).await;
    // Same account, same Idempotency-Key, same body, but a live key: not the same request.
    server
        .send(post(&live), "live", 422)
        .await
        .problem("idempotency_key_reused");
    server.stop().await;
}
