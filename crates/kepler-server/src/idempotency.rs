//! `Idempotency-Key`: the same key with the same request within 24 h replays the
//! first answer; with a different request it is `idempotency_key_reused`.
//!
//! Before a keyed request is processed its key is reserved in the store, so
//! requests racing on different nodes see each other: a retry of the same
//! request waits for the first one's answer and replays it (or, if that takes
//! longer than `server.store_timeout`, is `409 idempotency_key_in_use`); another
//! request under the key is 422 at once. Only successful answers are saved; an
//! error frees the key, so a retry is processed afresh. When the store cannot be
//! reached to save or free the key, that is retried in the background until the
//! reservation would expire, so retries after an outage are not held up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use kepler_core::Domain;
use kepler_store::{IdempotencyClaim, IdempotentResponse, Store, StoreError};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::routes::score::ReplayBody;

/// Longest key accepted (Stripe's limit).
pub const MAX_KEY_LEN: usize = 255;

/// The `Idempotency-Key` header, if sent and well-formed.
pub fn key_from(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        )
    };
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
    let digest = Sha256::digest(format!(
        "POST /v1/score\n{domain}\n{force_fresh}\nsandbox={sandbox}"
    ));
    hex::encode(digest)
}

/// How long a reservation holds its key if its node never answers (it died or
/// lost the store): well past any request's store calls, short enough that a
/// client retrying after a crash is served within a minute.
pub fn reservation_ttl(store_timeout: Duration) -> Duration {
    (store_timeout * 4).max(Duration::from_secs(30))
}

/// Pause between looks at a key another node is processing.
const WAIT_STEP: Duration = Duration::from_millis(50);

/// What a keyed request does next.
pub enum Start {
    /// The key's saved answer, to send as is.
    Replay(Response),
    /// The key is ours: process the request, then [`Reservation::finish`].
    Proceed(Reservation),
}

/// Reserves the key for this request, waiting (up to `server.store_timeout`)
/// while another request with the same fingerprint holds it.
pub async fn start(
    state: &AppState,
    account_id: Uuid,
    key: String,
    request_hash: String,
) -> Result<Start, ApiError> {
    let ttl = reservation_ttl(state.config.server.store_timeout);
    let deadline = Instant::now() + state.config.server.store_timeout;
    loop {
        let claim = state
            .store_call(state.store.reserve_idempotency_key(
                account_id,
                &key,
                &request_hash,
                ttl,
                Utc::now(),
            ))
            .await?;
        match claim {
            IdempotencyClaim::Reserved { holder } => {
                return Ok(Start::Proceed(Reservation {
                    store: Arc::clone(&state.store),
                    account_id,
                    key,
                    holder,
                    request_hash,
                    expires: Instant::now() + ttl,
                    finished: false,
                }));
            }
            IdempotencyClaim::Saved(saved) if saved.request_hash == request_hash => {
                return Ok(Start::Replay(replay(saved)));
            }
            IdempotencyClaim::Saved(_) => return Err(reused()),
            IdempotencyClaim::InProgress {
                request_hash: theirs,
            } if theirs != request_hash => {
                return Err(reused());
            }
            IdempotencyClaim::InProgress { .. } if Instant::now() + WAIT_STEP > deadline => {
                return Err(ApiError::new(
                    ErrorCode::IdempotencyKeyInUse,
                    "a request with this Idempotency-Key is still in progress; retry shortly",
                )
                .retry_after(1));
            }
            IdempotencyClaim::InProgress { .. } => tokio::time::sleep(WAIT_STEP).await,
        }
    }
}

fn reused() -> ApiError {
    ApiError::new(
        ErrorCode::IdempotencyKeyReused,
        "this Idempotency-Key was used with a different request in the last 24 hours",
    )
}

/// A key held for one request. Dropped unfinished (the client went away, a
/// panic), it is released in the background so retries need not wait for expiry.
pub struct Reservation {
    store: Arc<dyn Store>,
    account_id: Uuid,
    key: String,
    holder: Uuid,
    request_hash: String,
    /// When other nodes may take the key over if this one never settles it.
    expires: Instant,
    finished: bool,
}

impl Reservation {
    /// What to keep of an answer: a success is saved for replay, an error is not.
    /// Taken before any await: a `Response` is not `Sync`.
    pub fn keep(&self, result: &Result<Response, ApiError>) -> Option<IdempotentResponse> {
        result
            .as_ref()
            .ok()
            .and_then(|response| replayable(self.request_hash.clone(), response))
    }

