//! `/healthz`, `/readyz`, `/metrics`, `/openapi.json` (API.md §10).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use crate::AppState;
use crate::error::ApiError;
use crate::metrics::StateLabels;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Up")))]
pub async fn healthz() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

/// The store is reachable.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "store_unavailable", content_type = "application/problem+json"),
))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store_call(state.store.ping()).await {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ready"}"#,
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    // Queue gauges come from the store at scrape time, so every node reports the
    // shared queue; finished jobs are counted by the workers' `engine_runs` instead.
    if let Ok(stats) = state.store_call(state.store.queue_stats(Utc::now())).await {
        for (name, value) in [
            ("pending", stats.jobs_pending),
            ("running", stats.jobs_running),
        ] {
            state
                .metrics
                .jobs
                .get_or_create(&StateLabels {
                    state: name.to_owned(),
                })
                .set(value as i64);
        }
        state.metrics.oldest_pending_seconds.set(
            stats
                .oldest_pending_age
                .map_or(0.0, |age| age.as_secs_f64()),
        );
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The OpenAPI 3.1 description, generated from the code.
pub async fn openapi() -> Response {
    match crate::openapi_json() {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            text,
        )
            .into_response(),
        Err(error) => {
            ApiError::new(crate::error::ErrorCode::InternalError, error.to_string()).into_response()
        }
    }
}
