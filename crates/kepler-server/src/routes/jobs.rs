//! `GET /v1/jobs/{job_id}` (API.md §6).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use kepler_store::Job;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorCode};
use crate::routes::score::{finish_live, json_response};

/// Where a completed job's record is: fetch it with `GET /v1/score/{domain}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultRef {
    pub domain: String,
    pub scored_at: String,
}

/// A job as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub job_id: String,
    /// `pending`, `running`, `complete` or `failed`.
    pub status: String,
    pub domain: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub result_ref: Option<ResultRef>,
    /// On `failed`: `timeout`, `domain_not_resolvable`, `private_address_refused` or `engine_error`.
    pub failure_reason: Option<String>,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl From<&Job> for JobView {
    fn from(job: &Job) -> JobView {
        JobView {
            job_id: job.job_id.to_string(),
            status: job.status.as_str().to_owned(),
            domain: job.domain.clone(),
            created_at: rfc3339(job.created_at),
            started_at: job.started_at.map(rfc3339),
            finished_at: job.finished_at.map(rfc3339),
            result_ref: job
                .scored_at
                .filter(|_| job.status == kepler_core::JobStatus::Complete)
                .map(|at| ResultRef {
                    domain: job.domain.clone(),
                    scored_at: rfc3339(at),
                }),
            failure_reason: job.failure_reason.map(|r| r.as_str().to_owned()),
        }
    }
}

/// Poll a job until it settles.
#[utoipa::path(
    get, path = "/v1/jobs/{job_id}", tag = "jobs",
    params(("job_id" = String, Path, description = "The job id from the 202 answer")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 401, description = "invalid_api_key", content_type = "application/problem+json"),
        (status = 404, description = "job_not_found (also for another account's job)", content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn get_job(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(raw): Path<String>,
) -> Response {
    let found = match Uuid::parse_str(raw.trim()) {
        Ok(job_id) => {
            state
                .store_call(state.store.get_job(caller.account_id, job_id))
                .await
        }
        Err(_) => Ok(None),
    };
    let mut response = match found {
        Ok(Some(job)) => json_response(StatusCode::OK, &JobView::from(&job)),
        Ok(None) => ApiError::new(
            ErrorCode::JobNotFound,
            "no job with this id exists for your account",
        )
        .into_response(),
        Err(error) => error.into_response(),
    };
    finish_live(&state, &caller, &mut response, None).await;
    response
}
