//! What the API sends back (API.md §5–§9), as typed values.
//!
//! Score records are `kepler_core`'s own types, so the client and the server can
//! never disagree on their shape. Codes that may grow (failure reasons, tiers)
//! are kept as strings, so a newer server never breaks an older client.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kepler_core::{JobStatus, ScoreRecord};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The `202 Accepted` answer to `POST /v1/score`: a cold run was queued (or this
/// account already had one in flight for the domain).
///
/// ```no_run
/// # async fn demo(client: kepler_client::Client) -> Result<(), kepler_client::Error> {
/// use kepler_client::{ScoreOptions, Submitted};
///
/// if let Submitted::Queued(job) = client.submit("example.com", ScoreOptions::default()).await? {
///     println!("job {} for {} is {:?}", job.job_id, job.domain, job.status);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAccepted {
    /// The job to poll with [`Client::job`](crate::Client::job).
    pub job_id: Uuid,
    /// `pending` or `running` (an existing job may already be running).
    pub status: JobStatus,
    /// The domain as the API normalised it (lower-case, A-label).
    pub domain: String,
    /// The job's path on the API, e.g. `/v1/jobs/9f0c…`.
    pub poll_url: String,
}

/// Where a completed job's record is (`GET /v1/score/{domain}`).
///
/// ```no_run
/// # async fn demo(client: kepler_client::Client, id: uuid::Uuid) -> Result<(), kepler_client::Error> {
/// if let Some(done) = client.job(id).await?.result_ref {
///     println!("{} was scored at {}", done.domain, done.scored_at);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRef {
    /// The scored domain.
    pub domain: String,
    /// When the run's record was scored.
    pub scored_at: DateTime<Utc>,
}

/// A job as `GET /v1/jobs/{job_id}` shows it (API.md §6).
///
/// ```no_run
/// # async fn demo(client: kepler_client::Client, id: uuid::Uuid) -> Result<(), kepler_client::Error> {
/// let job = client.job(id).await?;
/// if job.status.is_settled() {
///     println!("{} settled at {:?}", job.domain, job.finished_at);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The job's id.
    pub job_id: Uuid,
    /// `pending` → `running` → `complete` | `failed`.
    pub status: JobStatus,
    /// The domain being scored.
    pub domain: String,
    /// When the job was admitted.
    pub created_at: DateTime<Utc>,
    /// When a worker first picked its run up.
    pub started_at: Option<DateTime<Utc>>,
    /// When the job settled.
    pub finished_at: Option<DateTime<Utc>>,
    /// On `complete`: where the record is.
    pub result_ref: Option<ResultRef>,
    /// On `failed`: a stable code such as `timeout`, `domain_not_resolvable`,
    /// `private_address_refused` or `engine_error`.
    pub failure_reason: Option<String>,
}

/// The newest stored record of a domain (`GET /v1/score/{domain}`, API.md §7).
///
/// ```no_run
/// # async fn demo(client: kepler_client::Client) -> Result<(), kepler_client::Error> {
/// let stored = client.record("example.com").await?;
/// println!("{} ({}), fresh for my tier: {}", stored.record.grade, stored.record.score, stored.fresh_for_tier);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// The record itself.
    #[serde(flatten)]
    pub record: ScoreRecord,
    /// Whether it is younger than the caller's tier's freshness window.
    pub fresh_for_tier: bool,
}

/// What [`Client::submit`](crate::Client::submit) got back: the record at once, or a queued job.
///
/// ```no_run
/// # async fn demo(client: kepler_client::Client) -> Result<(), kepler_client::Error> {
/// use kepler_client::{ScoreOptions, Submitted};
///
/// let record = match client.submit("example.com", ScoreOptions::default()).await? {
///     Submitted::Record(record) => record,
///     Submitted::Queued(job) => client.wait_for_score(job.job_id).await?,
/// };
/// println!("{}", record.grade);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// `200`: a fresh stored record, or a sandbox record.
    Record(ScoreRecord),
    /// `202`: a cold run to wait for.
    Queued(JobAccepted),
}

/// Options of one score request.
///
/// ```
/// use kepler_client::ScoreOptions;
///
/// // Enterprise only: skip a fresh stored record and run the engine again.
/// let options = ScoreOptions { force_fresh: true, ..ScoreOptions::default() };
/// assert!(options.idempotency_key.is_none()); // one is generated per call
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScoreOptions {
    /// Ignore a fresh stored record (tiers with `force_fresh` only).
    pub force_fresh: bool,
    /// The `Idempotency-Key` to send. When `None` the client generates one per
    /// call, so its own retries of the POST can never be charged twice.
    pub idempotency_key: Option<String>,
}

/// One poll of a cold run, for progress indicators.
///
/// ```
/// use kepler_client::{Client, JobProgress};
///
/// let client = Client::builder("http://127.0.0.1:8080", "ki_test_…")
///     .on_progress(|p: &JobProgress| eprint!("\r{} {:?} {}s", p.domain, p.status, p.elapsed.as_secs()))
///     .build()?;
/// # Ok::<(), kepler_client::BuildError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobProgress {
    /// The job being waited for.
    pub job_id: Uuid,
    /// Its domain.
    pub domain: String,
    /// Its status at the last look.
    pub status: JobStatus,
    /// Time since the wait began (since the POST, for [`Client::score`](crate::Client::score)).
    pub elapsed: Duration,
    /// How many times the job has been fetched so far (0 for the `202` itself).
    pub polls: u32,
}

/// The calling key's account usage (`GET /v1/usage`, API.md §9).
///
/// ```no_run
/// # async fn demo(client: kepler_client::Client) -> Result<(), kepler_client::Error> {
/// let usage = client.usage().await?;
/// println!("{} of {} cold calls left this month", usage.month.remaining, usage.month.cap);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// The account.
    pub account_id: Uuid,
    /// Its tier: `free`, `starter`, `growth`, `scale` or `enterprise`.
    pub tier: String,
    /// The calendar month's cold calls, cap and cost.
    pub month: MonthUsage,
    /// This key's cold calls in the rolling hour.
    pub key_hour: WindowUsage,
    /// The account's cold calls in the rolling 24 hours (the breaker).
    pub account_day: WindowUsage,
}

/// Cold calls of the calendar month.
///
/// ```no_run
/// # async fn demo(client: kepler_client::Client) -> Result<(), kepler_client::Error> {
/// let month = client.usage().await?.month;
/// println!("${:.2} spent; the cap resets at {}", month.cost_usd, month.resets_at);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthUsage {
    /// Cold calls so far this month.
    pub cold_calls: u64,
    /// The monthly cap.
    pub cap: u64,
    /// What is left of the cap.
    pub remaining: u64,
    /// Cost of this month's cold calls, from the cost log.
    pub cost_usd: f64,
    /// 00:00 UTC on the 1st of next month.
    pub resets_at: DateTime<Utc>,
}

/// Cold calls in a rolling window.
///
/// ```no_run
/// # async fn demo(client: kepler_client::Client) -> Result<(), kepler_client::Error> {
/// let hour = client.usage().await?.key_hour;
/// println!("{} of {} this hour; next frees at {}", hour.cold_calls, hour.limit, hour.resets_at);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowUsage {
    /// Cold calls in the window.
    pub cold_calls: u64,
    /// The window's limit.
    pub limit: u64,
    /// When the oldest call in the window leaves it.
    pub resets_at: DateTime<Utc>,
}
