//! The stamp checks of remembered cached hits (crate::hits), many to one
//! statement.
//!
//! A replayed hit still costs one statement (the key row, the account's
//! cold-call counter, the domain's newest record), and on PostgreSQL the
//! statement's round trip and per-statement work bound the hit rate (issue 6).
//! One task checks, in one statement, the stamps of every hit waiting at that
//! moment. Each check still starts after its request arrived, so a replay sees
//! every commit that finished before the request (a revoked key, a cold call,
//! a new record).

use std::sync::LazyLock;

use sqlx::PgPool;
use sqlx::postgres::PgRow;
use tokio::sync::{mpsc, oneshot};

use super::accounts;
use super::admission::{COLD_CALL_CHANGES, HitStamp, stamp_from};
use super::breaker::Breaker;
use crate::{Caller, Result};

/// Stamps checked in one statement at most.
const MAX_BATCH: usize = 256;

/// Checks waiting for the task at most; more wait to be queued.
const QUEUE_DEPTH: usize = 4096;

/// What a check found: the caller and stamp now (`None`: the key is unknown or
/// revoked), or `Err(Unchecked)` when the shared statement failed and the
/// asker must check on its own connection (where the breaker sees the error).
pub(super) type Checked = std::result::Result<Option<(Caller, HitStamp)>, Unchecked>;

/// The shared check did not run; see [`Checked`].
#[derive(Debug)]
pub(super) struct Unchecked;

/// Hands stamp checks to the task that batches them.
#[derive(Debug, Clone)]
pub(super) struct StampChecks {
    queue: mpsc::Sender<Asked>,
}

#[derive(Debug)]
struct Asked {
    hash: String,
    domain: String,
    answer: oneshot::Sender<Checked>,
}

/// The stamps of many (key hash, domain) pairs; `i` is the pair's 1-based
/// place in the arrays. Binds: $1 key hashes, $2 domains.
static STAMPS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT q.i, k.key_id, k.account_id, k.sandbox, k.key_hash, k.revoked_at, a.tier, \
         {COLD_CALL_CHANGES}, r.record_id, r.scored_at AS record_at \
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS q(key_hash, domain, i) \
         JOIN api_keys k ON k.key_hash = q.key_hash \
         JOIN accounts a ON a.account_id = k.account_id \
         LEFT JOIN LATERAL (SELECT record_id, scored_at FROM records WHERE domain = q.domain \
           ORDER BY scored_at DESC, record_id DESC LIMIT 1) AS r ON TRUE"
    )
});

impl StampChecks {
    /// Starts the checking task, which ends when the last clone is dropped.
    /// It connects through the store's `breaker`, so that during an outage
    /// a check fails as fast as any other store call.
    pub(super) fn start(pool: PgPool, breaker: Breaker) -> StampChecks {
        let (queue, asked) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(check_batches(pool, breaker, asked));
        StampChecks { queue }
    }

    /// The caller and stamp of the key hashed `key_hash` for `domain`, read after this call began.
    pub(super) async fn check(&self, key_hash: &str, domain: &str) -> Checked {
        let (answer, answered) = oneshot::channel();
        let asked = Asked {
            hash: key_hash.to_owned(),
            domain: domain.to_owned(),
            answer,
        };
        self.queue.send(asked).await.map_err(|_| Unchecked)?;
        answered.await.map_err(|_| Unchecked)?
    }
}

async fn check_batches(pool: PgPool, breaker: Breaker, mut asked: mpsc::Receiver<Asked>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while asked.recv_many(&mut batch, MAX_BATCH).await > 0 {
        batch.retain(|a| !a.answer.is_closed());
        if !batch.is_empty() {
            let found = check_all(&pool, &breaker, &batch).await;
            answer_all(std::mem::take(&mut batch), found);
        }
    }
}

/// One statement for the whole batch: each pair's row, by its place.
async fn check_all(
    pool: &PgPool,
    breaker: &Breaker,
    batch: &[Asked],
) -> Result<Vec<Option<PgRow>>> {
    let hashes: Vec<&str> = batch.iter().map(|a| a.hash.as_str()).collect();
    let domains: Vec<&str> = batch.iter().map(|a| a.domain.as_str()).collect();
    let mut conn = breaker.connect(pool.acquire()).await?;
    let rows = sqlx::query(STAMPS_SQL.as_str())
        .bind(&hashes)
        .bind(&domains)
        .fetch_all(&mut *conn)
        .await?;
    super::rows::by_place(rows, batch.len(), "i", Ok)
}

fn answer_all(batch: Vec<Asked>, found: Result<Vec<Option<PgRow>>>) {
    let Ok(rows) = found else {
        for asked in batch {
            let _ = asked.answer.send(Err(Unchecked));
        }
        return;
    };
    for (asked, row) in batch.into_iter().zip(rows) {
        let checked = match row {
            None => Ok(None),
            Some(row) => read(&row, &asked.hash).map_err(|_| Unchecked),
        };
        let _ = asked.answer.send(checked);
    }
}

fn read(row: &PgRow, hash: &str) -> Result<Option<(Caller, HitStamp)>> {
    let Some(caller) = accounts::caller_from(row, hash)? else {
        return Ok(None);
    };
    Ok(Some((caller, stamp_from(row)?)))
}
