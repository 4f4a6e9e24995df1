//! `GET /v1/usage` (API.md §9).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use kepler_core::tier::micros_to_usd;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Authenticated;
use crate::routes::score::json_response;

#[derive(Debug, Serialize, ToSchema)]
pub struct MonthUsage {
    pub cold_calls: u64,
    pub cap: u64,
    pub remaining: u64,
    pub cost_usd: f64,
    pub resets_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WindowView {
    pub cold_calls: u64,
    pub limit: u64,
    pub resets_at: String,
}

/// The calling key's account usage.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub account_id: String,
    pub tier: String,
    pub month: MonthUsage,
    pub key_hour: WindowView,
    pub account_day: WindowView,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Cold calls, limits and cost for the calling key's account.
#[utoipa::path(
    get, path = "/v1/usage", tag = "usage",
    responses(
        (status = 200, description = "Usage", body = Usage),
        (status = 401, description = "invalid_api_key", content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn get_usage(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Response {
    let now = Utc::now();
    let usage = match state
        .store_call(state.store.usage(&caller, &state.policy(caller.tier), now))
        .await
    {
        Ok(usage) => usage,
        Err(error) => return error.into_response(),
    };
    let body = Usage {
        account_id: caller.account_id.to_string(),
        tier: caller.tier.as_str().to_owned(),
        month: MonthUsage {
            cold_calls: usage.month.used,
            cap: usage.month.limit,
            remaining: usage.month.remaining(),
            cost_usd: micros_to_usd(usage.month_cost_micros),
            resets_at: rfc3339(usage.month.resets_at),
        },
        key_hour: WindowView {
            cold_calls: usage.key_hour.used,
            limit: usage.key_hour.limit,
            resets_at: rfc3339(usage.key_hour.resets_at),
        },
        account_day: WindowView {
            cold_calls: usage.account_day.used,
            limit: usage.account_day.limit,
            resets_at: rfc3339(usage.account_day.resets_at),
        },
    };
    let mut response = json_response(StatusCode::OK, &body);
    if !caller.sandbox {
        crate::ratelimit::apply(response.headers_mut(), &usage, now);
    }
    response
}
