//! Every error class the API can answer, as its typed variant; failed runs and
//! waits that give up.

use std::time::Duration;

use chrono::Utc;
use kepler_client::{Error, ScoreOptions, StatusCode, Submitted, Uuid};
use kepler_core::{FailureReason, Tier};

use crate::support::{Outcome, Scripted, Server, builder};

/// Tiers whose limits trip on the second cold call, one limit each.
const ONE_CALL_LIMITS: &str = "
[tiers.starter]
monthly_cold_cap = 1
[tiers.growth]
key_hourly_cold_limit = 1
[tiers.scale]
account_daily_cold_limit = 1
";

#[tokio::test]
async fn an_unknown_key_is_invalid_api_key_on_every_call() {
    let server = Server::start("", Scripted::default()).await;
    let client = server.client("ki_live_nobodyhasthiskeynobodyhasthiskey");
    let error = client.score("example.com").await.expect_err("refused");
    let Error::InvalidApiKey { problem } = &error else {
        panic!("wrong variant: {error:?}");
    };
    assert_eq!(problem.status, StatusCode::UNAUTHORIZED);
    assert!(
        problem.request_id.is_some(),
        "every answer has a Request-Id"
    );
    assert_eq!(error.code(), Some("invalid_api_key"));
    assert!(matches!(
        client.usage().await,
        Err(Error::InvalidApiKey { .. })
    ));
    assert!(matches!(
        client.job(Uuid::new_v4()).await,
        Err(Error::InvalidApiKey { .. })
    ));
    assert!(matches!(
        client.record("example.com").await,
        Err(Error::InvalidApiKey { .. })
    ));
    server.stop().await;
}

