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
mod admissions;
mod breaker;
mod idempotency;
mod queue;
mod records;
mod rows;
mod stamps;
mod wakeups;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kepler_core::config::DatabaseSettings;
use kepler_core::{Domain, FailureReason, ScoreRecord, Tier, TierPolicy};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgDatabaseError, PgPool, PgPoolOptions};
use uuid::Uuid;

use self::admission::HitStamp;
use self::admissions::AdmissionBatches;
use self::stamps::{StampChecks, Unchecked};
use crate::hits::{self, Hit, HitMemo};
use crate::keys;
use crate::served::ServedCache;
use crate::{
    Account, AdmissionOutcome, AdmissionRequest, Ask, Caller, ClaimedRun, IdempotencyClaim,
    IdempotentResponse, Job, NewKey, QueueStats, Result, RunEnding, Settled, Store, StoreError,
    UsageSnapshot,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL store.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    options: PgConnectOptions,
    acquire_timeout: Duration,
    breaker: breaker::Breaker,
    wakeups: wakeups::Wakeups,
    served: ServedCache,
    hits: HitMemo<HitStamp>,
    stamps: StampChecks,
    admissions: AdmissionBatches,
}

/// A connection idle for longer than this is pinged before it is handed out.
const TRUSTED_IDLE: Duration = Duration::from_secs(1);

