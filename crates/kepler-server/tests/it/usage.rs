//! §9: GET /v1/usage, field for field.

use chrono::{Datelike, TimeZone, Utc};
use kepler_core::Tier;
use serde_json::{Value, json};

use crate::support::{TestServer, config};

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn first_of_next_month() -> String {
    let now = Utc::now();
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .expect("valid date")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn assert_future_rfc3339(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("resets_at string: {value}"));
    let at = chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert!(at > Utc::now(), "{text} is in the future");
    assert!(text.ends_with('Z'), "{text} is UTC");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_has_the_documented_shape_and_cost() {
    let server = TestServer::start(config("enabled = false", ""), None).await;
    let (account_id, key) = server.account(Tier::Starter).await;

    let empty = server.usage(&key).await;
    assert_eq!(empty["month"]["cold_calls"], 0);
    assert_eq!(empty["month"]["remaining"], 100);
    assert_eq!(empty["month"]["cost_usd"], 0.0);

    for domain in ["u1.example", "u2.example", "u3.example"] {
        server
            .post_score(&key, json!({"domain": domain}), 202)
            .await;
    }
    let usage = server.usage(&key).await;
    assert_eq!(
        keys(&usage),
        ["account_day", "account_id", "key_hour", "month", "tier"]
    );
    assert_eq!(usage["account_id"], account_id);
    assert_eq!(usage["tier"], "starter");
    assert_eq!(
        keys(&usage["month"]),
        ["cap", "cold_calls", "cost_usd", "remaining", "resets_at"]
    );
    assert_eq!(
        keys(&usage["key_hour"]),
        ["cold_calls", "limit", "resets_at"]
    );
    assert_eq!(
        keys(&usage["account_day"]),
        ["cold_calls", "limit", "resets_at"]
    );

    assert_eq!(usage["month"]["cold_calls"], 3);
    assert_eq!(usage["month"]["cap"], 100);
    assert_eq!(usage["month"]["remaining"], 97);
    let cost = usage["month"]["cost_usd"]
        .as_f64()
        .expect("cost_usd is a number");
    assert!((cost - 3.0 * 0.08).abs() < 1e-9, "cost_usd {cost}");
    assert_eq!(usage["month"]["resets_at"], first_of_next_month().as_str());
    assert_eq!(usage["key_hour"]["cold_calls"], 3);
    assert_eq!(usage["key_hour"]["limit"], 200);
    assert_eq!(usage["account_day"]["cold_calls"], 3);
    assert_eq!(usage["account_day"]["limit"], 100);
    for window in ["month", "key_hour", "account_day"] {
        assert_future_rfc3339(&usage[window]["resets_at"]);
    }
    // Rolling windows free up when their oldest call leaves them: an hour and a day from now.
    let in_secs = |window: &str| {
        let text = usage[window]["resets_at"].as_str().expect("resets_at");
        (chrono::DateTime::parse_from_rfc3339(text)
            .expect("date")
            .with_timezone(&Utc)
            - Utc::now())
        .num_seconds()
    };
    assert!(
        (3_580..=3_600).contains(&in_secs("key_hour")),
        "key_hour resets in {} s",
        in_secs("key_hour")
    );
    assert!(
        (86_380..=86_400).contains(&in_secs("account_day")),
        "account_day resets in {} s",
        in_secs("account_day")
    );

    // Another key of the account: same month and day, its own hour.
    let other = server.key(&account_id, false).await;
    let seen = server.usage(&other).await;
    assert_eq!(seen["month"]["cold_calls"], 3);
    assert_eq!(seen["account_day"]["cold_calls"], 3);
    assert_eq!(seen["key_hour"]["cold_calls"], 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_follows_the_tier_price() {
    let server = TestServer::start(
        config(
            "enabled = false",
            "[tiers.scale]\ncost_per_cold_call_usd = 0.5\n",
        ),
        None,
    )
    .await;
    for (tier, price) in [
        (Tier::Growth, 0.04),
        (Tier::Scale, 0.5),
        (Tier::Enterprise, 0.01),
    ] {
        let (_, key) = server.account(tier).await;
        for i in 0..2 {
            server
                .post_score(&key, json!({"domain": format!("c{i}.example")}), 202)
                .await;
        }
        let usage = server.usage(&key).await;
        let cost = usage["month"]["cost_usd"].as_f64().expect("number");
        assert!((cost - 2.0 * price).abs() < 1e-9, "{tier:?}: {cost}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_tier_usage_shows_a_zero_cap() {
    let server = TestServer::start(config("enabled = false", ""), None).await;
    let (account_id, key) = server.account(Tier::Free).await;
    let usage = server.usage(&key).await;
    assert_eq!(
        keys(&usage),
        ["account_day", "account_id", "key_hour", "month", "tier"]
    );
    assert_eq!(usage["account_id"], account_id);
    assert_eq!(usage["tier"], "free");
    assert_eq!(usage["month"]["cap"], 0);
    assert_eq!(usage["month"]["remaining"], 0);
    assert_eq!(usage["month"]["cold_calls"], 0);
    assert_eq!(usage["month"]["cost_usd"], 0.0);
    server.stop().await;
}
