//! §5: Idempotency-Key replays the first answer; a different body is 422.

use std::sync::Arc;
use std::time::Duration;

use kepler_core::Tier;
use serde_json::{Value, json};

use crate::support::{Resp, ScriptedScorer, TestServer, config};

async fn post(server: &TestServer, key: &str, idem: &str, body: Value, expected: u16) -> Resp {
    let request = server
        .client
        .post(format!("{}/v1/score", server.base))
        .header("x-api-key", key)
        .header("idempotency-key", idem)
        .json(&body);
    server
        .send(
            request,
            &format!("POST {body} with Idempotency-Key {idem}"),
            expected,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_same_body_replays_different_body_is_422() {
    let scorer = Arc::new(ScriptedScorer::new(Duration::from_millis(50)));
    let server = TestServer::start(config("", ""), Some(scorer.clone())).await;
    let (_, key) = server.account(Tier::Growth).await;

    let first = post(
        &server,
        &key,
        "order-1",
        json!({"domain": "idem.example"}),
        202,
    )
    .await;
    let job_id = first.body["job_id"].as_str().expect("id").to_owned();
    let job = server.settle(&key, &job_id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "complete");

    // After the run completed a plain POST would be a cached 200; the retry replays the 202.
    let retry = post(
        &server,
        &key,
        "order-1",
        json!({"domain": "IDEM.example.", "wait": true}),
        202,
    )
    .await;
    assert_eq!(retry.body["job_id"], job_id.as_str());
    assert_eq!(retry.text, first.text, "the first answer, replayed");
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(retry.header("content-type"), first.header("content-type"));
    assert_eq!(retry.header("retry-after"), Some("5"));
    assert_eq!(
        server.usage(&key).await["month"]["cold_calls"],
        1,
        "charged once"
    );
    assert_eq!(scorer.calls("idem.example"), 1);

    let reused = post(
        &server,
        &key,
        "order-1",
        json!({"domain": "other.example"}),
        422,
    )
    .await;
    reused.problem("idempotency_key_reused");
    let reused = post(
        &server,
        &key,
        "order-1",
        json!({"domain": "idem.example", "force_fresh": true}),
        422,
    )
    .await;
    reused.problem("idempotency_key_reused");
    assert_eq!(server.usage(&key).await["month"]["cold_calls"], 1);

    // Keys belong to an account: another account's identical key is a fresh request.
    let (_, other) = server.account(Tier::Growth).await;
    let theirs = post(
        &server,
        &other,
        "order-1",
        json!({"domain": "elsewhere.example"}),
        202,
    )
    .await;
    assert_ne!(theirs.body["job_id"], job_id.as_str());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_retries_charge_once() {
    let server = TestServer::start(config("enabled = false", ""), None).await;
    let (_, key) = server.account(Tier::Growth).await;
    let body = json!({"domain": "burst.example"});
    let answers = futures::future::join_all(
        (0..8).map(|_| post(&server, &key, "burst-1", body.clone(), 202)),
    )
    .await;
    let first = answers[0].body["job_id"].clone();
    assert!(
        answers.iter().all(|a| a.body["job_id"] == first),
        "one job for all retries"
    );
    assert_eq!(server.usage(&key).await["month"]["cold_calls"], 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_different_bodies_under_one_key_admit_only_one() {
    let server = TestServer::start(config("enabled = false", ""), None).await;
    let (_, key) = server.account(Tier::Growth).await;
    for round in 0..5 {
        let idem = format!("race-{round}");
        let send = |domain: String| {
            let request = server
                .client
                .post(format!("{}/v1/score", server.base))
                .header("x-api-key", &key)
                .header("idempotency-key", &idem)
                .json(&json!({"domain": domain}));
            async move {
                let response = request.send().await.expect("request");
                (
                    response.status().as_u16(),
                    response.text().await.expect("body"),
                )
            }
        };
        let answers =
            futures::future::join_all((0..4).map(|i| send(format!("r{round}-{i}.example")))).await;
        let admitted = answers.iter().filter(|(s, _)| *s == 202).count();
        assert_eq!(
            admitted, 1,
            "one Idempotency-Key admits one request: {answers:?}"
        );
        assert!(
            answers
                .iter()
                .all(|(s, t)| *s == 202 || t.contains("idempotency_key_reused")),
            "{answers:?}"
        );
    }
    assert_eq!(server.usage(&key).await["month"]["cold_calls"], 5);
    server.stop().await;
}
