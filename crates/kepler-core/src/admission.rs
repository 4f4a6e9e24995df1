//! The admission decision of `POST /v1/score` (API.md §5), as a pure function.
//!
//! The store gathers the facts inside its admission transaction and calls
//! [`decide`]; because the facts are read and the cold call written under the
//! same lock, the limits stay exact under any concurrency. Step 1 (sandbox keys)
//! is decided by the server before any facts are gathered (`kepler_server::sandbox`).

use chrono::{DateTime, Datelike, Duration as ChronoDuration, TimeZone, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::tier::{Tier, TierPolicy};

/// One of the three cold-call limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// Calendar month (UTC), per account.
    Month,
    /// Rolling hour, per key.
    KeyHour,
    /// Rolling 24 hours, per account (the breaker).
    AccountDay,
}

impl LimitKind {
    /// The stable error code a request refused by this limit answers with.
    pub fn error_code(self) -> &'static str {
        match self {
            LimitKind::Month => "cold_budget_exhausted",
            LimitKind::KeyHour => "key_hourly_cold_limit",
            LimitKind::AccountDay => "account_breaker_open",
        }
    }

    /// The `RateLimit-Policy` item name.
    pub fn policy_name(self) -> &'static str {
        match self {
            LimitKind::Month => "month",
            LimitKind::KeyHour => "key_hour",
            LimitKind::AccountDay => "account_day",
        }
    }

    /// The window length in seconds, as `RateLimit-Policy` states it
    /// (the month as 31 days: its actual reset is given by `resets_at`).
    pub fn window_seconds(self) -> i64 {
        match self {
            LimitKind::Month => 31 * 86_400,
            LimitKind::KeyHour => 3_600,
            LimitKind::AccountDay => 86_400,
        }
    }
}

/// The length of the rolling per-key window.
pub const KEY_WINDOW: ChronoDuration = ChronoDuration::hours(1);
/// The length of the rolling per-account window.
pub const ACCOUNT_WINDOW: ChronoDuration = ChronoDuration::hours(24);

/// How much of one limit is used, and when it frees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WindowUsage {
    pub used: u64,
    pub limit: u64,
    /// For the month, the next 1st at 00:00 UTC. For rolling windows, the moment
    /// the count next drops: when at or over the limit, the moment it drops below it.
    pub resets_at: DateTime<Utc>,
}

impl WindowUsage {
    /// What is left (never negative).
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// Whether no further cold call fits.
    pub fn is_exhausted(&self) -> bool {
        self.used >= self.limit
    }

    /// Whole seconds until `resets_at`, at least 1 (for `Retry-After`).
    pub fn retry_after_secs(&self, now: DateTime<Utc>) -> u64 {
        let millis = (self.resets_at - now).num_milliseconds().max(0) as u64;
        millis.div_ceil(1000).max(1)
    }
}

/// Everything the decision depends on, gathered by the store under its lock.
#[derive(Debug, Clone)]
pub struct AdmissionFacts {
    pub tier: Tier,
    pub policy: TierPolicy,
    pub force_fresh: bool,
    /// When the newest stored record for the domain was scored.
    pub newest_record_at: Option<DateTime<Utc>>,
    /// This account's pending or running job for the domain.
    pub in_flight_job: Option<Uuid>,
    pub month: WindowUsage,
    pub key_hour: WindowUsage,
    pub account_day: WindowUsage,
    pub now: DateTime<Utc>,
}

/// What `POST /v1/score` does, steps 2–9 of API.md §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Step 2: 403 `force_fresh_not_allowed`.
    ForceFreshNotAllowed,
    /// Step 3: 200 with the stored record, `cached: true`.
    ServeFresh,
    /// Step 4: 403 `free_tier_sandbox_only`.
    FreeTierSandboxOnly,
    /// Step 5: 202 with the account's job already in flight.
    ExistingJob(Uuid),
    /// Steps 6–8: 429 with the limit that refused.
    LimitReached(LimitKind, WindowUsage),
    /// Step 9: count, charge and queue.
    Admit,
}

/// Whether a record scored at `scored_at` is fresh for a tier at `now`.
pub fn is_fresh(policy: &TierPolicy, scored_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let window = ChronoDuration::from_std(policy.freshness).unwrap_or(ChronoDuration::MAX);
    now.signed_duration_since(scored_at) < window
}

/// Decides steps 2–9 of API.md §5, first match wins.
pub fn decide(facts: &AdmissionFacts) -> Decision {
    if facts.force_fresh && !facts.policy.force_fresh {
        return Decision::ForceFreshNotAllowed;
    }
    if !facts.force_fresh
        && let Some(scored_at) = facts.newest_record_at
        && is_fresh(&facts.policy, scored_at, facts.now)
    {
        return Decision::ServeFresh;
    }
    if facts.tier == Tier::Free {
        return Decision::FreeTierSandboxOnly;
    }
    if let Some(job) = facts.in_flight_job {
        return Decision::ExistingJob(job);
    }
    for (kind, usage) in [
        (LimitKind::Month, facts.month),
        (LimitKind::KeyHour, facts.key_hour),
        (LimitKind::AccountDay, facts.account_day),
    ] {
        if usage.is_exhausted() {
            return Decision::LimitReached(kind, usage);
        }
    }
    Decision::Admit
}

/// The first instant of the calendar month (UTC) containing `now`.
pub fn month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .expect("the 1st at midnight UTC always exists")
}

