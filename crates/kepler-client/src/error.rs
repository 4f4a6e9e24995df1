//! Typed errors: one variant per stable error code of API.md, the client's own
//! outcomes (a failed run, a wait that gave up), and transport failures.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

/// An error answer of the API: an RFC 9457 problem document with Kepler's stable
/// `error` code. The whole body is kept, so no field the server sent is lost.
///
/// ```no_run
/// # async fn demo(client: kepler_client::Client) {
/// if let Err(error) = client.score("example.com").await {
///     if let Some(problem) = error.problem() {
///         eprintln!("{} {:?}: {} (request {:?})", problem.status, problem.code, problem.detail, problem.request_id);
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable `error` code, when the body had one.
    pub code: Option<String>,
    /// The human explanation (`detail`, else `message`, else the raw body).
    pub detail: String,
    /// The `Request-Id` header, to quote to support.
    pub request_id: Option<String>,
    /// The body as sent (JSON `null` when it was not JSON).
    pub body: Value,
}

impl Problem {
    /// A string field of the body, e.g. `problem.field_str("tier")`.
    ///
    /// ```
    /// use kepler_client::Problem;
    /// use kepler_client::StatusCode;
    ///
    /// let problem = Problem {
    ///     status: StatusCode::FORBIDDEN,
    ///     code: Some("free_tier_sandbox_only".into()),
    ///     detail: "upgrade for cold runs".into(),
    ///     request_id: None,
    ///     body: serde_json::json!({"error": "free_tier_sandbox_only", "tier": "free"}),
    /// };
    /// assert_eq!(problem.field_str("tier"), Some("free"));
    /// ```
    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = self.code.as_deref().unwrap_or("unexpected_response");
        write!(f, "{} {code}: {}", self.status.as_u16(), self.detail)
    }
}

