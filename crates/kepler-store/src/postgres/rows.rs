//! Reading typed values out of PostgreSQL rows: millisecond instants and enums
//! kept as text (UUIDs and booleans are native).

use chrono::{DateTime, Utc};
use kepler_core::{FailureReason, JobStatus, Tier};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::time::from_millis;
use crate::{Job, Result, StoreError};

/// The rows of a statement over arrays (`unnest … WITH ORDINALITY`), each put
/// at its 1-based place `place_column` (a BIGINT) names: `n` slots, `None`
/// where no row came back. A place out of range is ignored.
pub(super) fn by_place<T>(
    rows: Vec<PgRow>,
    n: usize,
    place_column: &str,
    mut read: impl FnMut(PgRow) -> Result<T>,
) -> Result<Vec<Option<T>>> {
    let mut slots: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for row in rows {
        let place: i64 = row.try_get(place_column)?;
        if let Some(slot) = usize::try_from(place - 1)
            .ok()
            .and_then(|at| slots.get_mut(at))
        {
            *slot = Some(read(row)?);
        }
    }
    Ok(slots)
}

pub(super) fn instant(row: &PgRow, column: &str) -> Result<DateTime<Utc>> {
    from_millis(row.try_get(column)?)
}

pub(super) fn opt_instant(row: &PgRow, column: &str) -> Result<Option<DateTime<Utc>>> {
    row.try_get::<Option<i64>, _>(column)?
        .map(from_millis)
        .transpose()
}

pub(super) fn tier(row: &PgRow, column: &str) -> Result<Tier> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("{column} {text:?} is not a tier")))
}

pub(super) fn job_status(row: &PgRow, column: &str) -> Result<JobStatus> {
    let text: String = row.try_get(column)?;
    JobStatus::parse(&text)
        .ok_or_else(|| StoreError::Corrupt(format!("{column} {text:?} is not a status")))
}

pub(super) fn failure_reason(row: &PgRow, column: &str) -> Result<Option<FailureReason>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        FailureReason::parse(&t)
            .ok_or_else(|| StoreError::Corrupt(format!("{column} {t:?} is not a failure reason")))
    })
    .transpose()
}

pub(super) fn job(row: &PgRow) -> Result<Job> {
    Ok(Job {
        job_id: row.try_get("job_id")?,
        account_id: row.try_get("account_id")?,
        domain: row.try_get("domain")?,
        status: job_status(row, "status")?,
        created_at: instant(row, "created_at")?,
        started_at: opt_instant(row, "started_at")?,
        finished_at: opt_instant(row, "finished_at")?,
        scored_at: opt_instant(row, "scored_at")?,
        failure_reason: failure_reason(row, "failure_reason")?,
    })
}
