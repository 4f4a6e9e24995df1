//! Every error the API can answer, in one table: stable code → HTTP status and title.
//! Bodies are RFC 9457 problem documents that also carry the `error` code and any
//! fields of the seed's shape (`tier`, `limit`, `used`, `resets_at`, ...).

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kepler_store::StoreError;
use serde_json::{Map, Value, json};

/// A stable error code of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidApiKey,
    InvalidRequest,
    InvalidDomain,
    PayloadTooLarge,
    SandboxDomainUnknown,
    ForceFreshNotAllowed,
    FreeTierSandboxOnly,
    ColdBudgetExhausted,
    KeyHourlyColdLimit,
    AccountBreakerOpen,
    IdempotencyKeyReused,
    IdempotencyKeyInUse,
    JobNotFound,
    NotScored,
    NotFound,
    MethodNotAllowed,
    StoreUnavailable,
    InternalError,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::InvalidApiKey,
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidDomain,
        ErrorCode::PayloadTooLarge,
        ErrorCode::SandboxDomainUnknown,
        ErrorCode::ForceFreshNotAllowed,
        ErrorCode::FreeTierSandboxOnly,
        ErrorCode::ColdBudgetExhausted,
        ErrorCode::KeyHourlyColdLimit,
        ErrorCode::AccountBreakerOpen,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::IdempotencyKeyInUse,
        ErrorCode::JobNotFound,
        ErrorCode::NotScored,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::StoreUnavailable,
        ErrorCode::InternalError,
    ];

    /// The code, its status and its title.
    pub fn describe(self) -> (&'static str, StatusCode, &'static str) {
        use ErrorCode::*;
        match self {
            InvalidApiKey => (
                "invalid_api_key",
                StatusCode::UNAUTHORIZED,
                "Missing, unknown or revoked API key",
            ),
            InvalidRequest => (
                "invalid_request",
                StatusCode::BAD_REQUEST,
                "The request is malformed",
            ),
            InvalidDomain => (
                "invalid_domain",
                StatusCode::BAD_REQUEST,
                "Not a domain name Kepler can score",
            ),
            PayloadTooLarge => (
                "payload_too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is over 16 KiB",
            ),
            SandboxDomainUnknown => (
                "sandbox_domain_unknown",
                StatusCode::BAD_REQUEST,
                "Sandbox keys reach only the canned domains",
            ),
            ForceFreshNotAllowed => (
                "force_fresh_not_allowed",
                StatusCode::FORBIDDEN,
                "This tier cannot force a fresh run",
            ),
            FreeTierSandboxOnly => (
                "free_tier_sandbox_only",
                StatusCode::FORBIDDEN,
                "The free tier has no cold runs",
            ),
            ColdBudgetExhausted => (
                "cold_budget_exhausted",
                StatusCode::TOO_MANY_REQUESTS,
                "Monthly cold-call cap reached",
            ),
            KeyHourlyColdLimit => (
                "key_hourly_cold_limit",
                StatusCode::TOO_MANY_REQUESTS,
                "This key's hourly cold-call limit is reached",
            ),
            AccountBreakerOpen => (
                "account_breaker_open",
                StatusCode::TOO_MANY_REQUESTS,
                "The account's 24-hour cold-call breaker is open",
            ),
            IdempotencyKeyReused => (
                "idempotency_key_reused",
                StatusCode::UNPROCESSABLE_ENTITY,
                "Idempotency-Key reused with a different request",
            ),
            // draft-ietf-httpapi-idempotency-key-header: a retry while the first
            // request is still being processed is 409 Conflict.
            IdempotencyKeyInUse => (
                "idempotency_key_in_use",
                StatusCode::CONFLICT,
                "A request with this Idempotency-Key is still in progress",
            ),
            JobNotFound => ("job_not_found", StatusCode::NOT_FOUND, "No such job"),
            NotScored => (
                "not_scored",
                StatusCode::NOT_FOUND,
                "This domain has not been scored yet",
            ),
            NotFound => ("not_found", StatusCode::NOT_FOUND, "No such resource"),
            MethodNotAllowed => (
                "method_not_allowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed on this resource",
            ),
            StoreUnavailable => (
                "store_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "The store is unavailable; retry shortly",
            ),
            InternalError => (
                "internal_error",
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
            ),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.describe().0
    }

    pub fn status(self) -> StatusCode {
        self.describe().1
    }
}

/// An error answer: a code, a human detail, extra fields and extra headers.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub fields: Map<String, Value>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            code,
            detail: detail.into(),
            fields: Map::new(),
            headers: Vec::new(),
        }
    }

    /// Adds a body field (e.g. `tier`, `limit`).
    pub fn field(mut self, name: &str, value: impl Into<Value>) -> ApiError {
        self.fields.insert(name.to_owned(), value.into());
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    /// Adds `Retry-After`.
    pub fn retry_after(self, seconds: u64) -> ApiError {
        self.header(header::RETRY_AFTER, HeaderValue::from(seconds))
    }

    /// The problem document.
    pub fn body(&self) -> Value {
        let (code, status, title) = self.code.describe();
        let mut body = json!({
            "type": format!("/docs/errors#{code}"),
            "title": title,
            "status": status.as_u16(),
            "detail": self.detail,
            "error": code,
            "message": self.detail,
        });
        if let Value::Object(map) = &mut body {
            map.extend(self.fields.clone());
        }
        body
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                store_unavailable()
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::new(
                    ErrorCode::InternalError,
                    "an internal error occurred; it has been logged",
                )
            }
        }
    }
}

/// The answer while the store cannot be reached.
pub fn store_unavailable() -> ApiError {
    ApiError::new(
        ErrorCode::StoreUnavailable,
        "the store is unavailable; retry shortly",
    )
    .retry_after(2)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = self.body().to_string();
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response.extensions_mut().insert(ErrorCodeTag(self.code));
        response
    }
}

/// Marks a response with its error code, for the metrics layer.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCodeTag(pub ErrorCode);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
        }
    }

    #[test]
    fn problem_body_carries_the_seed_shape() {
        let body = ApiError::new(ErrorCode::FreeTierSandboxOnly, "x")
            .field("tier", "free")
            .body();
        assert_eq!(body["error"], "free_tier_sandbox_only");
        assert_eq!(body["tier"], "free");
        assert_eq!(body["status"], 403);
        assert!(
            body["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("free_tier_sandbox_only"))
        );
    }
}
