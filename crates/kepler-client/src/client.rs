//! [`Client`]: the API's calls, and the 202-and-poll dance behind [`Client::score`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kepler_core::{JobStatus, ScoreRecord};
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode, Url};
use serde_json::json;
use uuid::Uuid;

use crate::builder::ClientBuilder;
use crate::error::{BuildError, Error};
use crate::http::Call;
use crate::retry::RetryPolicy;
use crate::types::{Job, JobAccepted, JobProgress, ScoreOptions, StoredRecord, Submitted, Usage};

pub(crate) type ProgressFn = Arc<dyn Fn(&JobProgress) + Send + Sync>;

pub(crate) struct Inner {
    pub http: reqwest::Client,
    pub base: Url,
    pub api_key: HeaderValue,
    pub poll_interval: Duration,
    pub give_up_after: Duration,
    pub retry: RetryPolicy,
    pub on_progress: Option<ProgressFn>,
}

/// A Kepler API client. Cheap to clone: clones share one connection pool.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = kepler_client::Client::new("https://kepler.example", "ki_live_…")?;
/// let record = client.score("example.com").await?;
/// println!("{}: {} ({})", record.domain, record.grade, record.score);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("poll_interval", &self.inner.poll_interval)
            .field("give_up_after", &self.inner.give_up_after)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with every default: 30 s per request, polls every 5 s (or as
    /// `Retry-After` says), gives up on a cold run after 180 s, retries
    /// transient failures three times.
    ///
    /// ```
    /// let client = kepler_client::Client::new("http://127.0.0.1:8080", "ki_test_…")?;
    /// # Ok::<(), kepler_client::BuildError>(())
    /// ```
    pub fn new(base_url: &str, api_key: &str) -> Result<Client, BuildError> {
        Client::builder(base_url, api_key).build()
    }

    /// A [`ClientBuilder`] to change the defaults.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let client = kepler_client::Client::builder("http://127.0.0.1:8080", "ki_test_…")
    ///     .give_up_after(Duration::from_secs(60))
    ///     .build()?;
    /// # Ok::<(), kepler_client::BuildError>(())
    /// ```
    pub fn builder(base_url: &str, api_key: &str) -> ClientBuilder {
        ClientBuilder::new(base_url, api_key)
    }

    pub(crate) fn from_inner(inner: Inner) -> Client {
        Client {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Scores a domain: the stored record when it is fresh for your tier (or a
    /// sandbox record), otherwise a cold run waited for and its record fetched.
    ///
    /// A record produced by the run this call waited for has `cached: false`.
    ///
    /// ```no_run
    /// # async fn demo(client: kepler_client::Client) -> Result<(), kepler_client::Error> {
    /// let record = client.score("example.com").await?;
    /// for category in &record.categories {
    ///     println!("{:?}: {:?}", category.id, category.score);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn score(&self, domain: &str) -> Result<ScoreRecord, Error> {
        self.score_with(domain, ScoreOptions::default()).await
    }

    /// [`score`](Client::score) with options: `force_fresh`, or your own
    /// `Idempotency-Key` (one is generated otherwise).
    ///
    /// ```no_run
    /// # async fn demo(client: kepler_client::Client) -> Result<(), kepler_client::Error> {
    /// use kepler_client::ScoreOptions;
    ///
    /// let options = ScoreOptions { idempotency_key: Some("order-4711".into()), ..ScoreOptions::default() };
    /// let record = client.score_with("example.com", options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn score_with(
        &self,
        domain: &str,
        options: ScoreOptions,
    ) -> Result<ScoreRecord, Error> {
        let started = Instant::now();
        let (submitted, retry_after) = self.post_score(domain, &options).await?;
        match submitted {
            Submitted::Record(record) => Ok(record),
            Submitted::Queued(job) => {
                self.report(job.job_id, &job.domain, job.status, started, 0);
                let pause = retry_after.unwrap_or(self.inner.poll_interval);
                let settled = self.wait(job.job_id, started, Some(pause)).await?;
                self.fetch_result(&settled).await
            }
        }
    }

    /// `POST /v1/score` alone: the record if the API answers at once, else the
    /// queued job, without waiting for it.
    ///
    /// ```no_run
    /// # async fn demo(client: kepler_client::Client) -> Result<(), kepler_client::Error> {
    /// use kepler_client::{ScoreOptions, Submitted};
    ///
    /// let mut queued = Vec::new();
    /// for domain in ["example.com", "example.org"] {
    ///     if let Submitted::Queued(job) = client.submit(domain, ScoreOptions::default()).await? {
    ///         queued.push(job.job_id);
    ///     }
    /// }
    /// for job_id in queued {
    ///     println!("{}", client.wait_for_score(job_id).await?.grade);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn submit(&self, domain: &str, options: ScoreOptions) -> Result<Submitted, Error> {
        Ok(self.post_score(domain, &options).await?.0)
    }

    async fn post_score(
        &self,
        domain: &str,
        options: &ScoreOptions,
    ) -> Result<(Submitted, Option<Duration>), Error> {
        // One key for every retry of this call, so none can be charged twice.
        let key = options
            .idempotency_key
            .clone()
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        let body = json!({"domain": domain, "force_fresh": options.force_fresh});
        let answer = self
            .send(Call {
                method: Method::POST,
                url: self.endpoint(&["v1", "score"]),
                json: Some(&body),
                idempotency_key: Some(&key),
            })
            .await?
            .success()?;
        if answer.status == StatusCode::ACCEPTED {
            let job: JobAccepted = answer.decode()?;
            Ok((Submitted::Queued(job), answer.retry_after()))
        } else {
            Ok((Submitted::Record(answer.decode()?), None))
        }
    }

    /// `GET /v1/jobs/{job_id}`: a job's state now.
    ///
    /// ```no_run
    /// # async fn demo(client: kepler_client::Client, job_id: uuid::Uuid) -> Result<(), kepler_client::Error> {
    /// let job = client.job(job_id).await?;
    /// println!("{:?} {:?}", job.status, job.failure_reason);
    /// # Ok(()) }
    /// ```
    pub async fn job(&self, job_id: Uuid) -> Result<Job, Error> {
        Ok(self.fetch_job(job_id).await?.0)
    }

    async fn fetch_job(&self, job_id: Uuid) -> Result<(Job, Option<Duration>), Error> {
        let id = job_id.to_string();
        let answer = self
            .send(Call {
                method: Method::GET,
                url: self.endpoint(&["v1", "jobs", &id]),
                json: None,
                idempotency_key: None,
            })
            .await?
            .success()?;
        Ok((answer.decode()?, answer.retry_after()))
    }

    /// Waits for a job to settle (polling as [`score`](Client::score) does) and
    /// returns its record; [`Error::JobFailed`] if the run failed,
    /// [`Error::Timeout`] if it had not settled in time.
    ///
    /// ```no_run
    /// # async fn demo(client: kepler_client::Client, job_id: uuid::Uuid) -> Result<(), kepler_client::Error> {
    /// use kepler_client::Error;
    ///
    /// match client.wait_for_score(job_id).await {
    ///     Ok(record) => println!("{}", record.grade),
    ///     Err(Error::Timeout { job_id, .. }) => println!("still running; ask again about {job_id}"),
    ///     Err(other) => return Err(other),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn wait_for_score(&self, job_id: Uuid) -> Result<ScoreRecord, Error> {
        let settled = self.wait(job_id, Instant::now(), None).await?;
        self.fetch_result(&settled).await
    }

    /// `GET /v1/score/{domain}`: the newest stored record, whatever its age,
    /// without starting a run; [`Error::NotScored`] if there is none.
    ///
    /// ```no_run
    /// # async fn demo(client: kepler_client::Client) -> Result<(), kepler_client::Error> {
    /// use kepler_client::Error;
    ///
    /// match client.record("example.com").await {
    ///     Ok(stored) if stored.fresh_for_tier => println!("{}", stored.record.grade),
    ///     Ok(stale) => println!("{} (from {})", stale.record.grade, stale.record.scored_at),
    ///     Err(Error::NotScored { .. }) => println!("never scored"),
    ///     Err(other) => return Err(other),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn record(&self, domain: &str) -> Result<StoredRecord, Error> {
        self.send(Call {
            method: Method::GET,
            url: self.endpoint(&["v1", "score", domain]),
            json: None,
            idempotency_key: None,
        })
        .await?
        .success()?
        .decode()
    }

    /// `GET /v1/usage`: the account's cold calls, limits and cost.
    ///
    /// ```no_run
    /// # async fn demo(client: kepler_client::Client) -> Result<(), kepler_client::Error> {
    /// let usage = client.usage().await?;
    /// println!("{}: {} cold calls this month", usage.tier, usage.month.cold_calls);
    /// # Ok(()) }
    /// ```
    pub async fn usage(&self) -> Result<Usage, Error> {
        self.send(Call {
            method: Method::GET,
            url: self.endpoint(&["v1", "usage"]),
            json: None,
            idempotency_key: None,
        })
        .await?
        .success()?
        .decode()
    }

    /// Polls until the job settles: `Ok` when complete. `pause` is the wait
    /// before the first look (`None`: look at once).
    async fn wait(
        &self,
        job_id: Uuid,
        started: Instant,
        mut pause: Option<Duration>,
    ) -> Result<Job, Error> {
        let deadline = started + self.inner.give_up_after;
        let mut polls = 0;
        loop {
            if let Some(pause) = pause {
                // Never sleep past the deadline: look one last time, then give up.
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(pause.min(left)).await;
            }
            let (job, retry_after) = self.fetch_job(job_id).await?;
            polls += 1;
            self.report(job.job_id, &job.domain, job.status, started, polls);
            match job.status {
                JobStatus::Complete => return Ok(job),
                JobStatus::Failed => {
                    return Err(Error::JobFailed {
                        job_id: job.job_id,
                        domain: job.domain,
                        failure_reason: job.failure_reason.unwrap_or_else(|| "unknown".to_owned()),
                    });
                }
                JobStatus::Pending | JobStatus::Running => {}
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    job_id: job.job_id,
                    domain: job.domain,
                    waited: started.elapsed(),
                });
            }
            pause = Some(retry_after.unwrap_or(self.inner.poll_interval));
        }
    }

    /// The record a completed job produced.
    async fn fetch_result(&self, job: &Job) -> Result<ScoreRecord, Error> {
        let domain = job
            .result_ref
            .as_ref()
            .map_or(job.domain.as_str(), |r| r.domain.as_str());
        let mut record = self.record(domain).await?.record;
        // The store marks every record it serves `cached`; this one is the product
        // of the run the caller asked for, unless a newer run has replaced it.
        if job
            .result_ref
            .as_ref()
            .is_some_and(|r| r.scored_at == record.scored_at)
        {
            record.cached = false;
        }
        Ok(record)
    }

    fn report(&self, job_id: Uuid, domain: &str, status: JobStatus, started: Instant, polls: u32) {
        if let Some(callback) = &self.inner.on_progress {
            callback(&JobProgress {
                job_id,
                domain: domain.to_owned(),
                status,
                elapsed: started.elapsed(),
                polls,
            });
        }
    }
}