/// Everything a call can fail with.
///
/// Match the variants you handle and fall back on [`Error::code`] for the rest;
/// new API codes may be added, so the enum is `non_exhaustive`.
///
/// ```no_run
/// # async fn demo(client: kepler_client::Client) {
/// use kepler_client::Error;
///
/// match client.score("example.com").await {
///     Ok(record) => println!("{} {}", record.grade, record.score),
///     Err(Error::ColdBudgetExhausted { resets_at, .. }) => eprintln!("out of cold calls until {resets_at}"),
///     Err(Error::JobFailed { failure_reason, .. }) => eprintln!("the run failed: {failure_reason}"),
///     Err(other) if other.retry_after().is_some() => eprintln!("try again later: {other}"),
///     Err(other) => eprintln!("{other}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `401 invalid_api_key`: missing, unknown or revoked key.
    #[error("{problem}")]
    InvalidApiKey {
        /// The answer.
        problem: Box<Problem>,
    },
    /// `400 invalid_request`: a malformed body or `Idempotency-Key`.
    #[error("{problem}")]
    InvalidRequest {
        /// The answer.
        problem: Box<Problem>,
    },
    /// `400 invalid_domain`: not a hostname Kepler can score.
    #[error("{problem}")]
    InvalidDomain {
        /// The domain as sent, when the API echoed it.
        domain: Option<String>,
        /// The answer.
        problem: Box<Problem>,
    },
    /// `413 payload_too_large`.
    #[error("{problem}")]
    PayloadTooLarge {
        /// The answer.
        problem: Box<Problem>,
    },
    /// `400 sandbox_domain_unknown`: sandbox keys reach only the canned domains.
    #[error("{problem}")]
    SandboxDomainUnknown {
        /// The domains a sandbox key may ask for.
        sandbox_domains: Vec<String>,
        /// The answer.
        problem: Box<Problem>,
    },
    /// `403 force_fresh_not_allowed`: the tier cannot force a fresh run.
    #[error("{problem}")]
    ForceFreshNotAllowed {
        /// The caller's tier.
        tier: Option<String>,
        /// The answer.
        problem: Box<Problem>,
    },
    /// `403 free_tier_sandbox_only`: the free tier has no cold runs.
    #[error("{problem}")]
    FreeTierSandboxOnly {
        /// The caller's tier (`free`).
        tier: Option<String>,
        /// The answer.
        problem: Box<Problem>,
    },
    /// `429 cold_budget_exhausted`: the monthly cold-call cap is reached.
    #[error("{problem}")]
    ColdBudgetExhausted {
        /// The cap.
        limit: u64,
        /// Cold calls counted against it.
        used: u64,
        /// When it resets (00:00 UTC on the 1st).
        resets_at: DateTime<Utc>,
        /// How long to wait (`Retry-After`).
        retry_after: Duration,
        /// The answer.
        problem: Box<Problem>,
    },
    /// `429 key_hourly_cold_limit`: this key's cold calls in the last hour reached its limit.
    #[error("{problem}")]
    KeyHourlyColdLimit {
        /// The limit.
        limit: u64,
        /// Cold calls in the window.
        used: u64,
        /// When the oldest one leaves the window.
        resets_at: DateTime<Utc>,
        /// How long to wait (`Retry-After`).
        retry_after: Duration,
        /// The answer.
        problem: Box<Problem>,
    },
    /// `429 account_breaker_open`: the account's cold calls in the last 24 h reached its limit.
    #[error("{problem}")]
    AccountBreakerOpen {
        /// The limit.
        limit: u64,
        /// Cold calls in the window.
        used: u64,
        /// When the oldest one leaves the window.
        resets_at: DateTime<Utc>,
        /// How long to wait (`Retry-After`).
        retry_after: Duration,
        /// The answer.
        problem: Box<Problem>,
    },
    /// `422 idempotency_key_reused`: the key was used with a different request.
    #[error("{problem}")]
    IdempotencyKeyReused {
        /// The answer.
        problem: Box<Problem>,
    },
    /// `409 idempotency_key_in_use`: a request with this key is still being
    /// processed (the client retries it under the same key before giving this up).
    #[error("{problem}")]
    IdempotencyKeyInUse {
        /// How long to wait (`Retry-After`).
        retry_after: Option<Duration>,
        /// The answer.
        problem: Box<Problem>,
    },
    /// `404 job_not_found`: no such job for this account.
    #[error("{problem}")]
    JobNotFound {
        /// The answer.
        problem: Box<Problem>,
    },
    /// `404 not_scored`: the domain has no stored record yet.
    #[error("{problem}")]
    NotScored {
        /// The answer.
        problem: Box<Problem>,
    },
    /// `404 not_found`: no such resource (a wrong base URL, usually).
    #[error("{problem}")]
    NotFound {
        /// The answer.
        problem: Box<Problem>,
    },
    /// `405 method_not_allowed`.
    #[error("{problem}")]
    MethodNotAllowed {
        /// The answer.
        problem: Box<Problem>,
    },
    /// `503 store_unavailable`, still so after the retries of the [`RetryPolicy`](crate::RetryPolicy).
    #[error("{problem}")]
    StoreUnavailable {
        /// How long the API asked to wait.
        retry_after: Option<Duration>,
        /// The answer.
        problem: Box<Problem>,
    },
    /// `500 internal_error`.
    #[error("{problem}")]
    InternalError {
        /// The answer.
        problem: Box<Problem>,
    },
    /// An error answer this version does not know: a new code, a known code
    /// without its fields, or a proxy's page. Nothing of it is dropped.
    #[error("{problem}")]
    Api {
        /// How long the API asked to wait, if it said.
        retry_after: Option<Duration>,
        /// The answer.
        problem: Box<Problem>,
    },
    /// The cold run settled as `failed`.
    #[error("the run for {domain} failed: {failure_reason}")]
    JobFailed {
        /// The job.
        job_id: Uuid,
        /// Its domain.
        domain: String,
        /// The stable reason: `timeout`, `domain_not_resolvable`,
        /// `private_address_refused`, `engine_error`, ...
        failure_reason: String,
    },
    /// The job had not settled when the client gave up waiting; it may still
    /// settle: wait again with [`Client::wait_for_score`](crate::Client::wait_for_score).
    #[error("job {job_id} for {domain} had not settled after {}s", waited.as_secs())]
    Timeout {
        /// The job, to wait for later.
        job_id: Uuid,
        /// Its domain.
        domain: String,
        /// How long the client waited.
        waited: Duration,
    },
    /// The API could not be reached or the connection broke (after retries, when transient).
    #[error("cannot reach the Kepler API: {source}")]
    Transport {
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// A success answer the client cannot read.
    #[error("the API answered {status} with a body the client cannot read: {source}")]
    InvalidResponse {
        /// The HTTP status.
        status: StatusCode,
        /// Why the body does not parse.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// The stable API error code (`invalid_api_key`, `cold_budget_exhausted`, ...),
    /// or `job_failed` / `timeout` for the client's own outcomes; `None` for
    /// transport errors and unreadable answers.
    ///
    /// ```
    /// use kepler_client::Error;
    ///
    /// let error = Error::JobFailed {
    ///     job_id: uuid::Uuid::nil(),
    ///     domain: "example.com".into(),
    ///     failure_reason: "domain_not_resolvable".into(),
    /// };
    /// assert_eq!(error.code(), Some("job_failed"));
    /// ```
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::JobFailed { .. } => Some("job_failed"),
            Error::Timeout { .. } => Some("timeout"),
            _ => self.problem().and_then(|p| p.code.as_deref()),
        }
    }

    /// The API's answer, for every error the API sent.
    ///
    /// ```no_run
    /// # async fn demo(client: kepler_client::Client) {
    /// if let Err(error) = client.usage().await
    ///     && let Some(problem) = error.problem()
    /// {
    ///     eprintln!("request id for support: {:?}", problem.request_id);
    /// }
    /// # }
    /// ```
    pub fn problem(&self) -> Option<&Problem> {
        use Error::*;
        match self {
            InvalidApiKey { problem }
            | InvalidRequest { problem }
            | InvalidDomain { problem, .. }
            | PayloadTooLarge { problem }
            | SandboxDomainUnknown { problem, .. }
            | ForceFreshNotAllowed { problem, .. }
            | FreeTierSandboxOnly { problem, .. }
            | ColdBudgetExhausted { problem, .. }
            | KeyHourlyColdLimit { problem, .. }
            | AccountBreakerOpen { problem, .. }
            | IdempotencyKeyReused { problem }
            | IdempotencyKeyInUse { problem, .. }
            | JobNotFound { problem }
            | NotScored { problem }
            | NotFound { problem }
            | MethodNotAllowed { problem }
            | StoreUnavailable { problem, .. }
            | InternalError { problem }
            | Api { problem, .. } => Some(problem),
            JobFailed { .. } | Timeout { .. } | Transport { .. } | InvalidResponse { .. } => None,
        }
    }

    /// How long the API asked to wait before trying again, when it said
    /// (the three cold-call limits, `store_unavailable`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use kepler_client::Error;
    ///
    /// let error = Error::Timeout { job_id: uuid::Uuid::nil(), domain: "example.com".into(), waited: Duration::from_secs(180) };
    /// assert_eq!(error.retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::ColdBudgetExhausted { retry_after, .. }
            | Error::KeyHourlyColdLimit { retry_after, .. }
            | Error::AccountBreakerOpen { retry_after, .. } => Some(*retry_after),
            Error::StoreUnavailable { retry_after, .. }
            | Error::IdempotencyKeyInUse { retry_after, .. }
            | Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether this is one of the three cold-call limits (HTTP 429).
    ///
    /// ```no_run
    /// # async fn demo(client: kepler_client::Client) {
    /// match client.score("example.com").await {
    ///     Err(limit) if limit.is_limit() => eprintln!("{limit}; retry in {:?}", limit.retry_after()),
    ///     other => println!("{other:?}"),
    /// }
    /// # }
    /// ```
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Error::ColdBudgetExhausted { .. }
                | Error::KeyHourlyColdLimit { .. }
                | Error::AccountBreakerOpen { .. }
        )
    }

    /// Builds the typed error from an error answer.
    pub(crate) fn from_answer(problem: Problem, retry_after: Option<Duration>) -> Error {
        let problem = Box::new(problem);
        let text = |name: &str| problem.field_str(name).map(str::to_owned);
        let Some(code) = problem.code.clone() else {
            return Error::Api {
                retry_after,
                problem,
            };
        };
        match code.as_str() {
            "invalid_api_key" => Error::InvalidApiKey { problem },
            "invalid_request" => Error::InvalidRequest { problem },
            "invalid_domain" => Error::InvalidDomain {
                domain: text("domain"),
                problem,
            },
            "payload_too_large" => Error::PayloadTooLarge { problem },
            "sandbox_domain_unknown" => Error::SandboxDomainUnknown {
                sandbox_domains: string_list(&problem.body["sandbox_domains"]),
                problem,
            },
            "force_fresh_not_allowed" => Error::ForceFreshNotAllowed {
                tier: text("tier"),
                problem,
            },
            "free_tier_sandbox_only" => Error::FreeTierSandboxOnly {
                tier: text("tier"),
                problem,
            },
            "cold_budget_exhausted" | "key_hourly_cold_limit" | "account_breaker_open" => {
                limit_error(&code, problem, retry_after)
            }
            "idempotency_key_reused" => Error::IdempotencyKeyReused { problem },
            "idempotency_key_in_use" => Error::IdempotencyKeyInUse {
                retry_after,
                problem,
            },
            "job_not_found" => Error::JobNotFound { problem },
            "not_scored" => Error::NotScored { problem },
            "not_found" => Error::NotFound { problem },
            "method_not_allowed" => Error::MethodNotAllowed { problem },
            "store_unavailable" => Error::StoreUnavailable {
                retry_after,
                problem,
            },
            "internal_error" => Error::InternalError { problem },
            _ => Error::Api {
                retry_after,
                problem,
            },
        }
    }
}

