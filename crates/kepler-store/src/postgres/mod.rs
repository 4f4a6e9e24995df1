//! The shared store: PostgreSQL, for many API nodes and workers on one database.
//!
//! Every change is one transaction on a pooled connection, in READ COMMITTED.
//! Exactness comes from row locks rather than from one writer: an admission
//! locks its account's row, a claim takes the oldest free run with
//! `FOR UPDATE SKIP LOCKED`, and settling locks the run. Reads that only
//! answer (usage, a fresh record, a job) never take a lock.
//!
//! The tables live in the first schema of the connection's `search_path`
//! (`public` unless the URL says otherwise, e.g.
//! `postgres://host/db?options=-c%20search_path%3Dkepler`).

mod accounts;
mod admission;
mod idempotency;
mod queue;
mod records;
mod rows;
mod wakeups;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kepler_core::config::DatabaseSettings;
use kepler_core::{Domain, FailureReason, ScoreRecord, Tier, TierPolicy};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgDatabaseError, PgPool, PgPoolOptions};
use uuid::Uuid;

use crate::{
    Account, AdmissionOutcome, AdmissionRequest, Caller, ClaimedRun, IdempotentResponse, Job,
    NewKey, QueueStats, Result, Store, StoreError, UsageSnapshot,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL store.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    options: PgConnectOptions,
    acquire_timeout: Duration,
    wakeups: wakeups::Wakeups,
}

impl PostgresStore {
    /// Prepares a pool for the database `settings.url` names (`postgres://…` or
    /// `postgresql://…`). Connections are made on first use, so a process can start
    /// while the database is down; every call then answers `Unavailable` within
    /// `acquire_timeout` until it is back.
    pub async fn open(settings: &DatabaseSettings) -> Result<PostgresStore> {
        let url = settings.url.as_str();
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options.clone());
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options.clone());
        Ok(PostgresStore {
            pool,
            options,
            acquire_timeout: settings.acquire_timeout,
            wakeups: wakeups::Wakeups::new(listener_pool),
        })
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// A transaction that sees one snapshot throughout and writes nothing.
    async fn snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?)
    }
}

