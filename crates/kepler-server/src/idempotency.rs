//! `Idempotency-Key`: the same key with the same request within 24 h replays the
//! first answer; with a different request it is `idempotency_key_reused`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::HeaderMap;
use kepler_core::Domain;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};

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

/// Serialises the requests of one account that share an `Idempotency-Key`, so
/// that simultaneous retries see each other's saved answer instead of each
/// being admitted (and charged). Per process: nodes sharing a database rely on
/// step 5 of the admission for same-body retries.
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
