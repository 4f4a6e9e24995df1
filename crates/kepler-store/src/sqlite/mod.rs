//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go through a pool of exactly one connection, and every write is a
//! `BEGIN IMMEDIATE` transaction (never a read upgraded to a write, which WAL
//! may refuse outright with `SQLITE_BUSY_SNAPSHOT`): SQLite allows one
//! writer at a time anyway, and queueing writers in-process (first come, first
//! served) beats having them spin in SQLite's busy handler. `BEGIN IMMEDIATE`
//! still takes the file's write lock up front, so another process on the same
//! file (`kepler admin …` while `kepler serve` runs) is serialised too, waiting
//! up to `busy_timeout`. Reads use their own pool and never wait for writers.
//! Cold admissions are the exception: a thread of their own writes them, many
//! to a commit (see `admissions`), taking turns with the writer pool.

mod accounts;
mod admission;
mod admissions;
mod changes;
mod checkpoints;
mod idempotency;
mod queue;
mod records;
mod rows;
mod snapshots;

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kepler_core::config::DatabaseSettings;
use kepler_core::{Domain, FailureReason, ScoreRecord, Tier, TierPolicy};
use sqlx::error::DatabaseError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteError, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, TransactionManager};
use uuid::Uuid;

use self::admission::Decided;
use self::admissions::{AdmissionWriter, WriteGate, Written};
use self::changes::{ChangeWatch, DataVersion};
use self::checkpoints::Checkpointer;
use self::snapshots::SnapshotReaders;

use crate::hits::{self, Hit, HitMemo};
use crate::keys;
use crate::served::ServedCache;
use crate::{
    Account, AdmissionOutcome, AdmissionRequest, Ask, Caller, ClaimedRun, IdempotencyClaim,
    IdempotentResponse, Job, NewKey, QueueStats, Result, Store, StoreError, UsageSnapshot,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store. Cloning shares the pools.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// One connection: every write transaction.
    writer: SqlitePool,
    /// Reads; the same pool as `writer` for an in-memory database.
    reader: SqlitePool,
    /// Turns at the write lock, for `writer` and `admissions`.
    gate: WriteGate,
    /// Cold admissions; `None` for an in-memory database, which no other
    /// connection can open.
    admissions: Option<Arc<AdmissionWriter>>,
    served: ServedCache,
    /// Cached hits replayed while the file is unchanged; `None` for an
    /// in-memory database, which no other connection can watch.
    changes: Option<Arc<ChangeWatch>>,
    hits: HitMemo<DataVersion>,
    /// `POST /v1/score`'s snapshot, read on the request's task; `None` for an
    /// in-memory database.
    snapshots: Option<Arc<SnapshotReaders>>,
    /// The log's checkpoints; `None` for an in-memory database.
    checkpoints: Option<Arc<Checkpointer>>,
}

impl SqliteStore {
    /// Opens (creating the file and its parent directories on first use) the
    /// database `settings.url` names: `sqlite://PATH`, or `sqlite::memory:` for a
    /// private in-memory database that lives as long as this store.
    pub async fn open(settings: &DatabaseSettings) -> Result<SqliteStore> {
        let url = settings.url.as_str();
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad SQLite URL {url:?}: {e}")))?
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Normal)
            // Statement journals (savepoints, statements firing triggers) and
            // sorts in memory, not in temporary files opened for each.
            .pragma("temp_store", "memory")
            // A thread of the store's own checkpoints the log (see `checkpoints`).
            .pragma("wal_autocheckpoint", "0")
            .busy_timeout(settings.acquire_timeout.max(Duration::from_secs(1)));
        let max_connections = settings.max_connections.max(1);

        if is_in_memory(url) {
            // Every connection would see its own empty database: keep exactly one, forever.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(base)
                .await?;
            return Ok(SqliteStore {
                writer: pool.clone(),
                reader: pool,
                gate: WriteGate::default(),
                admissions: None,
                served: ServedCache::default(),
                changes: None,
                hits: HitMemo::default(),
                snapshots: None,
                checkpoints: None,
            });
        }

