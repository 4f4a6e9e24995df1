//! §5 steps 6–8: the three cold-call limits, exact under concurrency, and the
//! RateLimit header fields.

use std::sync::Arc;

use futures::future::join_all;
use kepler_core::Tier;
use serde_json::json;

use crate::support::{Resp, TestServer, config};

/// A 429 with everything §5 promises.
fn check_limited(resp: &Resp, code: &str, limit: u64, used: u64) {
    let body = resp.problem(code);
    assert_eq!(body["limit"], limit, "{}", resp.text);
    assert_eq!(body["used"], used, "{}", resp.text);
    let resets_at = body["resets_at"].as_str().expect("resets_at");
    let resets_at = chrono::DateTime::parse_from_rfc3339(resets_at).expect("resets_at is RFC 3339");
    assert!(
        resets_at > chrono::Utc::now(),
        "resets in the future: {resets_at}"
    );
    let retry: u64 = resp
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After is seconds");
    assert!(retry > 0, "Retry-After {retry}");
}

fn check_ratelimit_headers(resp: &Resp) {
    let policy = resp
        .header("ratelimit-policy")
        .unwrap_or_else(|| panic!("RateLimit-Policy missing: {:?}", resp.headers));
    let remaining = resp
        .header("ratelimit")
        .unwrap_or_else(|| panic!("RateLimit missing: {:?}", resp.headers));
    for name in ["\"month\"", "\"key_hour\"", "\"account_day\""] {
        assert!(policy.contains(name), "policy {policy}");
        assert!(remaining.contains(name), "ratelimit {remaining}");
    }
    assert!(policy.contains(";q=") && policy.contains(";w="), "{policy}");
    assert!(
        remaining.contains(";r=") && remaining.contains(";t="),
        "{remaining}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monthly_cap_is_exact_under_200_concurrent_requests() {
    let cfg = config(
        "enabled = false",
        "[tiers.starter]\nmonthly_cold_cap = 25\n",
    );
    let server = Arc::new(TestServer::start(cfg, None).await);
    let (_, key) = server.account(Tier::Starter).await;

    let calls = (0..200).map(|i| {
        let server = server.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let request = server
                .client
                .post(format!("{}/v1/score", server.base))
                .header("x-api-key", &key)
                .json(&json!({"domain": format!("d{i}.example")}));
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = response.text().await.expect("body");
            Resp {
                status,
                headers,
                body: serde_json::from_str(&text).unwrap_or_default(),
                text,
            }
        })
    });
    let responses: Vec<Resp> = join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let admitted = responses.iter().filter(|r| r.status == 202).count();
    let refused: Vec<&Resp> = responses.iter().filter(|r| r.status == 429).collect();
    let other: Vec<String> = responses
        .iter()
        .filter(|r| r.status != 202 && r.status != 429)
        .map(|r| format!("{} {}", r.status, r.text))
        .collect();
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    assert_eq!(admitted, 25);
    assert_eq!(refused.len(), 175);
    for resp in refused {
        check_limited(resp, "cold_budget_exhausted", 25, 25);
        check_ratelimit_headers(resp);
        assert!(
            resp.header("ratelimit")
                .is_some_and(|v| v.contains("\"month\";r=0")),
            "{:?}",
            resp.header("ratelimit")
        );
    }
    let usage = server.usage(&key).await;
    assert_eq!(usage["month"]["cold_calls"], 25);
    assert_eq!(usage["month"]["remaining"], 0);
    let stats = server
        .store
        .queue_stats(chrono::Utc::now())
        .await
        .expect("stats");
    assert_eq!(stats.jobs_pending, 25);
    match Arc::try_unwrap(server) {
        Ok(server) => server.stop().await,
        Err(_) => panic!("server still shared"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_hourly_limit_then_account_breaker() {
    let cfg = config(
        "enabled = false",
        "[tiers.growth]\nkey_hourly_cold_limit = 2\naccount_daily_cold_limit = 3\n",
    );
    let server = TestServer::start(cfg, None).await;
    let (account_id, first) = server.account(Tier::Growth).await;
    let second = server.key(&account_id, false).await;

    for domain in ["k1.example", "k2.example"] {
        let resp = server
            .post_score(&first, json!({"domain": domain}), 202)
            .await;
        check_ratelimit_headers(&resp);
    }
    let resp = server
        .post_score(&first, json!({"domain": "k3.example"}), 429)
        .await;
    check_limited(&resp, "key_hourly_cold_limit", 2, 2);
    check_ratelimit_headers(&resp);

    // Another key of the same account has its own hour, but shares the 24 h breaker.
    server
        .post_score(&second, json!({"domain": "k3.example"}), 202)
        .await;
    let resp = server
        .post_score(&second, json!({"domain": "k4.example"}), 429)
        .await;
    check_limited(&resp, "account_breaker_open", 3, 3);

    // A refused call is not counted; an in-flight job is still answered (step 5 before 6–8).
    let usage = server.usage(&first).await;
    assert_eq!(usage["month"]["cold_calls"], 3);
    assert_eq!(usage["account_day"]["cold_calls"], 3);
    assert_eq!(usage["key_hour"]["cold_calls"], 2);
    server
        .post_score(&first, json!({"domain": "k1.example"}), 202)
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_responses_carry_ratelimit_fields() {
    let server = TestServer::start(config("enabled = false", ""), None).await;
    let (account_id, key) = server.account(Tier::Starter).await;
    let accepted = server
        .post_score(&key, json!({"domain": "rl.example"}), 202)
        .await;
    check_ratelimit_headers(&accepted);
    assert_eq!(
        accepted.header("ratelimit-policy"),
        Some("\"month\";q=100;w=2678400, \"key_hour\";q=200;w=3600, \"account_day\";q=100;w=86400")
    );
    assert!(
        accepted
            .header("ratelimit")
            .is_some_and(|v| v.contains("\"month\";r=99;") && v.contains("\"key_hour\";r=199;"))
    );
    let job = format!("/v1/jobs/{}", accepted.body["job_id"].as_str().expect("id"));
    check_ratelimit_headers(&server.get(&key, &job, 200).await);
    check_ratelimit_headers(&server.get(&key, "/v1/usage", 200).await);
    check_ratelimit_headers(&server.get(&key, "/v1/score/rl.example", 404).await);
    let sandbox = server.key(&account_id, true).await;
    let canned = server
        .post_score(&sandbox, json!({"domain": "grade-a.sandbox.test"}), 200)
        .await;
    assert!(
        canned.header("ratelimit").is_none(),
        "sandbox calls are not counted, so no RateLimit fields"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_hourly_limit_is_exact_under_concurrency() {
    let cfg = config(
        "enabled = false",
        "[tiers.scale]\nkey_hourly_cold_limit = 10\n",
    );
    let server = Arc::new(TestServer::start(cfg, None).await);
    let (_, key) = server.account(Tier::Scale).await;
    let calls = (0..60).map(|i| {
        let server = server.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let request = server
                .client
                .post(format!("{}/v1/score", server.base))
                .header("x-api-key", &key)
                .json(&json!({"domain": format!("h{i}.example")}));
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let text = response.text().await.expect("body");
            (status, text)
        })
    });
    let answers: Vec<(u16, String)> = join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 202).count(),
        10,
        "{answers:?}"
    );
    let refused: Vec<&String> = answers
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, t)| t)
        .collect();
    assert_eq!(refused.len(), 50, "{answers:?}");
    assert!(
        refused
            .iter()
            .all(|t| t.contains("\"key_hourly_cold_limit\"")),
        "{refused:?}"
    );
    assert_eq!(server.usage(&key).await["key_hour"]["cold_calls"], 10);
    match Arc::try_unwrap(server) {
        Ok(server) => server.stop().await,
        Err(_) => panic!("server still shared"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_matches_resets_at() {
    let cfg = config(
        "enabled = false",
        "[tiers.growth]\nmonthly_cold_cap = 1\n[tiers.scale]\nkey_hourly_cold_limit = 1\n",
    );
    let server = TestServer::start(cfg, None).await;
    let (_, growth) = server.account(Tier::Growth).await;
    let (_, scale) = server.account(Tier::Scale).await;
    for (key, code) in [
        (&growth, "cold_budget_exhausted"),
        (&scale, "key_hourly_cold_limit"),
    ] {
        server
            .post_score(key, json!({"domain": "r1.example"}), 202)
            .await;
        let resp = server
            .post_score(key, json!({"domain": "r2.example"}), 429)
            .await;
        check_limited(&resp, code, 1, 1);
        let resets_at = chrono::DateTime::parse_from_rfc3339(
            resp.body["resets_at"].as_str().expect("resets_at"),
        )
        .expect("date");
        let until = (resets_at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
        let retry: i64 = resp
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("seconds");
        assert!(
            (retry - until).abs() <= 2,
            "{code}: Retry-After {retry} vs resets_at in {until} s"
        );
        if code == "key_hourly_cold_limit" {
            assert!(
                (3590..=3600).contains(&retry),
                "an hour from the only call: {retry}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_breaker_is_exact_across_keys_under_concurrency() {
    let cfg = config(
        "enabled = false",
        "[tiers.growth]\naccount_daily_cold_limit = 12\n",
    );
    let server = Arc::new(TestServer::start(cfg, None).await);
    let (account_id, first) = server.account(Tier::Growth).await;
    let mut keys = vec![first];
    for _ in 0..3 {
        keys.push(server.key(&account_id, false).await);
    }
    let calls = (0..60).map(|i| {
        let server = server.clone();
        let key = keys[i % keys.len()].clone();
        tokio::spawn(async move {
            let request = server
                .client
                .post(format!("{}/v1/score", server.base))
                .header("x-api-key", &key)
                .json(&json!({"domain": format!("b{i}.example")}));
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        })
    });
    let answers: Vec<(u16, String)> = join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 202).count(),
        12,
        "{answers:?}"
    );
    let refused: Vec<&String> = answers
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, t)| t)
        .collect();
    assert_eq!(refused.len(), 48, "{answers:?}");
    assert!(
        refused
            .iter()
            .all(|t| t.contains("\"account_breaker_open\"")),
        "{refused:?}"
    );
    assert_eq!(
        server.usage(&keys[0]).await["account_day"]["cold_calls"],
        12
    );
    match Arc::try_unwrap(server) {
        Ok(server) => server.stop().await,
        Err(_) => panic!("server still shared"),
    }
}
