//! Turning cost-log counts into [`WindowUsage`], the same way on every backend.
//!
//! A backend counts a window's calls with `created_at >= since` (in stored
//! milliseconds) and, for rolling windows, reads one more instant: the
//! `probe_offset`-th oldest call in the window (0-based). Everything else is here.
//!
//! Counting never scans the whole cost log: triggers keep per-UTC-day and
//! per-UTC-hour rollups of it (see the `cold_call_rollups` migrations, which
//! bucket with [`DAY_MS`] and [`HOUR_MS`]). The month sums its days; a rolling
//! window sums its whole hours from [`Bounds::key_edge`] / [`Bounds::day_edge`]
//! on and counts the raw rows of its partial first hour, which an index range
//! scan reads. Both are exact.
//!
//! The windows are bounded below only: a call stamped later than `now` (another
//! request's clock ran ahead) still counts, or two racing admissions could each
//! miss the other's call and admit one too many.

use chrono::{DateTime, Duration, Utc};
use kepler_core::admission::{
    ACCOUNT_WINDOW, KEY_WINDOW, WindowUsage, month_start, next_month_start,
};

use crate::time::{chrono_millis, to_millis};

/// How long an idempotent answer is replayed.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

/// The size of a day bucket in stored milliseconds (UTC days have no leap seconds here).
pub const DAY_MS: i64 = 86_400_000;
/// The size of an hour bucket in stored milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// The start of the `size` bucket holding stored instant `ms`, as the migrations'
/// triggers compute it.
pub(crate) fn bucket(ms: i64, size: i64) -> i64 {
    ms - ms.rem_euclid(size)
}

/// Where a rolling window starting at `since` stops reading raw rows and starts
/// summing hour buckets: the end of the hour `since` falls in.
pub(crate) fn edge(since: i64) -> i64 {
    bucket(since, HOUR_MS).saturating_add(HOUR_MS)
}

/// Every bound the usage statements bind, at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// The month's first instant (a UTC day boundary: the days from here on are summed).
    pub month: i64,
    /// The key's hour: raw rows in `[key_since, key_edge)`, hour buckets from `key_edge`.
    pub key_since: i64,
    pub key_edge: i64,
    /// The account's 24 h: raw rows in `[day_since, day_edge)`, hour buckets from `day_edge`.
    pub day_since: i64,
    pub day_edge: i64,
}

impl Bounds {
    pub(crate) fn at(now: DateTime<Utc>) -> Bounds {
        let key_since = rolling_since(now, KEY_WINDOW);
        let day_since = rolling_since(now, ACCOUNT_WINDOW);
        Bounds {
            month: month_since(now),
            key_since,
            key_edge: edge(key_since),
            day_since,
            day_edge: edge(day_since),
        }
    }
}

/// The first stored instant inside a rolling window ending at `now`: a call exactly
/// `window` old has left it.
pub(crate) fn rolling_since(now: DateTime<Utc>, window: Duration) -> i64 {
    to_millis(now)
        .saturating_sub(chrono_millis(window))
        .saturating_add(1)
}

/// The first stored instant of the calendar month (UTC) containing `now`.
pub(crate) fn month_since(now: DateTime<Utc>) -> i64 {
    to_millis(month_start(now))
}

/// Which call (0-based, oldest first) decides when a rolling window frees: when
/// at or over the limit, the one whose expiry brings the count below the limit
/// (the `(used − limit + 1)`-th oldest); otherwise the oldest.
pub(crate) fn probe_offset(used: u64, limit: u64) -> u64 {
    used.saturating_sub(limit)
}

/// A rolling window's usage, from its count and the instant of its probe call.
pub(crate) fn rolling_usage(
    used: u64,
    limit: u64,
    probe: Option<DateTime<Utc>>,
    window: Duration,
    now: DateTime<Utc>,
) -> WindowUsage {
    // No call in the window (or a limit of 0 with nothing to expire): a full window from now.
    let resets_at = probe.unwrap_or(now) + window;
    WindowUsage {
        used,
        limit,
        resets_at,
    }
}

/// The calendar month's usage: it resets on the 1st at 00:00 UTC.
pub(crate) fn month_usage(used: u64, limit: u64, now: DateTime<Utc>) -> WindowUsage {
    WindowUsage {
        used,
        limit,
        resets_at: next_month_start(now),
    }
}

/// A window statement's figures, before any probe: each rolling window's count
/// and its oldest call (its probe unless the window is over its limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub month_n: u64,
    pub month_cost: i64,
    pub key_n: u64,
    pub key_oldest: Option<i64>,
    pub day_n: u64,
    pub day_oldest: Option<i64>,
}

impl Counts {
    /// The counts once one more call, stamped `now_ms`, is in the log: what an
    /// admission reports without reading its own write back.
    pub(crate) fn plus_one(&self, cost_micros: i64, now_ms: i64) -> Counts {
        let oldest = |o: Option<i64>| Some(o.map_or(now_ms, |o| o.min(now_ms)));
        Counts {
            month_n: self.month_n + 1,
            month_cost: self.month_cost.saturating_add(cost_micros),
            key_n: self.key_n + 1,
            key_oldest: oldest(self.key_oldest),
            day_n: self.day_n + 1,
            day_oldest: oldest(self.day_oldest),
        }
    }
}

/// A count read from the database as `u64` (counts are never negative).
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn a_call_exactly_one_window_old_has_left() {
        let now = at(12, 0);
        assert_eq!(rolling_since(now, KEY_WINDOW), to_millis(at(11, 0)) + 1);
        assert_eq!(
            month_since(now),
            to_millis(
                Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
                    .single()
                    .expect("valid")
            )
        );
    }

    #[test]
    fn buckets_and_edges_align_to_utc_hours_and_days() {
        let noon = to_millis(at(12, 0));
        assert_eq!(bucket(noon, HOUR_MS), noon);
        assert_eq!(bucket(noon + 1, HOUR_MS), noon);
        assert_eq!(bucket(noon - 1, HOUR_MS), noon - HOUR_MS);
        assert_eq!(bucket(noon, DAY_MS), to_millis(at(0, 0)));
        assert_eq!(bucket(-1, HOUR_MS), -HOUR_MS, "before 1970 too");
        // A window starting on the hour reads that whole hour raw, then buckets.
        assert_eq!(edge(noon), noon + HOUR_MS);
        assert_eq!(edge(noon - 1), noon);
        let b = Bounds::at(at(12, 30));
        assert_eq!(b.key_since, to_millis(at(11, 30)) + 1);
        assert_eq!(b.key_edge, noon);
        assert_eq!(b.day_edge, to_millis(at(13, 0)) - 24 * HOUR_MS);
        assert_eq!(bucket(b.month, DAY_MS), b.month, "months start on a day");
    }

    #[test]
    fn probe_is_the_call_whose_expiry_frees_a_slot() {
        let check = |used, limit, expected| {
            assert_eq!(probe_offset(used, limit), expected, "{used}/{limit}")
        };
        check(0, 5, 0);
        check(4, 5, 0);
        check(5, 5, 0);
        check(7, 5, 2);
        check(3, 0, 3);
    }

    #[test]
    fn rolling_resets_at() {
        let now = at(12, 0);
        let used = rolling_usage(2, 2, Some(at(11, 10)), KEY_WINDOW, now);
        assert_eq!(used.resets_at, at(12, 10));
        assert_eq!(
            rolling_usage(0, 2, None, KEY_WINDOW, now).resets_at,
            at(13, 0)
        );
        assert_eq!(
            month_usage(1, 3, now).resets_at,
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
                .single()
                .expect("valid")
        );
    }
}
