//! The router: routes, OpenAPI, and the layers every response goes through
//! (Request-Id, metrics, gzip for large bodies, problem+json for unknown
//! routes and methods).

use std::borrow::Cow;
use std::convert::Infallible;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http;
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::{Service, ServiceBuilder};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};

use crate::AppState;
use crate::error::{ApiError, ErrorCode, ErrorCodeTag};
use crate::metrics::{OutcomeLabels, RequestLabels};

/// Largest request body accepted (API.md §5).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The API: the routes, with the metrics (which need the matched route)
/// inside the router, and the layers that need no route around it once.
/// `Router::layer` would wrap each route in a boxed service, and axum clones
/// the matched route's box, one allocation per layer, for every request.
pub fn app(
    state: AppState,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send>
+ Clone
+ Send
+ Sync
+ 'static {
    let request_id = HeaderName::from_static("request-id");
    let routes = crate::routes::api_router()
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state);
    ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), RandomRequestIds))
        .layer(PropagateRequestIdLayer::new(request_id))
        .map_response(|response: http::Response<_>| response.map(Body::new))
        .layer(crate::encoding::layer())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .service(routes)
}

/// `/healthz`, `/readyz` and `/metrics` alone, counted like the API's routes.
pub fn ops_router(state: AppState) -> Router {
    crate::routes::ops_router()
        .fallback(not_found)
        .layer(crate::encoding::layer())
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Request-Ids: random (version 4) UUIDs, drawn from the thread's
/// cryptographically secure generator (ChaCha, seeded from the OS) rather
/// than one `getrandom` system call per request as `Uuid::new_v4` does, and
/// written straight into the header without an intermediate `String`.
#[derive(Debug, Clone, Copy, Default)]
struct RandomRequestIds;

impl MakeRequestId for RandomRequestIds {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        let text = id.hyphenated().encode_lower(&mut text);
        http::HeaderValue::from_str(text).ok().map(RequestId::new)
    }
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such resource; see /openapi.json")
}

/// Every route's pattern, so a request's route label is borrowed, not copied.
const ROUTES: &[&str] = &[
    "/v1/score",
    "/v1/score/{domain}",
    "/v1/jobs/{job_id}",
    "/v1/usage",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
];

const METHODS: &[&str] = &["GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// `text` as one of `known` (borrowed), or copied when it is none of them.
fn label(text: &str, known: &[&'static str]) -> Cow<'static, str> {
    known
        .iter()
        .find(|k| **k == text)
        .map_or_else(|| Cow::Owned(text.to_owned()), |k| Cow::Borrowed(*k))
}

/// Counts every request by route and status, and gives axum's bare 405s a problem body.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(Cow::Borrowed("unmatched"), |p| label(p.as_str(), ROUTES));
    let method = label(request.method().as_str(), METHODS);
    let mut response = next.run(request).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && response.extensions().get::<ErrorCodeTag>().is_none()
    {
        let allow = response.headers().get(axum::http::header::ALLOW).cloned();
        let mut replaced = ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{method} is not allowed here"),
        )
        .into_response();
        if let Some(allow) = allow {
            replaced
                .headers_mut()
                .insert(axum::http::header::ALLOW, allow);
        }
        response = replaced;
    }
    if response
        .extensions()
        .get::<ErrorCodeTag>()
        .is_some_and(|tag| tag.0 == ErrorCode::StoreUnavailable)
    {
        state.metrics.store_unavailable("api");
    }
    let status = response.status().as_u16();
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route: route.clone(),
            method,
            status,
        })
        .inc();
    state
        .metrics
        .request_seconds
        .get_or_create(&OutcomeLabels { outcome: route })
        .observe(started.elapsed().as_secs_f64());
    response
}