/// SQLSTATEs that mean "down, busy or restarting", not "wrong": connection
/// exceptions (08), insufficient resources (53, e.g. too many connections),
/// operator intervention (57P01–57P03: shutdown, crash, starting up), a
/// cancelled or timed-out statement (57014), lock and serialization conflicts
/// (55P03, 40001, 40P01).
pub(crate) fn is_transient(error: &PgDatabaseError) -> bool {
    let code = error.code();
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57014" | "55P03" | "40001" | "40P01"
        )
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<()> {
        // On a connection of its own: sqlx's migrator holds a session advisory lock
        // (so processes starting together migrate one at a time), and a connection
        // closed on failure can never hand that lock back to the pool.
        let mut conn = tokio::time::timeout(
            self.acquire_timeout,
            PgConnection::connect_with(&self.options),
        )
        .await
        .map_err(|_| StoreError::Unavailable("timed out connecting to run migrations".into()))??;
        // `run_direct` is sqlx's own way around `run`'s lifetime bound on a bare
        // connection in an async trait (the "Acquire is not general enough" error).
        let result = MIGRATOR.run_direct(&mut conn).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => StoreError::from(inner),
            other => StoreError::Migration(other.to_string()),
        });
        let _ = conn.close().await;
        result
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SELECT 1").execute(&mut *conn).await?;
        Ok(())
    }

    async fn close(&self) {
        self.wakeups.close().await;
        self.pool.close().await;
    }

    async fn create_account(&self, name: &str, tier: Tier) -> Result<Account> {
        let mut conn = self.pool.acquire().await?;
        accounts::create_account(&mut conn, name, tier).await
    }

    async fn set_tier(&self, account_id: Uuid, tier: Tier) -> Result<Account> {
        let mut conn = self.pool.acquire().await?;
        accounts::set_tier(&mut conn, account_id, tier).await
    }

    async fn get_account(&self, account_id: Uuid) -> Result<Option<Account>> {
        let mut conn = self.pool.acquire().await?;
        accounts::get_account(&mut conn, account_id).await
    }

    async fn create_key(&self, account_id: Uuid, sandbox: bool) -> Result<NewKey> {
        let mut conn = self.pool.acquire().await?;
        accounts::create_key(&mut conn, account_id, sandbox).await
    }

    async fn revoke_key(&self, key_id: Uuid) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        accounts::revoke_key(&mut conn, key_id).await
    }

    async fn authenticate(&self, presented_key: &str) -> Result<Option<Caller>> {
        let mut conn = self.pool.acquire().await?;
        accounts::authenticate(&mut conn, presented_key).await
    }

    async fn latest_record(&self, domain: &Domain) -> Result<Option<ScoreRecord>> {
        let mut conn = self.pool.acquire().await?;
        records::latest(&mut conn, domain.as_str()).await
    }

    async fn put_record(&self, record: &ScoreRecord) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        records::insert(&mut conn, record).await?;
        Ok(())
    }

    async fn admit(&self, request: &AdmissionRequest) -> Result<AdmissionOutcome> {
        // Most requests are answered without writing (a fresh record, a limit
        // already reached, a job in flight): decide those on a snapshot, without
        // the account's lock. Such an answer stays true for this `now`: records
        // and cost-log rows are only ever added. Only `Admit` needs the lock.
        {
            let mut snapshot = self.snapshot().await?;
            if let Some(outcome) = admission::decide_on(&mut snapshot, request).await? {
                snapshot.commit().await?;
                return Ok(outcome);
            }
        }
        // Facts read and call written under the account's lock: the limits are exact.
        let mut tx = self.begin().await?;
        admission::lock_account(&mut tx, request.caller.account_id).await?;
        let outcome = match admission::decide_on(&mut tx, request).await? {
            Some(outcome) => outcome,
            None => admission::admit(&mut tx, request).await?,
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn usage(
        &self,
        caller: &Caller,
        policy: &TierPolicy,
        now: DateTime<Utc>,
    ) -> Result<UsageSnapshot> {
        let mut snapshot = self.snapshot().await?;
        let usage = admission::usage(&mut snapshot, caller, policy, now).await?;
        snapshot.commit().await?;
        Ok(usage)
    }

    async fn get_job(&self, account_id: Uuid, job_id: Uuid) -> Result<Option<Job>> {
        let mut conn = self.pool.acquire().await?;
        admission::get_job(&mut conn, account_id, job_id).await
    }

    async fn claim_run(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimedRun>> {
        // A single statement: it commits on its own, no BEGIN/COMMIT round trips.
        let mut conn = self.pool.acquire().await?;
        queue::claim(&mut conn, worker_id, lease, now).await
    }

    async fn heartbeat(
        &self,
        run_id: Uuid,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        queue::heartbeat(&mut conn, run_id, worker_id, lease, now).await
    }

    async fn complete_run(
        &self,
        run_id: Uuid,
        worker_id: &str,
        record: &ScoreRecord,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = queue::complete(&mut tx, run_id, worker_id, record, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn fail_run(
        &self,
        run_id: Uuid,
        worker_id: &str,
        reason: FailureReason,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = queue::fail(&mut tx, run_id, worker_id, reason, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn release_run(&self, run_id: Uuid, worker_id: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        queue::release(&mut tx, run_id, worker_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats> {
        let mut snapshot = self.snapshot().await?;
        let stats = queue::stats(&mut snapshot, now).await?;
        snapshot.commit().await?;
        Ok(stats)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        self.wakeups.wait(timeout).await;
    }

    async fn idempotent_response(
        &self,
        account_id: Uuid,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotentResponse>> {
        let mut conn = self.pool.acquire().await?;
        idempotency::get(&mut conn, account_id, key, now).await
    }

    async fn save_idempotent_response(
        &self,
        account_id: Uuid,
        key: &str,
        response: &IdempotentResponse,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        idempotency::save(&mut tx, account_id, key, response, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
