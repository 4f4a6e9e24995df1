//! The run queue: claims with leases, heartbeats, settling a run and all its jobs.
//!
//! Every function that changes more than one row runs inside the caller's
//! `BEGIN IMMEDIATE` transaction; a lost lease is checked first and changes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kepler_core::{FailureReason, ScoreRecord};
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;
use uuid::Uuid;

use super::{records, rows};
use crate::time::{duration_millis, from_millis, to_millis, truncate};
use crate::{ClaimedRun, QueueStats, Result, StoreError};

/// The oldest run waiting: pending, or running under a lease that has expired (its worker died).
/// The run's id, and whether it was taken from an expired lease.
async fn next_claimable(
    conn: &mut SqliteConnection,
    now_ms: i64,
) -> Result<Option<(String, bool)>> {
    // Two indexed LIMIT 1 reads rather than one UNION: the pending index is ordered by age.
    let pending = sqlx::query("SELECT run_id, created_at FROM runs WHERE status = 'pending' ORDER BY created_at, run_id LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    let expired = sqlx::query(
        "SELECT run_id, created_at FROM runs WHERE status = 'running' AND lease_expires_at < ? \
         ORDER BY created_at, run_id LIMIT 1",
    )
    .bind(now_ms)
    .fetch_optional(&mut *conn)
    .await?;
    let mut oldest: Option<((i64, String), bool)> = None;
    for (row, reclaimed) in [(pending, false), (expired, true)] {
        let Some(row) = row else { continue };
        let candidate: (i64, String) = (row.try_get("created_at")?, row.try_get("run_id")?);
        if oldest.as_ref().is_none_or(|(o, _)| candidate < *o) {
            oldest = Some((candidate, reclaimed));
        }
    }
    Ok(oldest.map(|((_, id), reclaimed)| (id, reclaimed)))
}

/// Whether any run is claimable at `now`: a read, so that a worker finding
/// nothing to do never takes the write lock every admission needs.
pub(super) async fn anything_claimable(
    conn: &mut SqliteConnection,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(next_claimable(conn, to_millis(now)).await?.is_some())
}

