//! IETF `RateLimit-Policy` / `RateLimit` header fields (draft-ietf-httpapi-ratelimit-headers)
//! for the three cold-call limits, on every response to a live key.

use axum::http::{HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};
use kepler_core::admission::{LimitKind, WindowUsage};
use kepler_store::UsageSnapshot;

fn windows(usage: &UsageSnapshot) -> [(LimitKind, WindowUsage); 3] {
    [
        (LimitKind::Month, usage.month),
        (LimitKind::KeyHour, usage.key_hour),
        (LimitKind::AccountDay, usage.account_day),
    ]
}

/// `"month";q=100;w=2678400, "key_hour";q=200;w=3600, "account_day";q=100;w=86400`
pub fn policy_value(usage: &UsageSnapshot) -> String {
    windows(usage)
        .iter()
        .map(|(kind, w)| {
            format!(
                "\"{}\";q={};w={}",
                kind.policy_name(),
                w.limit,
                kind.window_seconds()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `"month";r=97;t=259200, ...`: what remains and seconds until it next frees.
pub fn remaining_value(usage: &UsageSnapshot, now: DateTime<Utc>) -> String {
    windows(usage)
        .iter()
        .map(|(kind, w)| {
            let reset = (w.resets_at - now).num_seconds().max(0);
            format!("\"{}\";r={};t={}", kind.policy_name(), w.remaining(), reset)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds both fields to `headers`.
pub fn apply(headers: &mut HeaderMap, usage: &UsageSnapshot, now: DateTime<Utc>) {
    for (name, value) in [
        ("ratelimit-policy", policy_value(usage)),
        ("ratelimit", remaining_value(usage, now)),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fields_follow_the_draft_syntax() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 28, 0, 0, 0)
            .single()
            .expect("valid");
        let w = |used, limit, secs| WindowUsage {
            used,
            limit,
            resets_at: now + chrono::Duration::seconds(secs),
        };
        let usage = UsageSnapshot {
            month: w(3, 100, 259_200),
            key_hour: w(3, 200, 3_600),
            account_day: w(100, 100, 86_000),
            month_cost_micros: 240_000,
        };
        assert_eq!(
            policy_value(&usage),
            "\"month\";q=100;w=2678400, \"key_hour\";q=200;w=3600, \"account_day\";q=100;w=86400"
        );
        assert_eq!(
            remaining_value(&usage, now),
            "\"month\";r=97;t=259200, \"key_hour\";r=197;t=3600, \"account_day\";r=0;t=86000"
        );
    }
}
