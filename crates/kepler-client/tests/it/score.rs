//! The happy paths: inline records, cold runs polled to their record, jobs, usage.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kepler_client::{JobProgress, JobStatus, ScoreOptions, Submitted};
use kepler_core::Tier;

use crate::support::{Scripted, Server, builder};

#[tokio::test]
async fn a_sandbox_key_gets_its_canned_record_inline() {
    let server = Server::start("", Scripted::default()).await;
    let client = server.client(&server.sandbox_key().await);

    let record = client.score("grade-a.sandbox.test").await.expect("scored");
    assert_eq!(record.domain, "grade-a.sandbox.test");
    assert!(record.grade.starts_with('A'), "{}", record.grade);
    assert!(!record.categories.is_empty());

    let submitted = client
        .submit(" Grade-F.Sandbox.Test. ", ScoreOptions::default())
        .await
        .expect("answered");
    match submitted {
        Submitted::Record(record) => assert_eq!(record.grade, "F"),
        other => panic!("a sandbox answer is inline: {other:?}"),
    }

    let stored = client.record("grade-b.sandbox.test").await.expect("stored");
    assert!(stored.fresh_for_tier);
    assert_eq!(stored.record.domain, "grade-b.sandbox.test");
    server.stop().await;
}

#[tokio::test]
async fn a_cold_run_is_polled_to_its_record_with_progress() {
    let server = Server::start("", Scripted::default()).await;
    let key = server.live_key(Tier::Starter).await;
    let seen: Arc<Mutex<Vec<JobProgress>>> = Arc::default();
    let log = seen.clone();
    let client = builder(&server.base, &key)
        .on_progress(move |p| log.lock().expect("log").push(p.clone()))
        .build()
        .expect("client");

    let record = client.score("cold.example").await.expect("scored");
    assert_eq!(record.domain, "cold.example");
    assert_eq!(record.engine_version, "scripted-1");
    assert!(!record.cached, "the record of the run this call waited for");

    let seen = seen.lock().expect("log").clone();
    let first = seen.first().expect("the 202 is reported");
    assert_eq!((first.polls, first.status), (0, JobStatus::Pending));
    let last = seen.last().expect("polls are reported");
    assert_eq!(last.status, JobStatus::Complete);
    assert!(last.polls >= 1);
    // The 202 says Retry-After: 5, and the client waits that long before polling.
    assert!(last.elapsed >= Duration::from_secs(5), "{:?}", last.elapsed);

    // Asked again, the stored record is fresh for the tier: inline and cached.
    let again = client.score("cold.example").await.expect("scored");
    assert!(again.cached);
    assert_eq!(again.scored_at, record.scored_at);
    server.stop().await;
}

#[tokio::test]
async fn submit_then_wait_for_score_job_record_and_usage() {
    let server = Server::start("", Scripted::default()).await;
    let key = server.live_key(Tier::Starter).await;
    let client = builder(&server.base, &key)
        .poll_interval(Duration::from_millis(50))
        .build()
        .expect("client");

    let Submitted::Queued(accepted) = client
        .submit("queued.example", ScoreOptions::default())
        .await
        .expect("admitted")
    else {
        panic!("a live key's first call is a cold run");
    };
    assert_eq!(accepted.domain, "queued.example");
    assert_eq!(accepted.poll_url, format!("/v1/jobs/{}", accepted.job_id));

    let record = client
        .wait_for_score(accepted.job_id)
        .await
        .expect("scored");
    assert_eq!(record.domain, "queued.example");
    assert!(!record.cached);

    let job = client.job(accepted.job_id).await.expect("job");
    assert_eq!(job.status, JobStatus::Complete);
    let result = job.result_ref.expect("a complete job points at its record");
    assert_eq!(result.domain, "queued.example");
    assert_eq!(result.scored_at, record.scored_at);
    assert!(job.finished_at.is_some() && job.failure_reason.is_none());

    let stored = client.record("queued.example").await.expect("stored");
    assert!(stored.fresh_for_tier);
    assert_eq!(stored.record.score, record.score);

    let usage = client.usage().await.expect("usage");
    assert_eq!(usage.tier, "starter");
    assert_eq!(usage.month.cold_calls, 1);
    assert_eq!(usage.month.cap, 100);
    assert_eq!(usage.month.remaining, 99);
    assert!(
        (usage.month.cost_usd - 0.08).abs() < 1e-9,
        "{}",
        usage.month.cost_usd
    );
    assert_eq!(usage.key_hour.cold_calls, 1);
    assert_eq!(usage.account_day.limit, 100);
    server.stop().await;
}

#[tokio::test]
async fn a_second_call_while_the_run_is_in_flight_joins_the_same_job() {
    let slow = Scripted::default().with(
        "slow.example",
        crate::support::Outcome::Record(Duration::from_secs(2)),
    );
    let server = Server::start("", slow).await;
    let client = server.client(&server.live_key(Tier::Growth).await);
    let submit = || client.submit("slow.example", ScoreOptions::default());
    let (Submitted::Queued(first), Submitted::Queued(second)) = (
        submit().await.expect("first"),
        submit().await.expect("second"),
    ) else {
        panic!("both calls are queued");
    };
    assert_eq!(first.job_id, second.job_id);
    assert_eq!(client.usage().await.expect("usage").month.cold_calls, 1);
    server.stop().await;
}
