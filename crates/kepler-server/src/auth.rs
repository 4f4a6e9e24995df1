//! API-key authentication: `X-API-Key: <key>` or `Authorization: Bearer <key>`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use kepler_store::Caller;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// The authenticated caller of a `/v1` route.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get("x-api-key") {
        return value.to_str().ok().map(str::trim);
    }
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The presented key, or the 401 for a request without one.
pub(crate) fn require_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    presented_key(headers)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            invalid_key("send your key in the X-API-Key header (or Authorization: Bearer)")
        })
}

/// The 401 for a key that is unknown or revoked.
pub(crate) fn unknown_key() -> ApiError {
    invalid_key("the API key is unknown or revoked")
}

fn invalid_key(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidApiKey, detail).header(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer realm=\"kepler\""),
    )
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = require_key(&parts.headers)?;
        match state.store_call(state.store.authenticate(key)).await? {
            Some(caller) => {
                parts.extensions.insert(caller.clone());
                Ok(Authenticated(caller))
            }
            None => Err(unknown_key()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn key_from_either_header() {
        assert_eq!(
            presented_key(&headers(&[("x-api-key", "ki_live_a")])),
            Some("ki_live_a")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer ki_live_b")])),
            Some("ki_live_b")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "bearer  ki_live_c ")])),
            Some("ki_live_c")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(presented_key(&headers(&[])), None);
    }
}