pub(super) async fn claim(
    conn: &mut SqliteConnection,
    worker_id: &str,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<Option<ClaimedRun>> {
    let now_ms = to_millis(now);
    let Some((run_id, reclaimed)) = next_claimable(&mut *conn, now_ms).await? else {
        return Ok(None);
    };
    let row = sqlx::query(
        "UPDATE runs SET status = 'running', lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1, \
         first_started_at = COALESCE(first_started_at, ?) \
         WHERE run_id = ? RETURNING domain, attempts, first_started_at, force_fresh",
    )
    .bind(worker_id)
    .bind(now_ms.saturating_add(duration_millis(lease)))
    .bind(now_ms)
    .bind(&run_id)
    .fetch_one(&mut *conn)
    .await?;
    let attempts: i64 = row.try_get("attempts")?;
    Ok(Some(ClaimedRun {
        run_id: Uuid::parse_str(&run_id)
            .map_err(|e| StoreError::Corrupt(format!("run_id {run_id:?}: {e}")))?,
        domain: row.try_get("domain")?,
        attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
        first_started_at: rows::instant(&row, "first_started_at")?,
        force_fresh: row.try_get("force_fresh")?,
        reclaimed,
    }))
}

pub(super) async fn heartbeat(
    conn: &mut SqliteConnection,
    run_id: Uuid,
    worker_id: &str,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<bool> {
    let changed = sqlx::query(
        "UPDATE runs SET lease_expires_at = ? WHERE run_id = ? AND status = 'running' AND lease_owner = ?",
    )
    .bind(to_millis(now).saturating_add(duration_millis(lease)))
    .bind(run_id.to_string())
    .bind(worker_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// A run as its worker holds it: its domain, and its first claim (when the jobs
/// that waited for it started).
struct Held {
    domain: String,
    first_started_at: Option<i64>,
}

/// The run if `worker_id` still holds it. A lease that expired but was not
/// taken by anyone is still held: no other worker is running the domain.
async fn held_run(
    conn: &mut SqliteConnection,
    run_id: &str,
    worker_id: &str,
) -> Result<Option<Held>> {
    let row = sqlx::query(
        "SELECT domain, first_started_at FROM runs WHERE run_id = ? AND status = 'running' AND lease_owner = ?",
    )
    .bind(run_id)
    .bind(worker_id)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(Held {
            domain: row.try_get("domain")?,
            first_started_at: row.try_get("first_started_at")?,
        })
    })
    .transpose()
}

pub(super) async fn complete(
    conn: &mut SqliteConnection,
    run_id: Uuid,
    worker_id: &str,
    record: &ScoreRecord,
    now: DateTime<Utc>,
) -> Result<bool> {
    let run_id = run_id.to_string();
    let Some(Held {
        domain,
        first_started_at,
    }) = held_run(&mut *conn, &run_id, worker_id).await?
    else {
        return Ok(false);
    };
    if record.domain != domain {
        // A bug in the caller; storing it would complete jobs with a record nobody can find.
        return Err(StoreError::Corrupt(format!(
            "a record for {} cannot complete the run of {domain}",
            record.domain
        )));
    }
    let scored_at = to_millis(records::insert(&mut *conn, record).await?);
    let now_ms = to_millis(truncate(now));
    sqlx::query("UPDATE runs SET status = 'complete', finished_at = ?, scored_at = ?, lease_expires_at = NULL WHERE run_id = ?")
        .bind(now_ms)
        .bind(scored_at)
        .bind(&run_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE jobs SET status = 'complete', finished_at = ?, scored_at = ?, started_at = COALESCE(started_at, ?) \
         WHERE run_id = ? AND status IN ('pending', 'running')",
    )
    .bind(now_ms)
    .bind(scored_at)
    .bind(first_started_at.unwrap_or(now_ms))
    .bind(&run_id)
    .execute(conn)
    .await?;
    Ok(true)
}

pub(super) async fn fail(
    conn: &mut SqliteConnection,
    run_id: Uuid,
    worker_id: &str,
    reason: FailureReason,
    now: DateTime<Utc>,
) -> Result<bool> {
    let run_id = run_id.to_string();
    let Some(held) = held_run(&mut *conn, &run_id, worker_id).await? else {
        return Ok(false);
    };
    let now_ms = to_millis(truncate(now));
    sqlx::query("UPDATE runs SET status = 'failed', finished_at = ?, failure_reason = ?, lease_expires_at = NULL WHERE run_id = ?")
        .bind(now_ms)
        .bind(reason.as_str())
        .bind(&run_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE jobs SET status = 'failed', finished_at = ?, failure_reason = ?, started_at = COALESCE(started_at, ?) \
         WHERE run_id = ? AND status IN ('pending', 'running')",
    )
    .bind(now_ms)
    .bind(reason.as_str())
    .bind(held.first_started_at.unwrap_or(now_ms))
    .bind(&run_id)
    .execute(conn)
    .await?;
    Ok(true)
}

/// Hands a held run back as if never claimed (graceful shutdown is not a failed
/// attempt, so `job_timeout` starts again on the next claim); `attempts` still counts it.
pub(super) async fn release(
    conn: &mut SqliteConnection,
    run_id: Uuid,
    worker_id: &str,
) -> Result<()> {
    let run_id = run_id.to_string();
    let changed = sqlx::query(
        "UPDATE runs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, first_started_at = NULL \
         WHERE run_id = ? AND status = 'running' AND lease_owner = ?",
    )
    .bind(&run_id)
    .bind(worker_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 1 {
        sqlx::query("UPDATE jobs SET status = 'pending', started_at = NULL WHERE run_id = ? AND status = 'running'")
            .bind(&run_id)
            .execute(conn)
            .await?;
    }
    Ok(())
}

pub(super) async fn stats(conn: &mut SqliteConnection, now: DateTime<Utc>) -> Result<QueueStats> {
    // Only jobs in flight, an indexed range of `jobs_by_status`: a scrape never
    // walks the complete/failed history. A job stored as pending is running while
    // its run is (see `crate::jobs`).
    let row = sqlx::query(crate::jobs::IN_FLIGHT_COUNTS)
        .fetch_one(conn)
        .await?;
    let oldest: Option<i64> = row.try_get("oldest")?;
    let oldest_pending_age = match oldest {
        Some(oldest) => Some(
            (now - from_millis(oldest)?)
                .to_std()
                .unwrap_or(Duration::ZERO),
        ),
        None => None,
    };
    Ok(QueueStats {
        jobs_pending: crate::windows::count(row.try_get("pending")?),
        jobs_running: crate::windows::count(row.try_get("running")?),
        oldest_pending_age,
    })
}
