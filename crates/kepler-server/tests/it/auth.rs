//! §3: keys and authentication.

use kepler_core::Tier;
use reqwest::Method;
use serde_json::json;

use crate::support::{TestServer, config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_unknown_and_revoked_keys_are_invalid_api_key() {
    let server = TestServer::start(config("", ""), None).await;
    let account = server
        .store
        .create_account("acme", Tier::Growth)
        .await
        .expect("account");
    let revoked = server
        .store
        .create_key(account.account_id, false)
        .await
        .expect("key");
    server
        .store
        .revoke_key(revoked.key_id)
        .await
        .expect("revoke");
    let unknown = format!("ki_live_{}", "x".repeat(40));

    let routes = [
        (Method::POST, "/v1/score"),
        (Method::GET, "/v1/usage"),
        (Method::GET, "/v1/score/example.com"),
    ];
    for (method, path) in routes {
        for key in [
            None,
            Some(""),
            Some(unknown.as_str()),
            Some(revoked.key.as_str()),
            Some("garbage"),
        ] {
            let body = (method == Method::POST).then(|| json!({"domain": "example.com"}));
            let resp = server.call(method.clone(), path, key, body, 401).await;
            resp.problem("invalid_api_key");
        }
    }
    let job = format!("/v1/jobs/{}", uuid::Uuid::new_v4());
    server
        .call(Method::GET, &job, None, None, 401)
        .await
        .problem("invalid_api_key");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_api_key_and_bearer_both_authenticate() {
    let server = TestServer::start(config("", ""), None).await;
    let (account_id, key) = server.account(Tier::Starter).await;

    let via_header = server.get(&key, "/v1/usage", 200).await;
    assert_eq!(via_header.body["account_id"], account_id);

    let request = server
        .client
        .get(format!("{}/v1/usage", server.base))
        .bearer_auth(&key);
    let via_bearer = server.send(request, "GET /v1/usage (bearer)", 200).await;
    assert_eq!(via_bearer.body["account_id"], account_id);

    let wrong_bearer = server
        .client
        .get(format!("{}/v1/usage", server.base))
        .bearer_auth("ki_live_nope");
    server
        .send(wrong_bearer, "GET /v1/usage (bad bearer)", 401)
        .await
        .problem("invalid_api_key");

    // Request-Ids differ per request.
    let a = server.get(&key, "/v1/usage", 200).await;
    let b = server.get(&key, "/v1/usage", 200).await;
    assert_ne!(a.header("request-id"), b.header("request-id"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_after_use_is_refused_from_then_on() {
    let server = TestServer::start(config("", ""), None).await;
    let account = server
        .store
        .create_account("acme", Tier::Growth)
        .await
        .expect("account");
    let key = server
        .store
        .create_key(account.account_id, false)
        .await
        .expect("key");
    assert!(
        key.key.starts_with("ki_live_") && key.key.len() >= "ki_live_".len() + 32,
        "{}",
        key.key
    );
    let other = server
        .store
        .create_key(account.account_id, false)
        .await
        .expect("key");
    server.get(&key.key, "/v1/usage", 200).await;
    server.store.revoke_key(key.key_id).await.expect("revoke");
    server
        .get(&key.key, "/v1/usage", 401)
        .await
        .problem("invalid_api_key");
    server.get(&other.key, "/v1/usage", 200).await;
    server.stop().await;
}
