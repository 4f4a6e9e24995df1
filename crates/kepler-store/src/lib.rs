//! Kepler's persistence behind one interface: accounts and keys, score records,
//! the cost log, admissions and the job queue.
//!
//! Backends are chosen by URL scheme (`sqlite://…` for one machine,
//! `postgres://…` for many nodes on one database) and must pass the same
//! contract suite (`tests/it/contract.rs`). Every method that
//! changes limits or the queue is one transaction, so callers never coordinate.
//!
//! [`open`] does not touch the schema: call [`Store::migrate`] once after it.
//! Instants are kept at millisecond precision (see [`time`]): a job's or record's
//! timestamps read back equal what the write returned.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use kepler_core::admission::{Decision, WindowUsage};
use kepler_core::config::DatabaseSettings;
use kepler_core::{Domain, FailureReason, JobStatus, ScoreRecord, Tier, TierPolicy, TierTable};
use serde::Serialize;
use uuid::Uuid;

mod error;
mod hits;
mod jobs;
pub mod keys;
mod postgres;
mod served;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod windows;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A store failure, typed so the API can tell "down" from "wrong".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or timed out: the API answers 503 `store_unavailable`.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The thing named does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The database URL or settings are unusable.
    #[error("{0}")]
    Config(String),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Stored data that cannot be read back (a bug or manual tampering).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Any other database error, with its cause kept.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Any other error of the embedded store's admission writer, whose
    /// connection is not sqlx's (it is reported to every admission of a batch).
    #[error("database error: {0}")]
    Write(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub account_id: Uuid,
    pub name: String,
    pub tier: Tier,
    pub created_at: DateTime<Utc>,
}

/// A key as just created: the only time its secret is visible.
#[derive(Debug, Clone, Serialize)]
pub struct NewKey {
    pub key: String,
    pub key_id: Uuid,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: Uuid,
    pub account_id: Uuid,
    pub tier: Tier,
    pub sandbox: bool,
}

/// A user-visible job (one per admitted cold call, per account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub job_id: Uuid,
    pub account_id: Uuid,
    pub domain: String,
    pub status: JobStatus,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// On `complete`: when the record it produced was scored.
    pub scored_at: Option<DateTime<Utc>>,
    pub failure_reason: Option<FailureReason>,
}

/// What `admit` is asked.
#[derive(Debug, Clone)]
pub struct AdmissionRequest {
    pub caller: Caller,
    pub policy: TierPolicy,
    pub domain: Domain,
    pub force_fresh: bool,
    pub now: DateTime<Utc>,
}

/// An admission asked before its caller is known: `POST /v1/score` with the key
/// still to check, for [`Store::authenticate_and_admit`].
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub domain: &'a Domain,
    pub force_fresh: bool,
    pub now: DateTime<Utc>,
    /// Every tier's effective policy: the caller's tier picks one.
    pub tiers: &'a TierTable,
}

impl Ask<'_> {
    /// The admission request once the caller is known.
    pub fn request(&self, caller: &Caller) -> AdmissionRequest {
        AdmissionRequest {
            caller: caller.clone(),
            policy: self.tiers.policy(caller.tier),
            domain: self.domain.clone(),
            force_fresh: self.force_fresh,
            now: self.now,
        }
    }
}

/// The three cold-call windows of a key and its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UsageSnapshot {
    pub month: WindowUsage,
    pub key_hour: WindowUsage,
    pub account_day: WindowUsage,
    /// Cost of this month's cold calls, from the cost log, in millionths of a dollar.
    pub month_cost_micros: i64,
}

/// A stored record's JSON exactly as the API serves it (`cached: true`),
/// encoded once when the record was stored: a cached hit sends this text
/// without parsing and re-encoding the record. Cloning shares the text, and
/// its gzip form once any clone has made it.
#[derive(Debug, Clone)]
pub struct ServedRecord {
    text: Bytes,
    gzip: Arc<OnceLock<Bytes>>,
}

impl PartialEq for ServedRecord {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for ServedRecord {}

impl ServedRecord {
    /// The record as JSON text (UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        &self.text
    }

    /// The JSON text, shared rather than copied (a response body takes it as is).
    pub fn into_bytes(self) -> Bytes {
        self.text
    }

    /// The JSON text gzipped (RFC 1952), for clients that accept it: made by
    /// the first hit that asks and shared by every clone after it, so a record
    /// is compressed once per process however often it is served. A record is
    /// ~16 KB of JSON and ~5 KB gzipped; sending the smaller body is most of
    /// what a cached hit costs (docs/performance-limits.md).
    pub fn gzip(&self) -> Bytes {
        self.gzip.get_or_init(|| served::gzip(&self.text)).clone()
    }

    /// The record itself.
    pub fn parse(&self) -> Result<ScoreRecord> {
        Ok(serde_json::from_slice(&self.text)?)
    }