fn string_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A 429 with its numbers; a body without them is kept whole as [`Error::Api`]
/// rather than made up.
fn limit_error(code: &str, problem: Box<Problem>, retry_after: Option<Duration>) -> Error {
    let body = &problem.body;
    let numbers = (
        body["limit"].as_u64(),
        body["used"].as_u64(),
        body["resets_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
    );
    let (Some(limit), Some(used), Some(resets_at)) = numbers else {
        return Error::Api {
            retry_after,
            problem,
        };
    };
    // Retry-After is always sent; should a proxy strip it, the reset time says the same.
    let retry_after =
        retry_after.unwrap_or_else(|| (resets_at - Utc::now()).to_std().unwrap_or(Duration::ZERO));
    match code {
        "cold_budget_exhausted" => Error::ColdBudgetExhausted {
            limit,
            used,
            resets_at,
            retry_after,
            problem,
        },
        "key_hourly_cold_limit" => Error::KeyHourlyColdLimit {
            limit,
            used,
            resets_at,
            retry_after,
            problem,
        },
        _ => Error::AccountBreakerOpen {
            limit,
            used,
            resets_at,
            retry_after,
            problem,
        },
    }
}

/// Why a [`Client`](crate::Client) could not be built.
///
/// ```
/// use kepler_client::{BuildError, Client};
///
/// let error = Client::new("ftp://example.com", "ki_live_x").unwrap_err();
/// assert!(matches!(error, BuildError::UnsupportedScheme { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The base URL does not parse.
    #[error("invalid base URL {url:?}: {source}")]
    InvalidBaseUrl {
        /// The URL as given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// The base URL is not `http://` or `https://`.
    #[error("the base URL must be http:// or https://, not {url:?}")]
    UnsupportedScheme {
        /// The URL as given.
        url: String,
    },
    /// The API key cannot be sent in a header (empty, or control characters).
    #[error("the API key is empty or not a valid header value")]
    InvalidApiKey,
    /// The user agent cannot be sent in a header.
    #[error("the user agent is not a valid header value")]
    InvalidUserAgent,
    /// An extra CA certificate is not PEM.
    #[error("the extra CA certificate cannot be read: {source}")]
    InvalidCertificate {
        /// Why the PEM does not parse.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The extra CA PEM holds no certificate.
    #[error("the extra CA PEM holds no certificate")]
    NoCertificate,
    /// A certificate is not one rustls accepts as a trust root.
    #[error("the extra CA certificate is not a usable trust root: {source}")]
    Tls {
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {source}")]
    Http {
        /// reqwest's reason.
        #[source]
        source: reqwest::Error,
    },
}
