//! Reading typed values out of SQLite rows: UUID text, millisecond instants, enums.

use chrono::{DateTime, Utc};
use kepler_core::{FailureReason, JobStatus, Tier};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::time::from_millis;
use crate::{Job, Result, StoreError};

pub(super) fn uuid(row: &SqliteRow, column: &str) -> Result<Uuid> {
    parse_uuid(column, &row.try_get::<String, _>(column)?)
}

pub(super) fn parse_uuid(column: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("{column} {text:?}: {e}")))
}

pub(super) fn instant(row: &SqliteRow, column: &str) -> Result<DateTime<Utc>> {
    from_millis(row.try_get(column)?)
}

pub(super) fn opt_instant(row: &SqliteRow, column: &str) -> Result<Option<DateTime<Utc>>> {
    row.try_get::<Option<i64>, _>(column)?
        .map(from_millis)
        .transpose()
}

pub(super) fn tier(row: &SqliteRow, column: &str) -> Result<Tier> {
    parse_tier(column, &row.try_get::<String, _>(column)?)
}

pub(super) fn parse_tier(column: &str, text: &str) -> Result<Tier> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("{column} {text:?} is not a tier")))
}

pub(super) fn job_status(row: &SqliteRow, column: &str) -> Result<JobStatus> {
    let text: String = row.try_get(column)?;
    JobStatus::parse(&text)
        .ok_or_else(|| StoreError::Corrupt(format!("{column} {text:?} is not a status")))
}

pub(super) fn failure_reason(row: &SqliteRow, column: &str) -> Result<Option<FailureReason>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        FailureReason::parse(&t)
            .ok_or_else(|| StoreError::Corrupt(format!("{column} {t:?} is not a failure reason")))
    })
    .transpose()
}

pub(super) fn job(row: &SqliteRow) -> Result<Job> {
    Ok(Job {
        job_id: uuid(row, "job_id")?,
        account_id: uuid(row, "account_id")?,
        domain: row.try_get("domain")?,
        status: job_status(row, "status")?,
        created_at: instant(row, "created_at")?,
        started_at: opt_instant(row, "started_at")?,
        finished_at: opt_instant(row, "finished_at")?,
        scored_at: opt_instant(row, "scored_at")?,
        failure_reason: failure_reason(row, "failure_reason")?,
    })
}
