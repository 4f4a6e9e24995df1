//! Cold admissions written many to a call and a commit.
//!
//! One `kepler_admit` call a commit holds the account's lock from its grant
//! to the commit's WAL flush, so one account's cold calls were one commit
//! each (docs/performance-limits.md, "Cold admission"). A task hands the
//! admissions waiting at one moment to `kepler_admit_batch` (migration
//! 20261207000100), which carries each out as `kepler_admit` does, one after
//! another in one transaction: the limits stay exact, the lock's hand-over
//! and the commit are shared.
//!
//! The task writes on a connection of its own, not one of the pool's: the
//! callers waiting for it each hold a pooled connection, and a task that
//! queued for one behind them would wait for itself. When the batch cannot be
//! written (no connection, an error), every admission in it is answered
//! [`Unbatched`] and its caller writes it alone on its own connection, where
//! the error, if it is one, reaches the breaker.

use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Pool, Postgres, Row};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::breaker::Breaker;
use crate::windows::Bounds;

/// Admissions written in one call at most: enough to share a commit widely,
/// few enough that the first of them is not kept long.
const MAX_BATCH: usize = 64;

/// Admissions waiting for the task at most; more wait to be queued.
const QUEUE_DEPTH: usize = 4096;

/// The arguments of one `kepler_admit` call.
#[derive(Debug, Clone)]
pub(super) struct AdmitCall {
    pub account: Uuid,
    pub key: Uuid,
    pub domain: String,
    pub bounds: Bounds,
    pub month_limit: i64,
    pub key_limit: i64,
    pub day_limit: i64,
    pub record_at: Option<i64>,
    pub job_id: Uuid,
    pub run_id: Uuid,
    pub force_fresh: bool,
    pub now_ms: i64,
    pub cost: i64,
}

/// `kepler_admit`'s answer for one admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AdmitAnswer {
    pub outcome: String,
    pub run_running: Option<bool>,
    pub month_n: Option<i64>,
    pub month_cost: Option<i64>,
    pub key_n: Option<i64>,
    pub day_n: Option<i64>,
}

impl AdmitAnswer {
    fn from_row(row: &PgRow) -> sqlx::Result<AdmitAnswer> {
        Ok(AdmitAnswer {
            outcome: row.try_get("outcome")?,
            run_running: row.try_get("run_running")?,
            month_n: row.try_get("month_n")?,
            month_cost: row.try_get("month_cost")?,
            key_n: row.try_get("key_n")?,
            day_n: row.try_get("day_n")?,
        })
    }
}

/// The batch was not written: the caller writes its admission alone.
#[derive(Debug)]
pub(super) struct Unbatched;

const ADMIT_SQL: &str = "SELECT * FROM kepler_admit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

const ADMIT_BATCH_SQL: &str = "SELECT place::BIGINT AS place, outcome, run_running, month_n, month_cost, key_n, day_n \
     FROM kepler_admit_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

/// Hands admissions to the task that writes them in batches.
#[derive(Debug, Clone)]
pub(super) struct AdmissionBatches {
    queue: mpsc::Sender<Waiting>,
    pool: PgPool,
}

#[derive(Debug)]
struct Waiting {
    call: AdmitCall,
    answer: oneshot::Sender<Result<AdmitAnswer, Unbatched>>,
}

impl AdmissionBatches {
    /// Starts the writing task on `pool` (its own, of one connection), which
    /// ends when the last clone is dropped. It connects through the store's
    /// `breaker`, so that during an outage a batch fails as fast as any call.
    pub(super) fn start(pool: PgPool, breaker: Breaker) -> AdmissionBatches {
        let (queue, waiting) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(write_batches(pool.clone(), breaker, waiting));
        AdmissionBatches { queue, pool }
    }

    /// Closes the task's connection; admissions after this are written alone
    /// (and fail as the store's own pool is closed too).
    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    /// Carries out `call` with the others waiting, and answers as `kepler_admit`.
    pub(super) async fn admit(&self, call: AdmitCall) -> Result<AdmitAnswer, Unbatched> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Waiting { call, answer })
            .await
            .map_err(|_| Unbatched)?;
        answered.await.map_err(|_| Unbatched)?
    }
}