    /// Text a store read back from its `served` column.
    pub(crate) fn from_stored(text: String) -> Self {
        Self {
            text: Bytes::from(text),
            gzip: Arc::default(),
        }
    }

    /// The text a record is stored with in the `served` column.
    pub(crate) fn encode(record: &ScoreRecord) -> Result<String> {
        let served = ScoreRecord {
            cached: true,
            ..record.clone()
        };
        Ok(serde_json::to_string(&served)?)
    }
}

/// What `admit` decided, with what the response needs.
#[derive(Debug, Clone)]
pub struct AdmissionOutcome {
    pub decision: Decision,
    /// On `ServeFresh`: the record (with `cached: true`).
    pub record: Option<ServedRecord>,
    /// On `Admit` and `ExistingJob`: the job.
    pub job: Option<Job>,
    /// The windows after the decision (an admission already counted).
    pub usage: UsageSnapshot,
}

/// An engine run claimed by a worker: one per domain in flight, shared by every job that asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRun {
    pub run_id: Uuid,
    pub domain: String,
    /// How many times this run has been claimed (1 on the first claim).
    pub attempt: u32,
    /// When it was first claimed: `job_timeout` counts from here, across retries.
    pub first_started_at: DateTime<Utc>,
    pub force_fresh: bool,
    /// Taken from a worker whose lease had expired (it died or lost the store),
    /// not from the pending queue: operators count these.
    pub reclaimed: bool,
}

/// How a claimed run ended, for [`Store::settle_run`].
#[derive(Debug, Clone, Copy)]
pub enum RunEnding<'a> {
    /// Scored: the record is stored and every job completes with it.
    Complete(&'a ScoreRecord),
    /// Every job fails with this reason.
    Failed(FailureReason),
}

/// What [`Store::settle_run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The worker still held the run, so it is settled; `false` when the lease was lost.
    pub held: bool,
    /// The worker's next run, when it asked for one and one was claimable.
    pub next: Option<ClaimedRun>,
}

/// A saved idempotent answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// What reserving an `Idempotency-Key` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is now held for this request (until the reservation's time to
    /// live runs out): process it, then save its answer or release the key.
    Reserved { holder: Uuid },
    /// An answer younger than 24 h is saved for the key.
    Saved(IdempotentResponse),
    /// Another request holds the key right now; its fingerprint tells a retry
    /// (same hash: wait for its answer) from a reuse (another hash).
    InProgress { request_hash: String },
}

/// Queue depth figures for `/metrics`: only work in flight, so a scrape costs
/// the same however much history the store keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub jobs_pending: u64,
    pub jobs_running: u64,
    pub oldest_pending_age: Option<Duration>,
}

