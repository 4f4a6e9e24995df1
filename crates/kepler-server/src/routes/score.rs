//! `POST /v1/score` (API.md §5) and `GET /v1/score/{domain}` (§7).

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use kepler_core::admission::{Decision, LimitKind, WindowUsage, is_fresh};
use kepler_core::{Domain, ScoreRecord};
use kepler_store::{
    AdmissionOutcome, AdmissionRequest, Ask, Caller, Job, ServedRecord, UsageSnapshot,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Authenticated;
use crate::encoding::{self, StoredRecordBody};
use crate::error::{ApiError, ErrorCode};
use crate::{auth, idempotency, ratelimit, sandbox};

/// The body of `POST /v1/score`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ScoreRequest {
    /// A hostname such as `stripe.com` (normalised: trimmed, lower-cased, IDN to A-label).
    pub domain: Option<Value>,
    /// Bypass a fresh stored record (Enterprise only).
    #[serde(default)]
    pub force_fresh: Option<Value>,
    /// Accepted for compatibility and ignored: cold runs are always asynchronous.
    #[allow(dead_code)]
    #[serde(default)]
    pub wait: Option<Value>,
}

/// The `202 Accepted` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobAccepted {
    pub job_id: String,
    pub status: String,
    pub domain: String,
    pub poll_url: String,
}

/// A stored record with whether it is fresh for the caller's tier.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordWithFreshness {
    #[serde(flatten)]
    pub record: ScoreRecord,
    pub fresh_for_tier: bool,
}

fn parse_request(body: Result<Bytes, BytesRejection>) -> Result<(Domain, bool), ApiError> {
    let body = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(_)
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the request body is over 16 KiB",
            )
        }
        other => ApiError::new(
            ErrorCode::InvalidRequest,
            format!("could not read the request body: {other}"),
        ),
    })?;
    let request: ScoreRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("the body must be a JSON object such as {{\"domain\":\"example.com\"}}: {e}"),
        )
    })?;
    let domain = match request.domain {
        Some(Value::String(text)) => Domain::parse(&text).map_err(|e| {
            ApiError::new(ErrorCode::InvalidDomain, format!("{text:?}: {e}")).field("domain", text)
        })?,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "\"domain\" must be a string",
            ));
        }
        None => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "the body needs a \"domain\" field",
            ));
        }
    };
    let force_fresh = match request.force_fresh {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => flag,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "\"force_fresh\" must be true or false",
            ));
        }
    };
    Ok((domain, force_fresh))
}

pub(crate) fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_string(body) {
        Ok(text) => json_text_response(status, Bytes::from(text)),
        Err(e) => ApiError::new(
            ErrorCode::InternalError,
            format!("could not encode the response: {e}"),
        )
        .into_response(),
    }
}

/// A response whose body is JSON text already encoded (a stored record is sent as stored).
fn json_text_response(status: StatusCode, text: Bytes) -> Response {
    // Shared, not copied, between the body and the copy kept for replay (and,
    // for a stored record, the store's copy of its text).
    let mut response = (
        status,
        [(header::CONTENT_TYPE, APPLICATION_JSON)],
        text.clone(),
    )
        .into_response();
    response.extensions_mut().insert(ReplayBody(text));
    response
}

