//! `Idempotency-Key`: the same key with the same request within 24 h replays the
//! first answer; with a different request it is `idempotency_key_reused`.

use axum::http::HeaderMap;
use kepler_core::Domain;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorCode};

/// Longest key accepted (Stripe's limit).
pub const MAX_KEY_LEN: usize = 255;

/// The `Idempotency-Key` header, if sent and well-formed.
pub fn key_from(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || ApiError::new(ErrorCode::InvalidRequest, format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"));
    let key = value.to_str().map_err(|_| bad())?.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(key.to_owned()))
}

/// A fingerprint of what the request asks, so that formatting differences
/// (key order, whitespace, `wait`) do not count as a different request.
/// Sandbox and live keys of one account share the key space, so the mode is part
/// of the request: a live retry never replays a sandbox answer.
pub fn request_hash(domain: &Domain, force_fresh: bool, sandbox: bool) -> String {
    let digest = Sha256::digest(format!("POST /v1/score\n{domain}\n{force_fresh}\nsandbox={sandbox}"));
    hex::encode(digest)
}
