//! §10: admitted work and stored records survive a restart.

use std::sync::Arc;
use std::time::Duration;

use kepler_core::Tier;
use serde_json::json;

use crate::support::{ScriptedScorer, TestServer, config, test_db};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_admitted_before_a_restart_completes_after_it() {
    let db = test_db().await;
    let idle = Arc::new(ScriptedScorer::new(Duration::ZERO));
    // Workers disabled: the scorer must not be used.
    let first = TestServer::start_on(&db, config("enabled = false", ""), Some(idle.clone())).await;
    let (account_id, key) = first.account(Tier::Growth).await;
    let accepted = first
        .post_score(&key, json!({"domain": "durable.example"}), 202)
        .await;
    let job_id = accepted.body["job_id"].as_str().expect("id").to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let job = first
        .get(&key, &format!("/v1/jobs/{job_id}"), 200)
        .await
        .body;
    assert_eq!(job["status"], "pending", "no worker ran it: {job}");
    assert_eq!(idle.total_calls(), 0);
    first.stop().await;

    let scorer = Arc::new(ScriptedScorer::new(Duration::from_millis(50)));
    let second = TestServer::start_on(&db, config("", ""), Some(scorer.clone())).await;
    let job = second.settle(&key, &job_id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "complete", "{job}");
    assert_eq!(scorer.calls("durable.example"), 1);
    let usage = second.usage(&key).await;
    assert_eq!(usage["account_id"], account_id);
    assert_eq!(usage["month"]["cold_calls"], 1, "never charged twice");
    second.get(&key, "/v1/score/durable.example", 200).await;
    second.stop().await;

    // And the record, job and key are still there on a third start.
    let third = TestServer::start_on(&db, config("enabled = false", ""), None).await;
    let stored = third.get(&key, "/v1/score/durable.example", 200).await;
    assert_eq!(stored.body["scored_at"], job["result_ref"]["scored_at"]);
    assert_eq!(
        third
            .get(&key, &format!("/v1/jobs/{job_id}"), 200)
            .await
            .body,
        job
    );
    third.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_worker_died_is_taken_again_after_its_lease() {
    let db = test_db().await;
    let scorer = Arc::new(ScriptedScorer::new(Duration::from_millis(50)));
    // Workers off while the "dead" worker claims the run, so it cannot be taken first.
    let server = TestServer::start_on(&db, config("enabled = false", ""), None).await;
    let (_, key) = server.account(Tier::Growth).await;
    let accepted = server
        .post_score(&key, json!({"domain": "orphan.example"}), 202)
        .await;
    let job_id = accepted.body["job_id"].as_str().expect("id").to_owned();
    let claimed = server
        .store
        .claim_run("dead-worker", Duration::from_secs(1), chrono::Utc::now())
        .await
        .expect("claim")
        .expect("a pending run");
    assert_eq!(claimed.domain, "orphan.example");
    let job = server
        .get(&key, &format!("/v1/jobs/{job_id}"), 200)
        .await
        .body;
    assert_eq!(job["status"], "running", "{job}");
    server.stop().await;

    // The claimer never heartbeats; a live worker takes the run once the lease lapses.
    let server = TestServer::start_on(&db, config("", ""), Some(scorer.clone())).await;
    let job = server.settle(&key, &job_id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "complete", "{job}");
    assert_eq!(scorer.calls("orphan.example"), 1);
    assert_eq!(
        server.usage(&key).await["month"]["cold_calls"],
        1,
        "never charged twice"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_flight_at_shutdown_is_handed_back_and_finished_later() {
    let db = test_db().await;
    let stuck = Arc::new(ScriptedScorer::new(Duration::from_secs(30)));
    let first = TestServer::start_on(&db, config("", ""), Some(stuck.clone())).await;
    let (_, key) = first.account(Tier::Growth).await;
    let accepted = first
        .post_score(&key, json!({"domain": "handoff.example"}), 202)
        .await;
    let job_id = accepted.body["job_id"].as_str().expect("id").to_owned();
    let path = format!("/v1/jobs/{job_id}");
    let started = std::time::Instant::now();
    while first.get(&key, &path, 200).await.body["status"] != "running" {
        assert!(started.elapsed() < Duration::from_secs(5), "never running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopping = std::time::Instant::now();
    first.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "shutdown waits only shutdown_grace, not the run"
    );

    let scorer = Arc::new(ScriptedScorer::new(Duration::from_millis(50)));
    let second = TestServer::start_on(&db, config("", ""), Some(scorer.clone())).await;
    let handed_back = std::time::Instant::now();
    let job = second.settle(&key, &job_id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "complete", "{job}");
    assert!(
        handed_back.elapsed() < Duration::from_secs(4),
        "handed back at once, not after the 5 s lease"
    );
    assert_eq!(scorer.calls("handoff.example"), 1);
    assert_eq!(
        second.usage(&key).await["month"]["cold_calls"],
        1,
        "never charged twice"
    );
    second.stop().await;
}