fn accepted(job: &Job) -> Response {
    let poll_url = format!("/v1/jobs/{}", job.job_id);
    let body = JobAccepted {
        job_id: job.job_id.to_string(),
        status: job.status.as_str().to_owned(),
        domain: job.domain.clone(),
        poll_url: poll_url.clone(),
    };
    let mut response = json_response(StatusCode::ACCEPTED, &body);
    if let Ok(location) = HeaderValue::from_str(&poll_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

fn limit_error(kind: LimitKind, usage: WindowUsage, tier: &str) -> ApiError {
    let now = Utc::now();
    let what = match kind {
        LimitKind::Month => "the monthly cold-call cap",
        LimitKind::KeyHour => "this key's cold calls in the last hour",
        LimitKind::AccountDay => "the account's cold calls in the last 24 hours",
    };
    let code = match kind {
        LimitKind::Month => ErrorCode::ColdBudgetExhausted,
        LimitKind::KeyHour => ErrorCode::KeyHourlyColdLimit,
        LimitKind::AccountDay => ErrorCode::AccountBreakerOpen,
    };
    ApiError::new(
        code,
        format!(
            "{what} is reached ({} of {}); it frees at {}",
            usage.used,
            usage.limit,
            usage
                .resets_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    )
    .field("limit", usage.limit)
    .field("used", usage.used)
    .field(
        "resets_at",
        usage
            .resets_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
    .field("tier", tier)
    .retry_after(usage.retry_after_secs(now))
}

/// Score a domain: a fresh record inline, or a queued cold run.
#[utoipa::path(
    post, path = "/v1/score", tag = "score",
    request_body = ScoreRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry for 24 h")),
    responses(
        (status = 200, description = "A fresh stored record (or a sandbox record)", body = ScoreRecord),
        (status = 202, description = "A cold run is queued; poll `Location`", body = JobAccepted),
        (status = 400, description = "invalid_request, invalid_domain or sandbox_domain_unknown", content_type = "application/problem+json"),
        (status = 401, description = "invalid_api_key", content_type = "application/problem+json"),
        (status = 403, description = "force_fresh_not_allowed or free_tier_sandbox_only", content_type = "application/problem+json"),
        (status = 413, description = "payload_too_large", content_type = "application/problem+json"),
        (status = 409, description = "idempotency_key_in_use: a request with this Idempotency-Key is still in progress", content_type = "application/problem+json"),
        (status = 422, description = "idempotency_key_reused", content_type = "application/problem+json"),
        (status = 429, description = "cold_budget_exhausted, key_hourly_cold_limit or account_breaker_open", content_type = "application/problem+json"),
        (status = 503, description = "store_unavailable", content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn post_score(State(state): State<AppState>, mut request: Request) -> Response {
    // The headers taken out of the request, not copied (axum's `HeaderMap`
    // extractor clones them); reading the body needs only the rest.
    let headers = std::mem::take(request.headers_mut());
    let body = Bytes::from_request(request, &state).await;
    let key = match auth::require_key(&headers) {
        Ok(key) => key,
        Err(error) => return error.into_response(),
    };
    // The common request (a well-formed body, no Idempotency-Key) authenticates
    // and decides in one store call: for a cached hit, one statement.
    let parsed = match &body {
        Ok(bytes) if !headers.contains_key("idempotency-key") => {
            parse_request(Ok(bytes.clone())).ok()
        }
        _ => None,
    };
    let (caller, mut usage, mut response) = match parsed {
        Some((domain, force_fresh)) => {
            match one_call(&state, &headers, key, &domain, force_fresh).await {
                Ok((caller, usage, response)) => (caller, usage, response),
                Err(error) => return error.into_response(),
            }
        }
        None => {
            // Every other request: authentication first (a bad key is 401 whatever
            // the body), then the request's own checks.
            let caller = match state.store_call(state.store.authenticate(key)).await {
                Ok(Some(caller)) => caller,
                Ok(None) => return auth::unknown_key().into_response(),
                Err(error) => return error.into_response(),
            };
            let mut usage = None;
            let response = match score_inner(&state, &caller, &headers, body, &mut usage).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            };
            (caller, usage, response)
        }
    };
    finish_live(&state, &caller, &mut response, usage.take()).await;
    encoding::negotiate(&headers, &mut response);
    response
}

/// Authenticates and decides in one store call (no Idempotency-Key to honour).
async fn one_call(
    state: &AppState,
    headers: &HeaderMap,
    key: &str,
    domain: &Domain,
    force_fresh: bool,
) -> Result<(Caller, Option<UsageSnapshot>, Response), ApiError> {
    let ask = Ask {
        domain,
        force_fresh,
        now: Utc::now(),
        tiers: &state.config.tiers,
    };
    let (caller, outcome) = state
        .store_call(state.store.authenticate_and_admit(key, &ask))
        .await?
        .ok_or_else(auth::unknown_key)?;
    let Some(outcome) = outcome else {
        let response = sandbox_answer(state, domain).unwrap_or_else(IntoResponse::into_response);
        return Ok((caller, None, response));
    };
    let usage = Some(outcome.usage);
    // Nothing to replay without an Idempotency-Key: a record goes straight
    // into the response in the form the request accepts.
    let response = match respond(state, &caller, outcome) {
        Ok(Answered::Record(record)) => record_response(&record, headers),
        Ok(Answered::Other(response)) => response,
        Err(error) => error.into_response(),
    };
    Ok((caller, usage, response))
}

async fn score_inner(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    usage_out: &mut Option<UsageSnapshot>,
) -> Result<Response, ApiError> {
    let (domain, force_fresh) = parse_request(body)?;
    let Some(key) = idempotency::key_from(headers)? else {
        return answer(state, caller, domain, force_fresh, usage_out).await;
    };
    let request_hash = idempotency::request_hash(&domain, force_fresh, caller.sandbox);
    // Local retries queue here; the store's reservation orders them across nodes.
    let _same_key = state.idempotency_locks.lock(caller.account_id, &key).await;
    let reservation = match idempotency::start(state, caller.account_id, key, request_hash).await? {
        idempotency::Start::Replay(response) => return Ok(response),
        idempotency::Start::Proceed(reservation) => reservation,
    };
    let result = answer(state, caller, domain, force_fresh, usage_out).await;
    let saved = reservation.keep(&result);
    reservation.finish(saved).await;
    result
}

/// Steps 1–9 of §5 for a parsed request.
async fn answer(
    state: &AppState,
    caller: &Caller,
    domain: Domain,
    force_fresh: bool,
    usage_out: &mut Option<UsageSnapshot>,
) -> Result<Response, ApiError> {
    if caller.sandbox {
        return sandbox_answer(state, &domain);
    }

    let policy = state.policy(caller.tier);
    let request = AdmissionRequest {
        caller: caller.clone(),
        policy,
        domain,
        force_fresh,
        now: Utc::now(),
    };
    let outcome = state.store_call(state.store.admit(&request)).await?;
    *usage_out = Some(outcome.usage);
    Ok(match respond(state, caller, outcome)? {
        Answered::Record(record) => {
            // Kept whole for a replay; sent gzipped instead where the client
            // accepts it (post_score).
            let mut response = json_text_response(StatusCode::OK, record.clone().into_bytes());
            response.extensions_mut().insert(StoredRecordBody(record));
            response
        }
        Answered::Other(response) => response,
    })
}

/// What an admission's outcome answers.
enum Answered {
    /// A stored record, sent in the form the request accepts.
    Record(ServedRecord),
    Other(Response),
}

/// A stored record's `200`, its body in the form the request accepts.
fn record_response(record: &ServedRecord, request: &HeaderMap) -> Response {
    let mut response = Response::new(Body::empty());
    *response.body_mut() = encoding::record_body(record, request, response.headers_mut());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, APPLICATION_JSON);
    response
}

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Step 1 of §5: a sandbox key gets its canned records; nothing is admitted.
fn sandbox_answer(state: &AppState, domain: &Domain) -> Result<Response, ApiError> {
    state.metrics.admission("sandbox");
    let record = sandbox::record(domain.as_str()).ok_or_else(sandbox::unknown_domain)?;
    Ok(json_response(StatusCode::OK, &record))
}

/// The answer to an admission's outcome (API.md §5's responses).
fn respond(
    state: &AppState,
    caller: &Caller,
    outcome: AdmissionOutcome,
) -> Result<Answered, ApiError> {
    let tier = caller.tier.as_str();
    let response = match outcome.decision {
        Decision::ForceFreshNotAllowed => {
            state
                .metrics
                .admission(ErrorCode::ForceFreshNotAllowed.as_str());
            return Err(ApiError::new(
                ErrorCode::ForceFreshNotAllowed,
                format!("the {tier} tier cannot force a fresh run"),
            )
            .field("tier", tier));
        }
        Decision::FreeTierSandboxOnly => {
            state
                .metrics
                .admission(ErrorCode::FreeTierSandboxOnly.as_str());
            return Err(ApiError::new(
                ErrorCode::FreeTierSandboxOnly,
                "the free tier serves stored records and sandbox keys only; upgrade for cold runs",
            )
            .field("tier", tier));
        }
        Decision::LimitReached(kind, window) => {
            state.metrics.admission(kind.error_code());
            return Err(limit_error(kind, window, tier));
        }
        Decision::ServeFresh => {
            state.metrics.admission("cached");
            let record = outcome.record.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InternalError,
                    "the store served no record for a fresh decision",
                )
            })?;
            return Ok(Answered::Record(record));
        }
        Decision::ExistingJob(_) | Decision::Admit => {
            let admitted = outcome.decision == Decision::Admit;
            state
                .metrics
                .admission(if admitted { "admitted" } else { "existing_job" });
            if admitted {
                state.work_available.notify_one();
            }
            let job = outcome.job.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InternalError,
                    "the store returned no job for an admission",
                )
            })?;
            accepted(&job)
        }
    };
    Ok(Answered::Other(response))
}