    /// Saves the answer for replay, or frees the key when there is none. If the
    /// store cannot be reached, that is retried in the background.
    pub async fn finish(mut self, saved: Option<IdempotentResponse>) {
        self.finished = true;
        let settlement = self.settlement(saved);
        if let Err(error) = settlement.once().await {
            tracing::info!(%error, "could not settle an Idempotency-Key reservation yet; retrying");
            tokio::spawn(settlement.retry());
        }
    }

    fn settlement(&mut self, saved: Option<IdempotentResponse>) -> Settlement {
        Settlement {
            store: Arc::clone(&self.store),
            account_id: self.account_id,
            key: std::mem::take(&mut self.key),
            holder: self.holder,
            saved,
            expires: self.expires,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let settlement = self.settlement(None);
        runtime.spawn(async move {
            if settlement.once().await.is_err() {
                settlement.retry().await;
            }
        });
    }
}

/// What is left to do with a reservation once its request is answered.
struct Settlement {
    store: Arc<dyn Store>,
    account_id: Uuid,
    key: String,
    holder: Uuid,
    saved: Option<IdempotentResponse>,
    expires: Instant,
}

/// Longest pause between attempts to settle a reservation during an outage.
const SETTLE_RETRY_MAX: Duration = Duration::from_secs(2);

impl Settlement {
    async fn once(&self) -> Result<(), StoreError> {
        match &self.saved {
            Some(saved) => {
                self.store
                    .save_idempotent_response(self.account_id, &self.key, saved, Utc::now())
                    .await
            }
            None => {
                self.store
                    .release_idempotency_key(self.account_id, &self.key, self.holder)
                    .await
            }
        }
    }

    /// After a failed attempt: retries, with growing pauses, until the store
    /// answers or the reservation would have expired anyway, so that after a
    /// store outage a client's retry is served at once rather than after the expiry.
    async fn retry(self) {
        let mut pause = Duration::from_millis(100);
        while Instant::now() + pause < self.expires {
            tokio::time::sleep(pause).await;
            match self.once().await {
                Ok(()) => return,
                Err(error) => {
                    tracing::debug!(%error, "still cannot settle an Idempotency-Key reservation")
                }
            }
            pause = (pause * 2).min(SETTLE_RETRY_MAX);
        }
        tracing::warn!("could not settle an Idempotency-Key reservation; it will expire");
    }
}

/// What to save of a successful answer for replay.
fn replayable(request_hash: String, response: &Response) -> Option<IdempotentResponse> {
    // Always UTF-8: it was encoded from a `String`.
    let body = String::from_utf8(response.extensions().get::<ReplayBody>()?.0.to_vec()).ok()?;
    let kept = ["content-type", "location", "retry-after"];
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| kept.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    Some(IdempotentResponse {
        request_hash,
        status: response.status().as_u16(),
        body,
        headers,
    })
}

fn replay(saved: IdempotentResponse) -> Response {
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    let mut response = (status, saved.body).into_response();
    for (name, value) in saved.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::try_from(name),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// Serialises the requests of one account that share an `Idempotency-Key` in
/// this process, so local retries queue here rather than poll the store's
/// reservation (which is what orders requests across nodes).
#[derive(Debug, Default)]
pub struct KeyLocks {
    held: Mutex<HashMap<(Uuid, String), KeyCell>>,
}

type KeyCell = Arc<tokio::sync::Mutex<()>>;

/// Holds one key's lock; dropping it forgets the key once nobody waits on it.
#[derive(Debug)]
pub struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    id: (Uuid, String),
    cell: KeyCell,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyLocks {
    pub async fn lock(&self, account_id: Uuid, key: &str) -> KeyGuard<'_> {
        let id = (account_id, key.to_owned());
        let cell = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.clone())
            .or_default()
            .clone();
        let guard = cell.clone().lock_owned().await;
        KeyGuard {
            locks: self,
            id,
            cell,
            guard: Some(guard),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut held = self
            .locks
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Waiters clone the cell under this same lock: two owners (map and us) means none wait.
        if Arc::strong_count(&self.cell) == 2 {
            held.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_forgotten_once_released() {
        let locks = KeyLocks::default();
        let account = Uuid::new_v4();
        {
            let _first = locks.lock(account, "k").await;
            assert_eq!(locks.held.lock().expect("not poisoned").len(), 1);
        }
        assert!(locks.held.lock().expect("not poisoned").is_empty());
    }
}