        let path = base.get_filename().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Config(format!(
                    "cannot create the directory {}: {e}",
                    parent.display()
                ))
            })?;
        }
        // WAL is a property of the file: set once by the writer, which connects first.
        // No ping before each acquire: a connection to a local file cannot go stale
        // the way a network one can, and the ping is one more hop to its thread.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .after_release(|conn, _| Box::pin(outside_any_transaction(conn)))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
            .after_release(|conn, _| Box::pin(outside_any_transaction(conn)))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(base.clone())
            .await?;
        // Opened after the writer, which made the file and put it in WAL mode.
        let changes = ChangeWatch::open(&path).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot open {} to watch it for changes: {e}",
                path.display()
            ))
        })?;
        let gate = WriteGate::default();
        let checkpoints = Arc::new(Checkpointer::open(&path, gate.clone())?);
        let busy_timeout = settings.acquire_timeout.max(Duration::from_secs(1));
        let admissions =
            AdmissionWriter::open(&path, busy_timeout, gate.clone(), checkpoints.clone())?;
        let snapshots = SnapshotReaders::open(&path).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot open {} for snapshot reads: {e}",
                path.display()
            ))
        })?;
        Ok(SqliteStore {
            writer,
            reader,
            gate,
            admissions: Some(Arc::new(admissions)),
            served: ServedCache::default(),
            changes: Some(Arc::new(changes)),
            hits: HitMemo::default(),
            snapshots: Some(Arc::new(snapshots)),
            checkpoints: Some(checkpoints),
        })
    }

    async fn write(&self) -> Result<WriteTx> {
        // The connection first, then the turn. A connection handed back goes
        // through a task of its own before the next writer gets it, and on busy
        // cores that task can wait long in the runtime's queue: not while
        // holding the turn the admission thread is waiting for.
        let conn = self.writer.acquire().await?;
        let turn = self.gate.clone().lock_owned().await;
        // `Pool::begin_with` is this after its own acquire.
        let tx = sqlx::Transaction::begin(conn, Some("BEGIN IMMEDIATE".into())).await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// The write half of an admission a read snapshot decided to admit: facts
    /// read and call written under one write lock, so the limits are exact.
    async fn admit_writing(&self, request: &AdmissionRequest) -> Result<AdmissionOutcome> {
        if let Some(admissions) = &self.admissions
            && let Written::Admitted(outcome) = admissions.write(request).await?
        {
            return Ok(*outcome);
        }
        let mut tx = self.write().await?;
        let outcome = match admission::decide_on(&mut tx, request, &self.served).await? {
            Decided::Answered(outcome) => *outcome,
            Decided::Fresh(fresh) => fresh.outcome,
            Decided::Admit { counts, run } => {
                admission::admit(&mut tx, request, counts, run).await?
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}

/// A write transaction on the writer pool, holding the store's turn at the
/// write lock until it ends.
struct WriteTx {
    // Dropped first: the transaction ends (or its rollback is queued) before
    // the turn passes on.
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

/// Whether a connection handed back to its pool may be used again: only
/// outside any transaction. A caller that stops waiting (the server's
/// `store_timeout`) drops the store's future, and sqlx-sqlite 0.8 leaves the
/// connection inside its transaction when that happens between `BEGIN` and the
/// creation of the `Transaction` (nothing is left to roll it back). Kept, it
/// would hold the write lock and refuse every later `BEGIN`: all writes failing
/// until a restart. Such a connection is closed instead, which rolls it back.
async fn outside_any_transaction(conn: &mut SqliteConnection) -> sqlx::Result<bool> {
    type Manager = <sqlx::Sqlite as sqlx::Database>::TransactionManager;
    if Manager::get_transaction_depth(conn) == 0 {
        return Ok(true);
    }
    // A dropped `Transaction` queues its rollback on the connection's thread;
    // a ping, queued behind it, returns once it has run.
    conn.ping().await?;
    Ok(Manager::get_transaction_depth(conn) == 0)
}

fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// SQLite result codes that mean "busy, locked or unreachable", not "wrong":
/// BUSY, LOCKED, NOMEM, IOERR, FULL, CANTOPEN (primary codes; the driver reports extended ones).
pub(crate) fn is_transient(error: &SqliteError) -> bool {
    let Some(code) = error.code().and_then(|c| c.parse::<i32>().ok()) else {
        return false;
    };
    matches!(code & 0xff, 5 | 6 | 7 | 10 | 13 | 14)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.writer).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => StoreError::from(inner),
            other => StoreError::Migration(other.to_string()),
        })
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.reader.acquire().await?;
        sqlx::query("SELECT 1").execute(&mut *conn).await?;
        Ok(())
    }

    async fn close(&self) {
        if let Some(changes) = &self.changes {
            changes.close();
        }
        if let Some(snapshots) = &self.snapshots {
            snapshots.close();
        }
        if let Some(admissions) = &self.admissions {
            admissions.close().await;
        }
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.close().await;
        }
        self.writer.close().await;
        self.reader.close().await;
    }

    async fn create_account(&self, name: &str, tier: Tier) -> Result<Account> {
        let mut tx = self.write().await?;
        let account = accounts::create_account(&mut tx, name, tier).await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn set_tier(&self, account_id: Uuid, tier: Tier) -> Result<Account> {
        let mut tx = self.write().await?;
        let account = accounts::set_tier(&mut tx, account_id, tier).await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn get_account(&self, account_id: Uuid) -> Result<Option<Account>> {
        let mut conn = self.reader.acquire().await?;
        accounts::get_account(&mut conn, account_id).await
    }

    async fn create_key(&self, account_id: Uuid, sandbox: bool) -> Result<NewKey> {
        let mut tx = self.write().await?;
        let key = accounts::create_key(&mut tx, account_id, sandbox).await?;
        tx.commit().await?;
        Ok(key)
    }

    async fn revoke_key(&self, key_id: Uuid) -> Result<()> {
        let mut tx = self.write().await?;
        accounts::revoke_key(&mut tx, key_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn authenticate(&self, presented_key: &str) -> Result<Option<Caller>> {
        let mut conn = self.reader.acquire().await?;
        accounts::authenticate(&mut conn, presented_key).await
    }

    async fn latest_record(&self, domain: &Domain) -> Result<Option<ScoreRecord>> {
        let mut conn = self.reader.acquire().await?;
        records::latest(&mut conn, domain.as_str()).await
    }

    async fn put_record(&self, record: &ScoreRecord) -> Result<()> {
        let mut tx = self.write().await?;
        records::insert(&mut tx, record).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn admit(&self, request: &AdmissionRequest) -> Result<AdmissionOutcome> {
        // Most requests are answered without writing (a fresh record, a limit already
        // reached, a job in flight). Decide those on a read snapshot first, so they never
        // queue behind writers. Such an answer was true at the snapshot, and the
        // ones that matter for exactness stay true for this `now`: records and
        // cost-log rows are only ever added, so a fresh record stays and a full
        // window stays full. Only `Admit` needs the write lock.
        // The facts are one statement, so they are one consistent snapshot without
        // an explicit transaction.
        {
            let mut conn = self.reader.acquire().await?;
            if let Some(outcome) = admission::decide_on(&mut conn, request, &self.served)
                .await?
                .into_answer()
            {
                return Ok(outcome);
            }
        }
        self.admit_writing(request).await
    }

    async fn authenticate_and_admit(
        &self,
        presented_key: &str,
        ask: &Ask<'_>,
    ) -> Result<Option<(Caller, Option<AdmissionOutcome>)>> {
        let shape = keys::shape(presented_key);
        let tag = keys::tag(presented_key);
        // Read before the facts: a commit between the two leaves the facts
        // newer than their version, never older, so a replay is never stale.
        // Sandbox keys are answered without facts: nothing to replay.
        let version = match &self.changes {
            Some(changes) if shape.well_formed && !shape.sandbox => changes.current(),
            _ => None,
        };
        if let Some(version) = version
            && let Some(hit) = self.hits.get(tag, ask.domain.as_str())
            && hit.stamp == version
            && let Some((caller, outcome)) = hits::replay(&hit, ask)?
        {
            return Ok(Some((caller, Some(outcome))));
        }
        let presented = keys::inspect(presented_key);
        // The key and the facts in one statement on a read snapshot, as in `admit`.
        let caller = {
            let read_here = self
                .snapshots
                .as_ref()
                .and_then(|readers| readers.authenticate_and_decide(&presented, ask, &self.served));
            let answer = match read_here {
                Some(answer) => answer,
                None => {
                    let mut conn = self.reader.acquire().await?;
                    admission::authenticate_and_decide(&mut conn, &presented, ask, &self.served)
                        .await?
                }
            };
            match answer {
                None => return Ok(None),
                Some((caller, None)) => return Ok(Some((caller, None))),
                Some((caller, Some(Decided::Fresh(fresh)))) => {
                    if let Some(version) = version
                        && let Some(hit) = Hit::new(
                            version,
                            tag,
                            presented.hash,
                            caller.clone(),
                            &fresh,
                            ask.now,
                        )
                    {
                        self.hits.remember(ask.domain.as_str(), hit);
                    }
                    return Ok(Some((caller, Some(fresh.outcome))));
                }
                Some((caller, Some(Decided::Answered(outcome)))) => {
                    return Ok(Some((caller, Some(*outcome))));
                }
                Some((caller, Some(Decided::Admit { .. }))) => caller,
            }
        };
        let outcome = self.admit_writing(&ask.request(&caller)).await?;
        Ok(Some((caller, Some(outcome))))
    }

    async fn usage(
        &self,
        caller: &Caller,
        policy: &TierPolicy,
        now: DateTime<Utc>,
    ) -> Result<UsageSnapshot> {
        let mut conn = self.reader.acquire().await?;
        admission::usage(&mut conn, caller, policy, now).await
    }

    async fn get_job(&self, account_id: Uuid, job_id: Uuid) -> Result<Option<Job>> {
        let mut conn = self.reader.acquire().await?;
        admission::get_job(&mut conn, account_id, job_id).await
    }

    async fn claim_runs(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedRun>> {
        // Idle workers poll: most claims find nothing, and need not queue for the writer.
        {
            let mut conn = self.reader.acquire().await?;
            if !queue::anything_claimable(&mut conn, now).await? {
                return Ok(Vec::new());
            }
        }
        let mut tx = self.write().await?;
        let mut claimed = Vec::new();
        while claimed.len() < limit {
            match queue::claim(&mut tx, worker_id, lease, now).await? {
                Some(run) => claimed.push(run),
                None => break,
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn heartbeat(
        &self,
        run_id: Uuid,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let held = queue::heartbeat(&mut tx, run_id, worker_id, lease, now).await?;
        tx.commit().await?;
        Ok(held)
    }

    async fn complete_run(
        &self,
        run_id: Uuid,
        worker_id: &str,
        record: &ScoreRecord,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
        let done = queue::fail(&mut tx, run_id, worker_id, reason, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn release_run(&self, run_id: Uuid, worker_id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        queue::release(&mut tx, run_id, worker_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats> {
        let mut snapshot = self.reader.begin().await?;
        let stats = queue::stats(&mut snapshot, now).await?;
        snapshot.commit().await?;
        Ok(stats)
    }

    async fn reserve_idempotency_key(
        &self,
        account_id: Uuid,
        key: &str,
        request_hash: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<IdempotencyClaim> {
        let mut tx = self.write().await?;
        let claim = idempotency::reserve(&mut tx, account_id, key, request_hash, ttl, now).await?;
        tx.commit().await?;
        Ok(claim)
    }

    async fn release_idempotency_key(
        &self,
        account_id: Uuid,
        key: &str,
        holder: Uuid,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        idempotency::release(&mut tx, account_id, key, holder).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn idempotent_response(
        &self,
        account_id: Uuid,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotentResponse>> {
        let mut conn = self.reader.acquire().await?;
        idempotency::get(&mut conn, account_id, key, now).await
    }

    async fn save_idempotent_response(
        &self,
        account_id: Uuid,
        key: &str,
        response: &IdempotentResponse,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        idempotency::save(&mut tx, account_id, key, response, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