#[tokio::test]
async fn input_errors_are_typed() {
    let server = Server::start("", Scripted::default()).await;
    let live = server.client(&server.live_key(Tier::Growth).await);

    match live.score("https://example.com/path").await {
        Err(Error::InvalidDomain { domain, problem }) => {
            assert_eq!(domain.as_deref(), Some("https://example.com/path"));
            assert_eq!(problem.status, StatusCode::BAD_REQUEST);
        }
        other => panic!("wrong answer: {other:?}"),
    }
    // The path segment is encoded, so even a slash reaches the API as a domain.
    assert!(matches!(
        live.record("a/b").await,
        Err(Error::InvalidDomain { .. })
    ));
    assert!(matches!(
        live.record("never-scored.example").await,
        Err(Error::NotScored { .. })
    ));
    assert!(matches!(
        live.job(Uuid::new_v4()).await,
        Err(Error::JobNotFound { .. })
    ));
    let bad_key = ScoreOptions {
        idempotency_key: Some("two words".into()),
        ..ScoreOptions::default()
    };
    assert!(matches!(
        live.score_with("example.com", bad_key).await,
        Err(Error::InvalidRequest { .. })
    ));

    let sandbox = server.client(&server.sandbox_key().await);
    match sandbox.score("example.com").await {
        Err(Error::SandboxDomainUnknown {
            sandbox_domains, ..
        }) => assert!(sandbox_domains.contains(&"grade-a.sandbox.test".to_owned())),
        other => panic!("wrong answer: {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn tier_refusals_carry_the_tier() {
    let server = Server::start("", Scripted::default()).await;
    let growth = server.client(&server.live_key(Tier::Growth).await);
    let forced = ScoreOptions {
        force_fresh: true,
        ..ScoreOptions::default()
    };
    match growth.score_with("example.com", forced).await {
        Err(Error::ForceFreshNotAllowed { tier, .. }) => {
            assert_eq!(tier.as_deref(), Some("growth"))
        }
        other => panic!("wrong answer: {other:?}"),
    }
    let free = server.client(&server.live_key(Tier::Free).await);
    match free.score("example.com").await {
        Err(Error::FreeTierSandboxOnly { tier, problem }) => {
            assert_eq!(tier.as_deref(), Some("free"));
            assert_eq!(problem.status, StatusCode::FORBIDDEN);
        }
        other => panic!("wrong answer: {other:?}"),
    }
    server.stop().await;
}

/// A first cold call is queued; the second trips the limit.
async fn second_call_error(server: &Server, tier: Tier) -> Error {
    let client = server.client(&server.live_key(tier).await);
    let first = client
        .submit("first.example", ScoreOptions::default())
        .await;
    assert!(matches!(first, Ok(Submitted::Queued(_))), "{first:?}");
    client
        .score("second.example")
        .await
        .expect_err("the limit is reached")
}

#[tokio::test]
async fn each_limit_is_its_own_variant_with_its_numbers() {
    let server = Server::start(ONE_CALL_LIMITS, Scripted::default()).await;

    let month = second_call_error(&server, Tier::Starter).await;
    let Error::ColdBudgetExhausted {
        limit,
        used,
        resets_at,
        retry_after,
        problem,
    } = &month
    else {
        panic!("wrong variant: {month:?}");
    };
    assert_eq!((*limit, *used), (1, 1));
    assert!(*resets_at > Utc::now());
    assert!(*retry_after > Duration::ZERO);
    assert_eq!(problem.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(month.is_limit());
    assert_eq!(month.retry_after(), Some(*retry_after));

    let hour = second_call_error(&server, Tier::Growth).await;
    let Error::KeyHourlyColdLimit {
        limit,
        used,
        retry_after,
        ..
    } = &hour
    else {
        panic!("wrong variant: {hour:?}");
    };
    assert_eq!((*limit, *used), (1, 1));
    // The window frees an hour after the first call: within the hour, not before now.
    assert!(*retry_after > Duration::ZERO && *retry_after <= Duration::from_secs(3600));

    let day = second_call_error(&server, Tier::Scale).await;
    let Error::AccountBreakerOpen {
        limit,
        used,
        retry_after,
        ..
    } = &day
    else {
        panic!("wrong variant: {day:?}");
    };
    assert_eq!((*limit, *used), (1, 1));
    assert!(
        *retry_after > Duration::from_secs(3600) && *retry_after <= Duration::from_secs(86_400)
    );
    server.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_reused_with_another_domain_is_refused() {
    let server = Server::start("", Scripted::default()).await;
    let client = server.client(&server.live_key(Tier::Growth).await);
    let keyed = || ScoreOptions {
        idempotency_key: Some("order-4711".into()),
        ..ScoreOptions::default()
    };
    let first = client
        .submit("one.example", keyed())
        .await
        .expect("admitted");
    let replay = client
        .submit("one.example", keyed())
        .await
        .expect("replayed");
    assert_eq!(
        first, replay,
        "the same key and body replay the first answer"
    );
    assert!(matches!(
        client.submit("two.example", keyed()).await,
        Err(Error::IdempotencyKeyReused { .. })
    ));
    assert_eq!(client.usage().await.expect("usage").month.cold_calls, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_failed_run_is_job_failed_with_its_reason() {
    let scripted = Scripted::default().with(
        "nxdomain.example",
        Outcome::Fail(FailureReason::DomainNotResolvable, Duration::ZERO),
    );
    let server = Server::start("", scripted).await;
    let key = server.live_key(Tier::Growth).await;
    let client = server.client(&key);

    // Through score(): the 202, a Retry-After of 5 s, then the failed job.
    match client.score("nxdomain.example").await {
        Err(Error::JobFailed {
            domain,
            failure_reason,
            ..
        }) => {
            assert_eq!(domain, "nxdomain.example");
            assert_eq!(failure_reason, "domain_not_resolvable");
        }
        other => panic!("wrong answer: {other:?}"),
    }
    // And waiting on the job again says the same.
    let Submitted::Queued(job) = client
        .submit("nxdomain.example", ScoreOptions::default())
        .await
        .expect("admitted")
    else {
        panic!("a failed run leaves no record to serve");
    };
    let error = client.wait_for_score(job.job_id).await.expect_err("failed");
    assert_eq!(error.code(), Some("job_failed"));
    assert!(
        error.to_string().contains("domain_not_resolvable"),
        "{error}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_run_that_outlasts_give_up_after_is_timeout() {
    let scripted =
        Scripted::default().with("slow.example", Outcome::Record(Duration::from_secs(60)));
    let server = Server::start("", scripted).await;
    let key = server.live_key(Tier::Growth).await;
    let client = builder(&server.base, &key)
        .give_up_after(Duration::from_millis(400))
        .build()
        .expect("client");

    let started = std::time::Instant::now();
    let error = client.score("slow.example").await.expect_err("gave up");
    // The 202's Retry-After (5 s) is cut short by the deadline.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let Error::Timeout {
        job_id,
        domain,
        waited,
    } = error
    else {
        panic!("wrong variant: {error:?}");
    };
    assert_eq!(domain, "slow.example");
    assert!(waited >= Duration::from_millis(400));

    // The job is still there to wait for later.
    let job = client.job(job_id).await.expect("job");
    assert!(!job.status.is_settled());
    assert!(matches!(
        client.wait_for_score(job_id).await,
        Err(Error::Timeout { .. })
    ));
    server.stop().await;
}
