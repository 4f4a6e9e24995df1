//! IETF `RateLimit-Policy` / `RateLimit` header fields (draft-ietf-httpapi-ratelimit-headers)
//! for the three cold-call limits, on every response to a live key.

use std::cell::RefCell;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, Utc};
use kepler_core::admission::{LimitKind, WindowUsage};
use kepler_store::UsageSnapshot;

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// A field's two numbers for each window, in the order of [`KINDS`].
type Numbers = [(u64, u64); 3];

const KINDS: [LimitKind; 3] = [LimitKind::Month, LimitKind::KeyHour, LimitKind::AccountDay];

fn windows(usage: &UsageSnapshot) -> [&WindowUsage; 3] {
    [&usage.month, &usage.key_hour, &usage.account_day]
}

/// The three windows as one structured field: `"NAME";A=X;B=Y, ...`. Written
/// straight into one string: `format!` per item cost a cached hit ~14k
/// instructions of its ~92k (bench/callgrind/run).
fn field((a, b): (&str, &str), numbers: &Numbers) -> String {
    let mut text = String::with_capacity(128);
    let mut digits = itoa::Buffer::new();
    for (i, (kind, (x, y))) in KINDS.iter().zip(numbers).enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push('"');
        text.push_str(kind.policy_name());
        text.push_str("\";");
        text.push_str(a);
        text.push('=');
        text.push_str(digits.format(*x));
        text.push(';');
        text.push_str(b);
        text.push('=');
        text.push_str(digits.format(*y));
    }
    text
}

fn policy_numbers(usage: &UsageSnapshot) -> Numbers {
    let windows = windows(usage);
    std::array::from_fn(|i| (windows[i].limit, KINDS[i].window_seconds().unsigned_abs()))
}

fn remaining_numbers(usage: &UsageSnapshot, now: DateTime<Utc>) -> Numbers {
    windows(usage).map(|w| {
        let reset = (w.resets_at - now).num_seconds().max(0);
        (w.remaining(), reset.unsigned_abs())
    })
}

/// `"month";q=100;w=2678400, "key_hour";q=200;w=3600, "account_day";q=100;w=86400`
#[cfg(test)]
fn policy_value(usage: &UsageSnapshot) -> String {
    field(POLICY_PARAMS, &policy_numbers(usage))
}

/// `"month";r=97;t=259200, ...`: what remains and seconds until it next frees.
#[cfg(test)]
fn remaining_value(usage: &UsageSnapshot, now: DateTime<Utc>) -> String {
    field(REMAINING_PARAMS, &remaining_numbers(usage, now))
}

const POLICY_PARAMS: (&str, &str) = ("q", "w");
const REMAINING_PARAMS: (&str, &str) = ("r", "t");

/// The last value each thread made for one field, by its numbers. Repeated
/// hits of one key see the same numbers within a second (the resets count
/// whole seconds), so the value is shared, not written again: a header
/// value clones by reference count.
struct LastValue(RefCell<Option<(Numbers, HeaderValue)>>);

impl LastValue {
    const fn new() -> LastValue {
        LastValue(RefCell::new(None))
    }

    fn get(&self, params: (&str, &str), numbers: Numbers) -> Option<HeaderValue> {
        let mut last = self.0.borrow_mut();
        if let Some((seen, value)) = last.as_ref()
            && *seen == numbers
        {
            return Some(value.clone());
        }
        // Takes the string's buffer as the value's: no copy.
        let value = HeaderValue::try_from(field(params, &numbers)).ok()?;
        *last = Some((numbers, value.clone()));
        Some(value)
    }
}

thread_local! {
    static LAST_POLICY: LastValue = const { LastValue::new() };
    static LAST_REMAINING: LastValue = const { LastValue::new() };
}

/// Adds both fields to `headers`.
pub fn apply(headers: &mut HeaderMap, usage: &UsageSnapshot, now: DateTime<Utc>) {
    let policy = LAST_POLICY.with(|last| last.get(POLICY_PARAMS, policy_numbers(usage)));
    let remaining =
        LAST_REMAINING.with(|last| last.get(REMAINING_PARAMS, remaining_numbers(usage, now)));
    for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, remaining)] {
        if let Some(value) = value {
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

    #[test]
    fn a_remembered_value_always_matches_the_usage() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 28, 0, 0, 0)
            .single()
            .expect("valid");
        let w = |used, limit, secs| WindowUsage {
            used,
            limit,
            resets_at: now + chrono::Duration::seconds(secs),
        };
        let usage = |used| UsageSnapshot {
            month: w(used, 100, 259_200),
            key_hour: w(used, 200, 3_600),
            account_day: w(used, 100, 86_000),
            month_cost_micros: 0,
        };
        let sent = |usage: &UsageSnapshot, now| {
            let mut headers = HeaderMap::new();
            apply(&mut headers, usage, now);
            (
                headers[RATELIMIT_POLICY]
                    .to_str()
                    .expect("ascii")
                    .to_owned(),
                headers[RATELIMIT].to_str().expect("ascii").to_owned(),
            )
        };
        for (usage, now) in [
            (usage(3), now),
            (usage(3), now),
            (usage(4), now),
            (usage(4), now + chrono::Duration::seconds(1)),
            (usage(3), now),
        ] {
            assert_eq!(
                sent(&usage, now),
                (policy_value(&usage), remaining_value(&usage, now))
            );
        }
    }
}