/// Everything Kepler persists.
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Creates or upgrades the schema (safe to call on every start).
    async fn migrate(&self) -> Result<()>;
    /// A cheap round trip, for `/readyz`.
    async fn ping(&self) -> Result<()>;
    /// Closes the connections (graceful shutdown); later calls answer `Unavailable`.
    async fn close(&self) {}

    async fn create_account(&self, name: &str, tier: Tier) -> Result<Account>;
    async fn set_tier(&self, account_id: Uuid, tier: Tier) -> Result<Account>;
    async fn get_account(&self, account_id: Uuid) -> Result<Option<Account>>;
    /// Creates a key; the secret is returned once and stored only as a hash.
    async fn create_key(&self, account_id: Uuid, sandbox: bool) -> Result<NewKey>;
    /// Revokes a key: it authenticates no more.
    async fn revoke_key(&self, key_id: Uuid) -> Result<()>;
    /// Looks a presented key up by its hash; `None` for unknown or revoked keys.
    async fn authenticate(&self, presented_key: &str) -> Result<Option<Caller>>;

    /// The newest stored record for a domain, `cached: true`.
    async fn latest_record(&self, domain: &Domain) -> Result<Option<ScoreRecord>>;
    /// Stores a record outside a run (sandbox fixtures, imports, tests).
    async fn put_record(&self, record: &ScoreRecord) -> Result<()>;

    /// Steps 3–9 of API.md §5 in one transaction: gathers the facts, calls
    /// `kepler_core::admission::decide`, and on `Admit` counts the call, writes the
    /// cost-log row, creates the job and attaches it to the domain's run (creating
    /// the run when none is pending or running).
    async fn admit(&self, request: &AdmissionRequest) -> Result<AdmissionOutcome>;
    /// [`Store::authenticate`] then, for a live key, [`Store::admit`]: what a
    /// `POST /v1/score` does, in as few round trips as the backend allows (a
    /// cached hit is one statement where it can be). `None` for an unknown or
    /// revoked key; a sandbox key is returned without an outcome (it admits nothing).
    async fn authenticate_and_admit(
        &self,
        presented_key: &str,
        ask: &Ask<'_>,
    ) -> Result<Option<(Caller, Option<AdmissionOutcome>)>> {
        let Some(caller) = self.authenticate(presented_key).await? else {
            return Ok(None);
        };
        if caller.sandbox {
            return Ok(Some((caller, None)));
        }
        let outcome = self.admit(&ask.request(&caller)).await?;
        Ok(Some((caller, Some(outcome))))
    }
    /// The three windows and this month's cost for a key and its account.
    async fn usage(
        &self,
        caller: &Caller,
        policy: &TierPolicy,
        now: DateTime<Utc>,
    ) -> Result<UsageSnapshot>;
    /// A job of this account; another account's job is `None`, like an unknown one.
    async fn get_job(&self, account_id: Uuid, job_id: Uuid) -> Result<Option<Job>>;

    /// Claims up to `limit` of the oldest pending runs (or ones whose lease
    /// expired), oldest first, marking their jobs running, in one commit: a
    /// worker with several free slots fills them for the price of one claim.
    async fn claim_runs(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedRun>>;
    /// Claims the oldest claimable run, as [`Store::claim_runs`] with a limit of one.
    async fn claim_run(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimedRun>> {
        Ok(self
            .claim_runs(worker_id, lease, now, 1)
            .await?
            .into_iter()
            .next())
    }
    /// Extends a lease; `false` when the lease was lost (expired and taken by another worker).
    async fn heartbeat(
        &self,
        run_id: Uuid,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Stores the record and completes every job of the run; `false` when the lease was lost.
    async fn complete_run(
        &self,
        run_id: Uuid,
        worker_id: &str,
        record: &ScoreRecord,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Fails every job of the run with `reason`; `false` when the lease was lost.
    async fn fail_run(
        &self,
        run_id: Uuid,
        worker_id: &str,
        reason: FailureReason,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Settles a held run as [`Store::complete_run`] or [`Store::fail_run`] do
    /// and, given `claim_next` (the next lease), claims the worker's next run
    /// after it: a busy worker slot's step from one job to the next. PostgreSQL
    /// does both in one round trip and one commit. The default settles, then
    /// claims; a claim that fails there leaves `next` empty (the worker's pool
    /// claims again) rather than hiding that the settle succeeded.
    async fn settle_run(
        &self,
        run_id: Uuid,
        worker_id: &str,
        ending: RunEnding<'_>,
        now: DateTime<Utc>,
        claim_next: Option<Duration>,
    ) -> Result<Settled> {
        let held = match ending {
            RunEnding::Complete(record) => {
                self.complete_run(run_id, worker_id, record, now).await?
            }
            RunEnding::Failed(reason) => self.fail_run(run_id, worker_id, reason, now).await?,
        };
        let next = match claim_next {
            Some(lease) => self
                .claim_run(worker_id, lease, now)
                .await
                .unwrap_or_else(|error| {
                    tracing::debug!(%error, "could not claim the next run; the pool will retry");
                    None
                }),
            None => None,
        };
        Ok(Settled { held, next })
    }
    /// Hands a claimed run back to the queue at once (graceful shutdown).
    async fn release_run(&self, run_id: Uuid, worker_id: &str) -> Result<()>;
    /// Queue figures for `/metrics`.
    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats>;
    /// Waits until a run may have become claimable (admitted or handed back,
    /// by any process), or `timeout` passes; idle workers call it between claims.
    /// A wake-up is a hint, never a promise: the default simply sleeps (polling).
    async fn wait_for_work(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }

    /// Reserves `(account, Idempotency-Key)` for a request with this fingerprint
    /// in one atomic step, so concurrent requests on any node see each other: the
    /// first gets `Reserved`, the others `InProgress` or, once it is answered,
    /// `Saved`. A reservation older than `ttl` (its node died) is taken over.
    async fn reserve_idempotency_key(
        &self,
        account_id: Uuid,
        key: &str,
        request_hash: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<IdempotencyClaim>;
    /// Drops a reservation that produced no answer worth replaying (an error):
    /// the next request with the key is processed afresh. Only its holder can.
    async fn release_idempotency_key(
        &self,
        account_id: Uuid,
        key: &str,
        holder: Uuid,
    ) -> Result<()>;
    /// A saved answer for `(account, Idempotency-Key)` younger than 24 h.
    async fn idempotent_response(
        &self,
        account_id: Uuid,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotentResponse>>;
    /// Saves an answer; the first save for a key wins. It ends a reservation of
    /// the same request (whoever holds it), never one of another request.
    async fn save_idempotent_response(
        &self,
        account_id: Uuid,
        key: &str,
        response: &IdempotentResponse,
        now: DateTime<Utc>,
    ) -> Result<()>;
}

/// Opens the store a URL names: `sqlite://PATH` or `postgres://…` (`postgresql://…`).
pub async fn open(settings: &DatabaseSettings) -> Result<Arc<dyn Store>> {
    let url = settings.url.as_str();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(settings).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PostgresStore::open(settings).await?))
    } else {
        Err(StoreError::Config(format!(
            "unsupported database URL {url:?}: expected sqlite://PATH or postgres://..."
        )))
    }
}
