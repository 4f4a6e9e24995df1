//! The run queue: claims with `FOR UPDATE SKIP LOCKED`, leases, heartbeats,
//! settling a run and all its jobs, and the `kepler_runs` notification.
//!
//! Whoever changes a run locks its row first (a claim, a settle, an admission
//! attaching a job), so a job can never join a run that is being settled and be
//! left behind. A lost lease is checked under that lock and changes nothing.
//!
//! The claim and the settle live in the database as PL/pgSQL functions
//! (migration `20261129000500_queue_functions.sql`): a busy worker settles a
//! run and claims its next one in a single call and commit.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kepler_core::{FailureReason, JobStatus};
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::types::Json;
use uuid::Uuid;

use super::records::StoredRecord;
use super::rows;
use crate::time::{duration_millis, from_millis, to_millis, truncate};
use crate::{ClaimedRun, QueueStats, Result, RunEnding, Settled, StoreError};

/// The channel told when a run becomes claimable. The payload is the schema the
/// queue lives in, so stores of different schemas in one database ignore each other.
/// `kepler_admit` (migration 20261129000800) notifies the same channel.
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

/// The columns of a claimed run, as `kepler_claim_runs` and `kepler_settle_and_claim`
/// (migration 20261129000500) return them; NULL where no run was claimed.
fn claimed_run(row: &PgRow) -> Result<Option<ClaimedRun>> {
    let Some(run_id) = row.try_get::<Option<Uuid>, _>("run_id")? else {
        return Ok(None);
    };
    let attempts: i32 = row.try_get("attempts")?;
    Ok(Some(ClaimedRun {
        run_id,
        domain: row.try_get("domain")?,
        attempt: u32::try_from(attempts).unwrap_or(0),
        first_started_at: rows::instant(row, "first_started_at")?,
        force_fresh: row.try_get("force_fresh")?,
        reclaimed: row.try_get("reclaimed")?,
    }))
}

/// Claims up to `limit` of the oldest claimable runs in one round trip that
/// commits on its own (the claim itself is `kepler_claim_runs`).
pub(super) async fn claim(
    conn: &mut PgConnection,
    worker_id: &str,
    lease: Duration,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<ClaimedRun>> {
    let now_ms = to_millis(now);
    let rows = sqlx::query("SELECT * FROM kepler_claim_runs($1, $2, $3, $4)")
        .bind(worker_id)
        .bind(now_ms.saturating_add(duration_millis(lease)))
        .bind(now_ms)
        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .filter_map(|row| claimed_run(row).transpose())
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

/// Settles a run `worker_id` still holds, and every job still attached to it,
/// then (given `claim_next`, the next lease) claims its next run: one round
/// trip that commits on its own. A lease that expired but was not taken by
/// anyone is still held: no other worker is running the domain.
pub(super) async fn settle(
    conn: &mut PgConnection,
    run_id: Uuid,
    worker_id: &str,
    ending: RunEnding<'_>,
    now: DateTime<Utc>,
    claim_next: Option<Duration>,
) -> Result<Settled> {
    let (status, reason, stored) = match ending {
        RunEnding::Complete(record) => (
            JobStatus::Complete,
            None,
            Some(StoredRecord::prepare(record)?),
        ),
        RunEnding::Failed(reason) => (JobStatus::Failed, Some(reason), None),
    };
    let now_ms = to_millis(truncate(now));
    let stored = stored.as_ref();
    let row = sqlx::query(
        "SELECT * FROM kepler_settle_and_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(run_id)
    .bind(worker_id)
    .bind(status.as_str())
    .bind(now_ms)
    .bind(reason.map(FailureReason::as_str))
    .bind(stored.map(|r| r.record.domain.as_str()))
    .bind(stored.map(StoredRecord::scored_at_millis))
    .bind(stored.map(|r| r.record.engine_version.as_str()))
    .bind(stored.map(|r| r.score))
    .bind(stored.map(|r| r.record.grade.as_str()))
    .bind(stored.map(|r| Json(&r.record)))
    .bind(stored.map(|r| r.served.as_str()))
    .bind(claim_next.is_some())
    .bind(claim_next.map(|lease| to_millis(now).saturating_add(duration_millis(lease))))
    .fetch_one(conn)
    .await?;
    let held: Option<String> = row.try_get("held")?;
    if let (Some(domain), Some(stored)) = (&held, stored)
        && *domain != stored.record.domain
    {
        // A bug in the caller; the function stored nothing, since the record
        // would complete jobs nobody can find it for.
        return Err(StoreError::Corrupt(format!(
            "a record for {} cannot complete the run of {domain}",
            stored.record.domain
        )));
    }
    Ok(Settled {
        held: held.is_some(),
        next: claimed_run(&row)?,
    })
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
    // Only jobs in flight: `jobs_in_flight_by_status` holds only those two states, never the
    // complete/failed history, so a scrape stays cheap however old the store. A job
    // stored as pending is running while its run is (see `crate::jobs`).
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
