//! Score records: append-only, the newest per domain is the one served.

use chrono::{DateTime, Utc};
use kepler_core::ScoreRecord;
use sqlx::postgres::PgConnection;
use sqlx::types::Json;

use crate::time::{to_millis, truncate};
use crate::{Result, ServedRecord, StoreError};

/// The newest record of `domain`, marked `cached: true`.
pub(super) async fn latest(conn: &mut PgConnection, domain: &str) -> Result<Option<ScoreRecord>> {
    let body: Option<Json<ScoreRecord>> = sqlx::query_scalar(
        "SELECT body FROM records WHERE domain = $1 ORDER BY scored_at DESC, record_id DESC LIMIT 1",
    )
    .bind(domain)
    .fetch_optional(conn)
    .await?;
    Ok(body.map(|Json(mut record)| {
        record.cached = true;
        record
    }))
}

/// A record ready to be stored: as scored (`cached: false`, `scored_at` at
/// millisecond precision, the form `body` holds) and as served (`cached: true`).
pub(super) struct StoredRecord {
    pub(super) record: ScoreRecord,
    pub(super) score: i32,
    /// The text of the `served` column.
    pub(super) served: String,
}

impl StoredRecord {
    pub(super) fn prepare(record: &ScoreRecord) -> Result<StoredRecord> {
        let mut stored = record.clone();
        stored.cached = false;
        stored.scored_at = truncate(record.scored_at);
        let score = i32::try_from(stored.score)
            .map_err(|_| StoreError::Corrupt(format!("score {} is out of range", stored.score)))?;
        let served = ServedRecord::encode(&stored)?;
        Ok(StoredRecord {
            record: stored,
            score,
            served,
        })
    }

    pub(super) fn scored_at_millis(&self) -> i64 {
        to_millis(self.record.scored_at)
    }
}

/// Stores a record; returns the instant stored.
pub(super) async fn insert(conn: &mut PgConnection, record: &ScoreRecord) -> Result<DateTime<Utc>> {
    let stored = StoredRecord::prepare(record)?;
    sqlx::query(
        "INSERT INTO records (domain, scored_at, engine_version, score, grade, body, served) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&stored.record.domain)
    .bind(stored.scored_at_millis())
    .bind(&stored.record.engine_version)
    .bind(stored.score)
    .bind(&stored.record.grade)
    .bind(Json(&stored.record))
    .bind(&stored.served)
    .execute(conn)
    .await?;
    Ok(stored.record.scored_at)
}
