//! §6: jobs: privacy, failures, timeouts, and one engine run per domain in flight.

use std::sync::Arc;
use std::time::Duration;

use kepler_core::{FailureReason, Tier};
use serde_json::json;

use crate::support::{ScriptedScorer, Step, TestServer, config, test_db};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_job_is_indistinguishable_from_none() {
    let server = TestServer::start(config("enabled = false", ""), None).await;
    let (_, owner) = server.account(Tier::Growth).await;
    let (_, stranger) = server.account(Tier::Growth).await;
    let accepted = server
        .post_score(&owner, json!({"domain": "private.example"}), 202)
        .await;
    let job_id = accepted.body["job_id"].as_str().expect("job id").to_owned();
    server.get(&owner, &format!("/v1/jobs/{job_id}"), 200).await;

    let theirs = server
        .get(&stranger, &format!("/v1/jobs/{job_id}"), 404)
        .await;
    theirs.problem("job_not_found");
    let unknown = server
        .get(
            &stranger,
            &format!("/v1/jobs/{}", uuid::Uuid::new_v4()),
            404,
        )
        .await;
    let garbage = server.get(&stranger, "/v1/jobs/not-a-uuid", 404).await;
    assert_eq!(
        theirs.body, unknown.body,
        "another account's job must look like an unknown one"
    );
    assert_eq!(theirs.body, garbage.body);
    assert_eq!(
        theirs.header("content-type"),
        unknown.header("content-type")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_runs_report_a_stable_reason() {
    let scorer = ScriptedScorer::new(Duration::from_millis(50))
        .with(
            "gone.example",
            Step::Fail(
                FailureReason::DomainNotResolvable,
                Duration::from_millis(50),
            ),
        )
        .with(
            "private.example",
            Step::Fail(FailureReason::PrivateAddressRefused, Duration::ZERO),
        );
    let server = TestServer::start(config("", ""), Some(Arc::new(scorer))).await;
    let (_, key) = server.account(Tier::Growth).await;
    for (domain, reason) in [
        ("gone.example", "domain_not_resolvable"),
        ("private.example", "private_address_refused"),
    ] {
        let accepted = server
            .post_score(&key, json!({"domain": domain}), 202)
            .await;
        let job = server
            .settle(
                &key,
                accepted.body["job_id"].as_str().expect("id"),
                Duration::from_secs(10),
            )
            .await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["failure_reason"], reason, "{job}");
        assert!(job["result_ref"].is_null(), "{job}");
        assert!(job["finished_at"].is_string(), "{job}");
        server
            .get(&key, &format!("/v1/score/{domain}"), 404)
            .await
            .problem("not_scored");
    }
    // A failed run was still a cold call: charged once each.
    assert_eq!(server.usage(&key).await["month"]["cold_calls"], 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_job_timeout_fails_as_timeout() {
    let scorer = ScriptedScorer::new(Duration::from_secs(5));
    let server =
        TestServer::start(config("job_timeout = \"1s\"", ""), Some(Arc::new(scorer))).await;
    let (_, key) = server.account(Tier::Growth).await;
    let started = std::time::Instant::now();
    let accepted = server
        .post_score(&key, json!({"domain": "slow.example"}), 202)
        .await;
    let job = server
        .settle(
            &key,
            accepted.body["job_id"].as_str().expect("id"),
            Duration::from_secs(4),
        )
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["failure_reason"], "timeout", "{job}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "settled near the 1 s timeout, not the 5 s run"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_same_domain_two_jobs_one_run() {
    let scorer = Arc::new(ScriptedScorer::new(Duration::from_millis(600)));
    let server = Arc::new(TestServer::start(config("", ""), Some(scorer.clone())).await);
    let (_, a) = server.account(Tier::Growth).await;
    let (_, b) = server.account(Tier::Scale).await;

    let (ra, rb) = tokio::join!(
        server.post_score(&a, json!({"domain": "shared.example"}), 202),
        server.post_score(&b, json!({"domain": "shared.example"}), 202),
    );
    let ja = ra.body["job_id"].as_str().expect("id").to_owned();
    let jb = rb.body["job_id"].as_str().expect("id").to_owned();
    assert_ne!(ja, jb, "each account gets its own job");
    // Each sees only its own.
    server
        .get(&a, &format!("/v1/jobs/{jb}"), 404)
        .await
        .problem("job_not_found");

    let (job_a, job_b) = tokio::join!(
        server.settle(&a, &ja, Duration::from_secs(10)),
        server.settle(&b, &jb, Duration::from_secs(10)),
    );
    assert_eq!(job_a["status"], "complete");
    assert_eq!(job_b["status"], "complete");
    assert_eq!(
        job_a["result_ref"], job_b["result_ref"],
        "both point at the one record"
    );
    assert_eq!(
        scorer.calls("shared.example"),
        1,
        "the engine ran the domain once"
    );
    for key in [&a, &b] {
        assert_eq!(
            server.usage(key).await["month"]["cold_calls"],
            1,
            "each account is counted"
        );
    }
    let cost_a = server.usage(&a).await["month"]["cost_usd"]
        .as_f64()
        .expect("cost");
    let cost_b = server.usage(&b).await["month"]["cost_usd"]
        .as_f64()
        .expect("cost");
    assert!(
        (cost_a - 0.04).abs() < 1e-9 && (cost_b - 0.02).abs() < 1e-9,
        "{cost_a} {cost_b}"
    );
    match Arc::try_unwrap(server) {
        Ok(server) => server.stop().await,
        Err(_) => panic!("server still shared"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_account_joins_the_run_already_in_flight() {
    let scorer = Arc::new(ScriptedScorer::new(Duration::from_millis(800)));
    let server = TestServer::start(config("", ""), Some(scorer.clone())).await;
    let (_, a) = server.account(Tier::Growth).await;
    let (_, b) = server.account(Tier::Growth).await;
    let ja = server
        .post_score(&a, json!({"domain": "joined.example"}), 202)
        .await
        .body["job_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let started = std::time::Instant::now();
    while server.get(&a, &format!("/v1/jobs/{ja}"), 200).await.body["status"] != "running" {
        assert!(started.elapsed() < Duration::from_secs(5), "never running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let jb = server
        .post_score(&b, json!({"domain": "joined.example"}), 202)
        .await
        .body["job_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_ne!(ja, jb);
    let job_a = server.settle(&a, &ja, Duration::from_secs(10)).await;
    let job_b = server.settle(&b, &jb, Duration::from_secs(10)).await;
    assert_eq!(job_a["status"], "complete");
    assert_eq!(job_b["status"], "complete");
    assert_eq!(job_a["result_ref"], job_b["result_ref"]);
    assert_eq!(
        scorer.calls("joined.example"),
        1,
        "the engine ran the domain once"
    );
    assert_eq!(
        server.usage(&b).await["month"]["cold_calls"],
        1,
        "the joiner is still counted"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_timeout_counts_from_the_first_claim_across_retries() {
    let db = test_db().await;
    let server = TestServer::start_on(&db, config("enabled = false", ""), None).await;
    let (_, key) = server.account(Tier::Growth).await;
    let accepted = server
        .post_score(&key, json!({"domain": "retried.example"}), 202)
        .await;
    let job_id = accepted.body["job_id"].as_str().expect("id").to_owned();
    server
        .store
        .claim_run(
            "dead-worker",
            Duration::from_millis(200),
            chrono::Utc::now(),
        )
        .await
        .expect("claim")
        .expect("a pending run");
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // Re-claimed after the first worker's 1 s allowance is spent: no second allowance.
    let scorer = Arc::new(ScriptedScorer::new(Duration::from_millis(50)));
    let server = TestServer::start_on(
        &db,
        config("job_timeout = \"1s\"", ""),
        Some(scorer.clone()),
    )
    .await;
    let job = server.settle(&key, &job_id, Duration::from_secs(5)).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["failure_reason"], "timeout", "{job}");
    assert_eq!(scorer.calls("retried.example"), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_run_at_most_their_concurrency() {
    let scorer = Arc::new(ScriptedScorer::new(Duration::from_millis(150)));
    let server = TestServer::start(config("concurrency = 2", ""), Some(scorer.clone())).await;
    let (_, key) = server.account(Tier::Growth).await;
    let mut jobs = Vec::new();
    for i in 0..6 {
        let accepted = server
            .post_score(&key, json!({"domain": format!("w{i}.example")}), 202)
            .await;
        jobs.push(accepted.body["job_id"].as_str().expect("id").to_owned());
    }
    for job_id in &jobs {
        assert_eq!(
            server.settle(&key, job_id, Duration::from_secs(10)).await["status"],
            "complete"
        );
    }
    assert_eq!(scorer.total_calls(), 6);
    assert_eq!(scorer.max_in_flight(), 2, "two at once, never more");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_run_still_settles_and_the_worker_goes_on() {
    let scorer = ScriptedScorer::new(Duration::from_millis(30))
        .with("buggy.example", Step::Panic(Duration::ZERO));
    let scorer = Arc::new(scorer);
    // job_timeout only as a backstop: the panic itself must settle the job.
    let server = TestServer::start(config("job_timeout = \"5s\"", ""), Some(scorer.clone())).await;
    let (_, key) = server.account(Tier::Growth).await;
    let buggy = server
        .post_score(&key, json!({"domain": "buggy.example"}), 202)
        .await;
    let job = server
        .settle(
            &key,
            buggy.body["job_id"].as_str().expect("id"),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(job["status"], "failed", "never left running forever: {job}");
    assert_eq!(job["failure_reason"], "engine_error", "{job}");
    // The pool survived: the next domain is scored.
    let fine = server
        .post_score(&key, json!({"domain": "fine.example"}), 202)
        .await;
    let job = server
        .settle(
            &key,
            fine.body["job_id"].as_str().expect("id"),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(job["status"], "complete", "{job}");
    server.stop().await;
}