/// The exact body of a JSON response, kept so a replay is byte-for-byte the same.
#[derive(Debug, Clone)]
pub struct ReplayBody(pub Bytes);

/// Adds RateLimit fields to responses for live keys.
pub async fn finish_live(
    state: &AppState,
    caller: &Caller,
    response: &mut Response,
    usage: Option<UsageSnapshot>,
) {
    if caller.sandbox {
        return;
    }
    let now = Utc::now();
    let usage = match usage {
        Some(usage) => Some(usage),
        None => state
            .store_call(state.store.usage(caller, &state.policy(caller.tier), now))
            .await
            .ok(),
    };
    if let Some(usage) = usage {
        ratelimit::apply(response.headers_mut(), &usage, now);
    }
}

/// The newest stored record for a domain, whatever its age.
#[utoipa::path(
    get, path = "/v1/score/{domain}", tag = "score",
    params(("domain" = String, Path, description = "The domain, e.g. stripe.com")),
    responses(
        (status = 200, description = "The newest record, with fresh_for_tier", body = RecordWithFreshness),
        (status = 400, description = "invalid_domain or sandbox_domain_unknown", content_type = "application/problem+json"),
        (status = 401, description = "invalid_api_key", content_type = "application/problem+json"),
        (status = 404, description = "not_scored", content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn get_score(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(raw): Path<String>,
) -> Response {
    let mut response = match get_score_inner(&state, &caller, &raw).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    finish_live(&state, &caller, &mut response, None).await;
    response
}

async fn get_score_inner(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<Response, ApiError> {
    let domain = Domain::parse(raw).map_err(|e| {
        ApiError::new(ErrorCode::InvalidDomain, format!("{raw:?}: {e}")).field("domain", raw)
    })?;
    if caller.sandbox {
        let record = sandbox::record(domain.as_str()).ok_or_else(sandbox::unknown_domain)?;
        return Ok(json_response(
            StatusCode::OK,
            &RecordWithFreshness {
                record,
                fresh_for_tier: true,
            },
        ));
    }
    let record = state
        .store_call(state.store.latest_record(&domain))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotScored,
                format!("{domain} has not been scored yet; POST /v1/score to start a run"),
            )
        })?;
    let fresh_for_tier = is_fresh(&state.policy(caller.tier), record.scored_at, Utc::now());
    Ok(json_response(
        StatusCode::OK,
        &RecordWithFreshness {
            record,
            fresh_for_tier,
        },
    ))
}
