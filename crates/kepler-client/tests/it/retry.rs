//! Transient failures are retried (never charged twice); every other answer is final.

use std::time::{Duration, Instant};

use kepler_client::{Error, RetryPolicy, ScoreOptions, StatusCode, Submitted};
use kepler_core::Tier;

use crate::support::{Act, Scripted, Server, Stub, builder};

fn unavailable(retry_after: &'static str) -> Act {
    Act::Answer(
        503,
        retry_after,
        r#"{"type":"/docs/errors#store_unavailable","title":"The store is unavailable; retry shortly","status":503,"detail":"the store is unavailable; retry shortly","error":"store_unavailable"}"#.to_owned(),
    )
}

/// The `Idempotency-Key` header of a request head.
fn idempotency_key(head: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("idempotency-key"))
        .map(|(_, value)| value.trim().to_owned())
}

#[tokio::test]
async fn a_503_is_retried_after_its_retry_after_then_succeeds() {
    let server = Server::start("", Scripted::default()).await;
    let key = server.sandbox_key().await;
    let stub = Stub::start(&server.base, vec![unavailable("retry-after: 1\r\n")]).await;
    let client = builder(&stub.base, &key).build().expect("client");

    let started = Instant::now();
    let record = client.score("grade-b.sandbox.test").await.expect("scored");
    assert_eq!(record.domain, "grade-b.sandbox.test");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After is a floor"
    );
    let seen = stub.requests();
    assert_eq!(seen.len(), 2);
    let keys: Vec<_> = seen.iter().map(|h| idempotency_key(h)).collect();
    assert!(keys[0].is_some(), "every POST carries an Idempotency-Key");
    assert_eq!(keys[0], keys[1], "a retry is the same request");
    server.stop().await;
}

#[tokio::test]
async fn a_lost_answer_is_retried_and_charged_once() {
    let server = Server::start("", Scripted::default()).await;
    let key = server.live_key(Tier::Starter).await;
    // The server admits the first POST (and charges it), but its 202 never arrives.
    let stub = Stub::start(&server.base, vec![Act::ForwardThenHangUp]).await;
    let client = builder(&stub.base, &key).build().expect("client");

    let submitted = client
        .submit("lost.example", ScoreOptions::default())
        .await
        .expect("the retry gets the answer");
    assert!(matches!(submitted, Submitted::Queued(_)), "{submitted:?}");
    assert_eq!(stub.requests().len(), 2);
    let usage = server.client(&key).usage().await.expect("usage");
    assert_eq!(
        usage.month.cold_calls, 1,
        "the retry replays, not re-admits"
    );
    server.stop().await;
}

#[tokio::test]
async fn retries_stop_when_the_policy_is_spent() {
    let server = Server::start("", Scripted::default()).await;
    let key = server.sandbox_key().await;
    let script = vec![unavailable(""), unavailable(""), unavailable("")];
    let stub = Stub::start(&server.base, script).await;
    let client = builder(&stub.base, &key)
        .retry(RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        })
        .build()
        .expect("client");

    let error = client.usage().await.expect_err("still unavailable");
    assert!(matches!(error, Error::StoreUnavailable { .. }), "{error:?}");
    assert_eq!(stub.requests().len(), 3, "one try and two retries");
    server.stop().await;
}

#[tokio::test]
async fn a_retry_after_longer_than_the_policy_allows_is_returned_at_once() {
    let server = Server::start("", Scripted::default()).await;
    let key = server.sandbox_key().await;
    let stub = Stub::start(&server.base, vec![unavailable("retry-after: 120\r\n")]).await;
    let client = builder(&stub.base, &key).build().expect("client");
    let error = client.usage().await.expect_err("unavailable");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(stub.requests().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn client_errors_and_limits_are_never_retried() {
    let server = Server::start(
        "[tiers.starter]\nmonthly_cold_cap = 1\n",
        Scripted::default(),
    )
    .await;
    let key = server.live_key(Tier::Starter).await;
    server
        .client(&key)
        .submit("first.example", ScoreOptions::default())
        .await
        .expect("admitted");
    let stub = Stub::start(&server.base, vec![]).await;
    let client = builder(&stub.base, &key).build().expect("client");

    assert!(
        client
            .score("second.example")
            .await
            .is_err_and(|e| e.is_limit())
    );
    assert!(matches!(
        client.score("not a domain").await,
        Err(Error::InvalidDomain { .. })
    ));
    let stranger = builder(&stub.base, "ki_live_nobodyhasthiskeynobodyhasthiskey")
        .build()
        .expect("client");
    assert!(matches!(
        stranger.usage().await,
        Err(Error::InvalidApiKey { .. })
    ));
    assert_eq!(stub.requests().len(), 3, "one request each");
    server.stop().await;
}

#[tokio::test]
async fn unknown_codes_and_internal_errors_are_kept_and_not_retried() {
    let server = Server::start("", Scripted::default()).await;
    let key = server.sandbox_key().await;
    let script = vec![
        Act::Answer(
            409,
            "request-id: stub-1\r\n",
            r#"{"error":"shiny_new_code","detail":"a code from a newer server","hint":42}"#
                .to_owned(),
        ),
        Act::Answer(
            500,
            "",
            r#"{"error":"internal_error","detail":"it has been logged"}"#.to_owned(),
        ),
    ];
    let stub = Stub::start(&server.base, script).await;
    let client = builder(&stub.base, &key).build().expect("client");

    let error = client.usage().await.expect_err("scripted");
    let Error::Api { problem, .. } = &error else {
        panic!("wrong variant: {error:?}");
    };
    assert_eq!(problem.status, StatusCode::CONFLICT);
    assert_eq!(problem.code.as_deref(), Some("shiny_new_code"));
    assert_eq!(problem.body["hint"], 42);
    assert_eq!(problem.request_id.as_deref(), Some("stub-1"));
    assert_eq!(
        error.to_string(),
        "409 shiny_new_code: a code from a newer server"
    );

    let error = client.usage().await.expect_err("scripted");
    assert!(matches!(error, Error::InternalError { .. }), "{error:?}");
    assert_eq!(stub.requests().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_dropped_connection_is_retried_and_an_unreachable_api_is_transport() {
    let server = Server::start("", Scripted::default()).await;
    let key = server.sandbox_key().await;
    let stub = Stub::start(&server.base, vec![Act::HangUp, Act::HangUp]).await;
    let client = builder(&stub.base, &key).build().expect("client");
    assert_eq!(client.usage().await.expect("third time lucky").tier, "free");
    assert_eq!(stub.requests().len(), 3);

    // A port nobody listens on: every retry is refused, then the error is returned.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = closed.local_addr().expect("addr");
    drop(closed);
    let nowhere = builder(&format!("http://{address}"), &key)
        .build()
        .expect("client");
    let error = nowhere.usage().await.expect_err("unreachable");
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_eq!(error.code(), None);
    server.stop().await;
}
