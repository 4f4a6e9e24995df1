//! The API's routes, each documented for `/openapi.json`.

use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub mod jobs;
pub mod ops;
pub mod score;
pub mod usage;

/// Every route, with its OpenAPI description collected alongside.
pub fn openapi_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(<crate::openapi::ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(score::post_score))
        .routes(routes!(score::get_score))
        .routes(routes!(jobs::get_job))
        .routes(routes!(usage::get_usage))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

/// Only the operations endpoints, for a process without the API (`kepler worker`).
pub fn ops_router() -> Router<AppState> {
    Router::new()
        .route("/healthz", axum::routing::get(ops::healthz))
        .route("/readyz", axum::routing::get(ops::readyz))
        .route("/metrics", axum::routing::get(ops::metrics))
}

pub fn api_router() -> Router<AppState> {
    let (router, _) = openapi_router().split_for_parts();
    router.route("/openapi.json", axum::routing::get(ops::openapi))
}