/// The first instant of the next calendar month (UTC): when the monthly cap resets.
pub fn next_month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .expect("the 1st at midnight UTC always exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn window(used: u64, limit: u64) -> WindowUsage {
        WindowUsage {
            used,
            limit,
            resets_at: now() + ChronoDuration::minutes(30),
        }
    }

    /// Facts for a tier with nothing stored, nothing in flight and every limit untouched.
    fn facts(tier: Tier) -> AdmissionFacts {
        let policy = tier.default_policy();
        AdmissionFacts {
            tier,
            policy,
            force_fresh: false,
            newest_record_at: None,
            in_flight_job: None,
            month: window(0, policy.monthly_cold_cap),
            key_hour: window(0, policy.key_hourly_cold_limit),
            account_day: window(0, policy.account_daily_cold_limit),
            now: now(),
        }
    }

    fn check(facts: &AdmissionFacts, expected: Decision) {
        assert_eq!(decide(facts), expected, "{facts:#?}");
    }

    const PAID: [Tier; 4] = [Tier::Starter, Tier::Growth, Tier::Scale, Tier::Enterprise];

    #[test]
    fn row_2_force_fresh_only_where_the_tier_allows_it() {
        for tier in Tier::ALL {
            let mut f = facts(tier);
            f.force_fresh = true;
            let expected = match tier {
                Tier::Enterprise => Decision::Admit,
                _ => Decision::ForceFreshNotAllowed,
            };
            check(&f, expected);
        }
    }

    #[test]
    fn row_2_wins_over_everything_after_it() {
        let mut f = facts(Tier::Growth);
        f.force_fresh = true;
        f.newest_record_at = Some(now());
        f.month = window(1_000, 1_000);
        check(&f, Decision::ForceFreshNotAllowed);
    }

    #[test]
    fn row_3_fresh_records_are_served_to_every_tier_including_free() {
        for tier in Tier::ALL {
            let mut f = facts(tier);
            let age = f.policy.freshness - std::time::Duration::from_secs(1);
            f.newest_record_at = Some(now() - ChronoDuration::from_std(age).expect("fits"));
            f.month = window(f.policy.monthly_cold_cap, f.policy.monthly_cold_cap);
            check(&f, Decision::ServeFresh);
        }
    }

    #[test]
    fn row_3_a_record_exactly_as_old_as_the_window_is_stale() {
        for tier in PAID {
            let mut f = facts(tier);
            f.newest_record_at =
                Some(now() - ChronoDuration::from_std(f.policy.freshness).expect("fits"));
            check(&f, Decision::Admit);
        }
    }

    #[test]
    fn row_3_force_fresh_bypasses_a_fresh_record_on_enterprise() {
        let mut f = facts(Tier::Enterprise);
        f.force_fresh = true;
        f.newest_record_at = Some(now());
        check(&f, Decision::Admit);
    }

    #[test]
    fn row_4_free_tier_never_goes_cold() {
        let mut f = facts(Tier::Free);
        check(&f, Decision::FreeTierSandboxOnly);
        f.newest_record_at = Some(now() - ChronoDuration::days(31));
        check(&f, Decision::FreeTierSandboxOnly);
    }

    #[test]
    fn row_5_in_flight_job_is_returned_before_any_limit() {
        let job = Uuid::nil();
        for tier in PAID {
            let mut f = facts(tier);
            f.in_flight_job = Some(job);
            f.month = window(f.policy.monthly_cold_cap, f.policy.monthly_cold_cap);
            f.key_hour = window(500, f.policy.key_hourly_cold_limit);
            check(&f, Decision::ExistingJob(job));
        }
    }

    #[test]
    fn rows_6_to_8_limits_in_order() {
        for tier in PAID {
            let base = facts(tier);
            let mut month = base.clone();
            month.month = window(base.policy.monthly_cold_cap, base.policy.monthly_cold_cap);
            month.key_hour = window(999, base.policy.key_hourly_cold_limit);
            month.account_day = window(99_999, base.policy.account_daily_cold_limit);
            check(
                &month,
                Decision::LimitReached(LimitKind::Month, month.month),
            );

            let mut hour = base.clone();
            hour.key_hour = window(
                base.policy.key_hourly_cold_limit,
                base.policy.key_hourly_cold_limit,
            );
            hour.account_day = window(99_999, base.policy.account_daily_cold_limit);
            check(
                &hour,
                Decision::LimitReached(LimitKind::KeyHour, hour.key_hour),
            );

            let mut day = base.clone();
            day.account_day = window(
                base.policy.account_daily_cold_limit,
                base.policy.account_daily_cold_limit,
            );
            check(
                &day,
                Decision::LimitReached(LimitKind::AccountDay, day.account_day),
            );
        }
    }

    #[test]
    fn row_9_admits_with_one_call_left() {
        for tier in PAID {
            let mut f = facts(tier);
            f.month = window(f.policy.monthly_cold_cap - 1, f.policy.monthly_cold_cap);
            f.key_hour = window(
                f.policy.key_hourly_cold_limit - 1,
                f.policy.key_hourly_cold_limit,
            );
            f.account_day = window(
                f.policy.account_daily_cold_limit - 1,
                f.policy.account_daily_cold_limit,
            );
            f.newest_record_at = Some(now() - ChronoDuration::days(400));
            check(&f, Decision::Admit);
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        let mut w = window(1, 1);
        w.resets_at = now() + ChronoDuration::milliseconds(1500);
        assert_eq!(w.retry_after_secs(now()), 2);
        w.resets_at = now() - ChronoDuration::seconds(5);
        assert_eq!(w.retry_after_secs(now()), 1);
    }

    #[test]
    fn month_bounds() {
        let dec = Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 59, 59)
            .single()
            .expect("valid");
        assert_eq!(
            next_month_start(dec).to_rfc3339(),
            "2027-01-01T00:00:00+00:00"
        );
        assert_eq!(month_start(dec).to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(
            next_month_start(now()).to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
    }
}