/// sqlx pings every connection it hands out by default: one more round trip on
/// every store call, the same cost as a cached hit's own statement (issue 6).
/// A connection that was in use a moment ago (it was also pinged when it came
/// back to the pool) is trusted; one that sat idle, across a database restart
/// say, is still checked, and one that fails is closed and replaced.
async fn ping_if_idle(
    conn: &mut PgConnection,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> std::result::Result<bool, sqlx::Error> {
    if meta.idle_for > TRUSTED_IDLE {
        conn.ping().await?;
    }
    Ok(true)
}

impl PostgresStore {
    /// Prepares a pool for the database `settings.url` names (`postgres://…` or
    /// `postgresql://…`). Connections are made on first use, so a process can start
    /// while the database is down; every call then answers `Unavailable` within
    /// `acquire_timeout` until it is back, and at once after the first failure
    /// (see [`breaker`]).
    pub async fn open(settings: &DatabaseSettings) -> Result<PostgresStore> {
        let url = settings.url.as_str();
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
            .connect_lazy_with(options.clone());
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options.clone());
        // The admission task's own connection (see `admissions`).
        let admission_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
            .connect_lazy_with(options.clone());
        let breaker = breaker::Breaker::new(options.clone(), settings.acquire_timeout);
        Ok(PostgresStore {
            admissions: AdmissionBatches::start(admission_pool, breaker.clone()),
            stamps: StampChecks::start(pool.clone(), breaker.clone()),
            breaker,
            pool,
            options,
            acquire_timeout: settings.acquire_timeout,
            wakeups: wakeups::Wakeups::new(listener_pool),
            served: ServedCache::default(),
            hits: HitMemo::default(),
        })
    }

    /// A pooled connection, unless the breaker knows the server is unreachable.
    async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        self.breaker.connect(self.pool.acquire()).await
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.breaker.connect(self.pool.begin()).await
    }

    /// A transaction that sees one snapshot throughout and writes nothing.
    async fn snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.breaker
            .connect(
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
            )
            .await
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
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                sqlx::query("SELECT 1").execute(&mut *conn).await?;
                Ok(())
            }
            .await,
        )
    }

    async fn close(&self) {
        self.breaker.close();
        self.wakeups.close().await;
        self.admissions.close().await;
        self.pool.close().await;
    }

    async fn create_account(&self, name: &str, tier: Tier) -> Result<Account> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                accounts::create_account(&mut conn, name, tier).await
            }
            .await,
        )
    }

    async fn set_tier(&self, account_id: Uuid, tier: Tier) -> Result<Account> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                accounts::set_tier(&mut conn, account_id, tier).await
            }
            .await,
        )
    }

    async fn get_account(&self, account_id: Uuid) -> Result<Option<Account>> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                accounts::get_account(&mut conn, account_id).await
            }
            .await,
        )
    }

    async fn create_key(&self, account_id: Uuid, sandbox: bool) -> Result<NewKey> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                accounts::create_key(&mut conn, account_id, sandbox).await
            }
            .await,
        )
    }

    async fn revoke_key(&self, key_id: Uuid) -> Result<()> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                accounts::revoke_key(&mut conn, key_id).await
            }
            .await,
        )
    }

    async fn authenticate(&self, presented_key: &str) -> Result<Option<Caller>> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                accounts::authenticate(&mut conn, presented_key).await
            }
            .await,
        )
    }

    async fn latest_record(&self, domain: &Domain) -> Result<Option<ScoreRecord>> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                records::latest(&mut conn, domain.as_str()).await
            }
            .await,
        )
    }

    async fn put_record(&self, record: &ScoreRecord) -> Result<()> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                records::insert(&mut conn, record).await?;
                Ok(())
            }
            .await,
        )
    }

    async fn admit(&self, request: &AdmissionRequest) -> Result<AdmissionOutcome> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                let decided = admission::decide_on(&mut conn, request, &self.served).await?;
                admission::carry_out(&mut conn, &self.admissions, request, decided, &self.served)
                    .await
            }
            .await,
        )
    }

    async fn authenticate_and_admit(
        &self,
        presented_key: &str,
        ask: &Ask<'_>,
    ) -> Result<Option<(Caller, Option<AdmissionOutcome>)>> {
        self.breaker.watch(
            async {
                let domain = ask.domain.as_str();
                let tag = keys::tag(presented_key);
                // A hit this node served before: the key row, the account's
                // cold-call counter and the newest record's id say whether its
                // facts still hold (one light statement, shared by the hits
                // waiting at that moment). The key is looked up by the hash
                // the hit kept: the same key, so the same hash.
                if keys::shape(presented_key).well_formed
                    && let Some(hit) = self.hits.get(tag, domain)
                {
                    let checked = match self.stamps.check(&hit.key_hash, domain).await {
                        Ok(checked) => checked,
                        Err(Unchecked) => {
                            let mut conn = self.acquire().await?;
                            admission::hit_stamp(&mut conn, &hit.key_hash, domain).await?
                        }
                    };
                    let Some((caller, stamp)) = checked else {
                        return Ok(None);
                    };
                    if caller == hit.caller
                        && stamp == hit.stamp
                        && let Some((caller, outcome)) = hits::replay(&hit, ask)?
                    {
                        return Ok(Some((caller, Some(outcome))));
                    }
                }
                let presented = keys::inspect(presented_key);
                let mut conn = self.acquire().await?;
                // The key and the facts in one statement (one round trip), as in `admit`.
                let Some((caller, decided, stamp)) =
                    admission::authenticate_and_decide(&mut conn, &presented, ask, &self.served)
                        .await?
                else {
                    return Ok(None);
                };
                let Some(decided) = decided else {
                    return Ok(Some((caller, None)));
                };
                if let admission::Decided::Fresh(fresh) = &decided
                    && let Some(hit) = Hit::new(
                        stamp,
                        tag,
                        presented.hash.clone(),
                        caller.clone(),
                        fresh,
                        ask.now,
                    )
                {
                    self.hits.remember(domain, hit);
                }
                let outcome = admission::carry_out(
                    &mut conn,
                    &self.admissions,
                    &ask.request(&caller),
                    decided,
                    &self.served,
                )
                .await?;
                Ok(Some((caller, Some(outcome))))
            }
            .await,
        )
    }

    async fn usage(
        &self,
        caller: &Caller,
        policy: &TierPolicy,
        now: DateTime<Utc>,
    ) -> Result<UsageSnapshot> {
        self.breaker.watch(
            async {
                // One statement: one snapshot, without a transaction around it.
                let mut conn = self.acquire().await?;
                admission::usage(&mut conn, caller, policy, now).await
            }
            .await,
        )
    }

    async fn get_job(&self, account_id: Uuid, job_id: Uuid) -> Result<Option<Job>> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                admission::get_job(&mut conn, account_id, job_id).await
            }
            .await,
        )
    }

    async fn claim_runs(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedRun>> {
        self.breaker.watch(
            async {
                // A single statement: it commits on its own, no BEGIN/COMMIT round trips.
                let mut conn = self.acquire().await?;
                queue::claim(&mut conn, worker_id, lease, now, limit).await
            }
            .await,
        )
    }

    async fn heartbeat(
        &self,
        run_id: Uuid,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                queue::heartbeat(&mut conn, run_id, worker_id, lease, now).await
            }
            .await,
        )
    }

    async fn complete_run(
        &self,
        run_id: Uuid,
        worker_id: &str,
        record: &ScoreRecord,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let ending = RunEnding::Complete(record);
        Ok(self
            .settle_run(run_id, worker_id, ending, now, None)
            .await?
            .held)
    }

    async fn fail_run(
        &self,
        run_id: Uuid,
        worker_id: &str,
        reason: FailureReason,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let ending = RunEnding::Failed(reason);
        Ok(self
            .settle_run(run_id, worker_id, ending, now, None)
            .await?
            .held)
    }

    async fn settle_run(
        &self,
        run_id: Uuid,
        worker_id: &str,
        ending: RunEnding<'_>,
        now: DateTime<Utc>,
        claim_next: Option<Duration>,
    ) -> Result<Settled> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                queue::settle(&mut conn, run_id, worker_id, ending, now, claim_next).await
            }
            .await,
        )
    }

    async fn release_run(&self, run_id: Uuid, worker_id: &str) -> Result<()> {
        self.breaker.watch(
            async {
                let mut tx = self.begin().await?;
                queue::release(&mut tx, run_id, worker_id).await?;
                tx.commit().await?;
                Ok(())
            }
            .await,
        )
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats> {
        self.breaker.watch(
            async {
                let mut snapshot = self.snapshot().await?;
                let stats = queue::stats(&mut snapshot, now).await?;
                snapshot.commit().await?;
                Ok(stats)
            }
            .await,
        )
    }

    async fn wait_for_work(&self, timeout: Duration) {
        self.wakeups.wait(timeout).await;
    }

    async fn reserve_idempotency_key(
        &self,
        account_id: Uuid,
        key: &str,
        request_hash: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<IdempotencyClaim> {
        self.breaker.watch(
            async {
                // One statement at a time on a pooled connection: each sees the latest commits.
                let mut conn = self.acquire().await?;
                idempotency::reserve(&mut conn, account_id, key, request_hash, ttl, now).await
            }
            .await,
        )
    }

    async fn release_idempotency_key(
        &self,
        account_id: Uuid,
        key: &str,
        holder: Uuid,
    ) -> Result<()> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                idempotency::release(&mut conn, account_id, key, holder).await
            }
            .await,
        )
    }

    async fn idempotent_response(
        &self,
        account_id: Uuid,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotentResponse>> {
        self.breaker.watch(
            async {
                let mut conn = self.acquire().await?;
                idempotency::get(&mut conn, account_id, key, now).await
            }
            .await,
        )
    }

    async fn save_idempotent_response(
        &self,
        account_id: Uuid,
        key: &str,
        response: &IdempotentResponse,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.breaker.watch(
            async {
                let mut tx = self.begin().await?;
                idempotency::save(&mut tx, account_id, key, response, now).await?;
                tx.commit().await?;
                Ok(())
            }
            .await,
        )
    }
}
