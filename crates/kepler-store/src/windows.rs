//! Turning cost-log counts into [`WindowUsage`], the same way on every backend.
//!
//! A backend counts cost-log rows with `created_at >= since` (in stored
//! milliseconds) and, for rolling windows, reads one more instant: the
//! `probe_offset`-th oldest call in the window (0-based). Everything else is here.
//!
//! The windows are bounded below only: a call stamped later than `now` (another
//! request's clock ran ahead) still counts, or two racing admissions could each
//! miss the other's call and admit one too many.

use chrono::{DateTime, Duration, Utc};
use kepler_core::admission::{WindowUsage, month_start, next_month_start};

use crate::time::{chrono_millis, to_millis};

/// How long an idempotent answer is replayed.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

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

/// A count read from the database as `u64` (counts are never negative).
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use kepler_core::admission::KEY_WINDOW;

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
