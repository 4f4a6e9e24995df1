//! The run queue: claims with `FOR UPDATE SKIP LOCKED`, leases, heartbeats,
//! settling a run and all its jobs, and the `kepler_runs` notification.
//!
//! Whoever changes a run locks its row first (a claim, a settle, an admission
//! attaching a job), so a job can never join a run that is being settled and be
//! left behind. A lost lease is checked under that lock and changes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kepler_core::{FailureReason, JobStatus, ScoreRecord};
use sqlx::Row;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

use super::{records, rows};
use crate::time::{duration_millis, from_millis, to_millis, truncate};
use crate::{ClaimedRun, QueueStats, Result, StoreError};

/// The channel told when a run becomes claimable. The payload is the schema the
/// queue lives in, so stores of different schemas in one database ignore each other.
pub(super) const CHANNEL: &str = "kepler_runs";

/// Tells listening workers, at commit, that a run became claimable.
pub(super) async fn announce(conn: &mut PgConnection) -> Result<()> {
    // Identical notifications of one transaction are delivered once.
    sqlx::query("SELECT pg_notify($1, COALESCE(current_schema(), ''))")
        .bind(CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

pub(super) async fn claim(
    conn: &mut PgConnection,
    worker_id: &str,
    lease: Duration,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<ClaimedRun>> {
    let now_ms = to_millis(now);
    // The oldest runs waiting: pending, or running under a lease that has expired
    // (its worker died). Rows another transaction holds are skipped, not waited for.
    // One statement claims the runs and starts their jobs, so a claim costs a
    // single round trip and commits on its own.
    let rows = sqlx::query(
        "WITH next AS ( \
           SELECT run_id, status AS was FROM runs \
           WHERE status IN ('pending', 'running') \
             AND (status = 'pending' OR lease_expires_at < $3) \
           ORDER BY created_at, run_id \
           LIMIT $4 \
           FOR UPDATE SKIP LOCKED \
         ), claimed AS ( \
           UPDATE runs SET status = 'running', lease_owner = $1, lease_expires_at = $2, \
             attempts = attempts + 1, first_started_at = COALESCE(first_started_at, $3) \
           FROM next WHERE runs.run_id = next.run_id \
           RETURNING runs.run_id, runs.domain, runs.attempts, runs.first_started_at, runs.force_fresh, \
             next.was = 'running' AS reclaimed \
         ), started AS ( \
           UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, $3) \
           FROM claimed WHERE jobs.run_id = claimed.run_id AND jobs.status = 'pending' \
         ) \
         SELECT run_id, domain, attempts, first_started_at, force_fresh, reclaimed FROM claimed",
    )
    .bind(worker_id)
    .bind(now_ms.saturating_add(duration_millis(lease)))
    .bind(now_ms)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let attempts: i32 = row.try_get("attempts")?;
            Ok(ClaimedRun {
                run_id: row.try_get("run_id")?,
                domain: row.try_get("domain")?,
                attempt: u32::try_from(attempts).unwrap_or(0),
                first_started_at: rows::instant(row, "first_started_at")?,
                force_fresh: row.try_get("force_fresh")?,
                reclaimed: row.try_get("reclaimed")?,
            })
        })
        .collect()
}

pub(super) async fn heartbeat(
    conn: &mut PgConnection,
    run_id: Uuid,
    worker_id: &str,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<bool> {
    let changed = sqlx::query(
        "UPDATE runs SET lease_expires_at = $1 WHERE run_id = $2 AND status = 'running' AND lease_owner = $3",
    )
    .bind(to_millis(now).saturating_add(duration_millis(lease)))
    .bind(run_id)
    .bind(worker_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// The run's domain if `worker_id` still holds it, locking the run until the
/// transaction ends. A lease that expired but was not taken by anyone is still
/// held: no other worker is running the domain.
async fn held_domain(
    conn: &mut PgConnection,
    run_id: Uuid,
    worker_id: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT domain FROM runs WHERE run_id = $1 AND status = 'running' AND lease_owner = $2 FOR UPDATE",
    )
    .bind(run_id)
    .bind(worker_id)
    .fetch_optional(conn)
    .await?)
}

/// Settles a held run and every job still attached to it.
async fn settle(
    conn: &mut PgConnection,
    run_id: Uuid,
    outcome: JobStatus,
    scored_at: Option<i64>,
    reason: Option<FailureReason>,
    now: DateTime<Utc>,
) -> Result<()> {
    let now_ms = to_millis(truncate(now));
    let reason = reason.map(FailureReason::as_str);
    // The run and its jobs in one statement: one round trip fewer per settle.
    sqlx::query(
        "WITH settled AS ( \
           UPDATE runs SET status = $1, finished_at = $2, scored_at = $3, failure_reason = $4, \
           lease_expires_at = NULL WHERE run_id = $5 \
         ) \
         UPDATE jobs SET status = $1, finished_at = $2, scored_at = $3, failure_reason = $4, \
         started_at = COALESCE(started_at, $2) \
         WHERE run_id = $5 AND status IN ('pending', 'running')",
    )
    .bind(outcome.as_str())
    .bind(now_ms)
    .bind(scored_at)
    .bind(reason)
    .bind(run_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn complete(
    conn: &mut PgConnection,
    run_id: Uuid,
    worker_id: &str,
    record: &ScoreRecord,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(domain) = held_domain(&mut *conn, run_id, worker_id).await? else {
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
    settle(
        conn,
        run_id,
        JobStatus::Complete,
        Some(scored_at),
        None,
        now,
    )
    .await?;
    Ok(true)
}

pub(super) async fn fail(
    conn: &mut PgConnection,
    run_id: Uuid,
    worker_id: &str,
    reason: FailureReason,
    now: DateTime<Utc>,
) -> Result<bool> {
    if held_domain(&mut *conn, run_id, worker_id).await?.is_none() {
        return Ok(false);
    }
    settle(conn, run_id, JobStatus::Failed, None, Some(reason), now).await?;
    Ok(true)
}

/// Hands a held run back as if never claimed (graceful shutdown is not a failed
/// attempt, so `job_timeout` starts again on the next claim); `attempts` still
/// counts it. Listening workers are told at once.
pub(super) async fn release(conn: &mut PgConnection, run_id: Uuid, worker_id: &str) -> Result<()> {
    let changed = sqlx::query(
        "UPDATE runs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, first_started_at = NULL \
         WHERE run_id = $1 AND status = 'running' AND lease_owner = $2",
    )
    .bind(run_id)
    .bind(worker_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 1 {
        sqlx::query(
            "UPDATE jobs SET status = 'pending', started_at = NULL WHERE run_id = $1 AND status = 'running'",
        )
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
        announce(conn).await?;
    }
    Ok(())
}

pub(super) async fn stats(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<QueueStats> {
    // Only jobs in flight: `jobs_by_status` is walked for two states, never the
    // complete/failed history, so a scrape stays cheap however old the store.
    let row = sqlx::query(
        "SELECT COUNT(*) FILTER (WHERE status = 'pending') AS pending, \
                COUNT(*) FILTER (WHERE status = 'running') AS running, \
                MIN(created_at) FILTER (WHERE status = 'pending') AS oldest \
         FROM jobs WHERE status IN ('pending', 'running')",
    )
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