async fn write_batches(
    pool: Pool<Postgres>,
    breaker: Breaker,
    mut waiting: mpsc::Receiver<Waiting>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // A caller that stopped waiting is not charged.
        batch.retain(|w| !w.answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        let calls: Vec<&AdmitCall> = batch.iter().map(|w| &w.call).collect();
        match write(&pool, &breaker, &calls).await {
            Ok(answers) => {
                for (w, answer) in batch.drain(..).zip(answers) {
                    let _ = w.answer.send(answer.ok_or(Unbatched));
                }
            }
            Err(error) => {
                // An outage shows in every caller's own call; anything else
                // here (a deadlock, say) is worth an operator's look.
                if matches!(error, crate::StoreError::Unavailable(_)) {
                    tracing::debug!(%error, admissions = batch.len(), "admission batch not written; each is written alone");
                } else {
                    tracing::warn!(%error, admissions = batch.len(), "admission batch not written; each is written alone");
                }
                for w in batch.drain(..) {
                    let _ = w.answer.send(Err(Unbatched));
                }
            }
        }
    }
}

/// Writes `calls` in one call, and returns each one's answer by its place
/// (`None` for a place the function did not answer).
async fn write(
    pool: &PgPool,
    breaker: &Breaker,
    calls: &[&AdmitCall],
) -> crate::Result<Vec<Option<AdmitAnswer>>> {
    let mut conn = breaker.connect(pool.acquire()).await?;
    if let [call] = calls {
        return Ok(vec![Some(admit_alone(&mut conn, call).await?)]);
    }
    let column = |f: fn(&AdmitCall) -> i64| calls.iter().map(|c| f(c)).collect::<Vec<i64>>();
    let ids = |f: fn(&AdmitCall) -> Uuid| calls.iter().map(|c| f(c)).collect::<Vec<Uuid>>();
    let rows = sqlx::query(ADMIT_BATCH_SQL)
        .bind(ids(|c| c.account))
        .bind(ids(|c| c.key))
        .bind(calls.iter().map(|c| c.domain.as_str()).collect::<Vec<_>>())
        .bind(column(|c| c.bounds.month))
        .bind(column(|c| c.bounds.key_since))
        .bind(column(|c| c.bounds.key_edge))
        .bind(column(|c| c.bounds.day_since))
        .bind(column(|c| c.bounds.day_edge))
        .bind(column(|c| c.month_limit))
        .bind(column(|c| c.key_limit))
        .bind(column(|c| c.day_limit))
        .bind(calls.iter().map(|c| c.record_at).collect::<Vec<_>>())
        .bind(ids(|c| c.job_id))
        .bind(ids(|c| c.run_id))
        .bind(calls.iter().map(|c| c.force_fresh).collect::<Vec<_>>())
        .bind(column(|c| c.now_ms))
        .bind(column(|c| c.cost))
        .fetch_all(&mut *conn)
        .await?;
    super::rows::by_place(rows, calls.len(), "place", |row| {
        Ok(AdmitAnswer::from_row(&row)?)
    })
}

/// `call`'s arguments, bound to `kepler_admit`'s seventeen parameters.
fn bind_one<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    call: &'q AdmitCall,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(call.account)
        .bind(call.key)
        .bind(call.domain.as_str())
        .bind(call.bounds.month)
        .bind(call.bounds.key_since)
        .bind(call.bounds.key_edge)
        .bind(call.bounds.day_since)
        .bind(call.bounds.day_edge)
        .bind(call.month_limit)
        .bind(call.key_limit)
        .bind(call.day_limit)
        .bind(call.record_at)
        .bind(call.job_id)
        .bind(call.run_id)
        .bind(call.force_fresh)
        .bind(call.now_ms)
        .bind(call.cost)
}

/// Writes `call` alone on `conn` (a batch of one, or the way back when its
/// batch was not written).
pub(super) async fn admit_alone(
    conn: &mut sqlx::postgres::PgConnection,
    call: &AdmitCall,
) -> crate::Result<AdmitAnswer> {
    let row = bind_one(sqlx::query(ADMIT_SQL), call)
        .fetch_one(conn)
        .await?;
    Ok(AdmitAnswer::from_row(&row)?)
}
