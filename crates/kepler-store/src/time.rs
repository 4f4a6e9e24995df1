//! How the store keeps time: whole milliseconds since the Unix epoch, UTC.
//!
//! Every instant written is truncated to the millisecond first, so what a caller
//! gets back (a job's `created_at`, a record's `scored_at`) equals what a later
//! read returns, on every backend.

use chrono::{DateTime, Utc};

use crate::{Result, StoreError};

/// `t` without its sub-millisecond part.
pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The stored form of an instant.
pub(crate) fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Reads a stored instant back.
pub(crate) fn from_millis(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} is out of range")))
}

/// A `std` duration as whole milliseconds, saturating (a lease of a century is fine).
pub(crate) fn duration_millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A `chrono` duration as whole milliseconds.
pub(crate) fn chrono_millis(d: chrono::Duration) -> i64 {
    d.num_milliseconds()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_millisecond_precision() {
        let t = DateTime::parse_from_rfc3339("2026-11-28T12:00:00.123456789Z")
            .expect("valid")
            .to_utc();
        let truncated = truncate(t);
        assert_eq!(truncated.to_rfc3339(), "2026-11-28T12:00:00.123+00:00");
        assert_eq!(from_millis(to_millis(t)).expect("in range"), truncated);
        assert!(from_millis(i64::MAX).is_err());
        assert_eq!(duration_millis(std::time::Duration::from_secs(30)), 30_000);
        assert_eq!(duration_millis(std::time::Duration::MAX), i64::MAX);
    }
}
